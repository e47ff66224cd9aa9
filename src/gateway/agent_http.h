#pragma once
// The agent listener's HTTP side. An agent connection that does not open with the protocol
// preface speaks HTTP/1.1: a WebSocket upgrade (the ws:// and wss:// carriers, any path) or the
// long-poll endpoints under /api/agent/. So one port, TLS or not, carries every carrier, and an
// agent on `--transport auto` needs a single address to try them all.
#include <string>
#include <variant>

#include "core/asio.h"
#include "gateway/context.h"
#include "transport/stream.h"

namespace proxer::gateway {

// Serves the connection until it closes or turns into a WebSocket agent session. `first` holds
// the bytes a sniffer already read from it; `remote` is the client's address for logs.
awaitable<void> serve_agent_http(Context& ctx, std::variant<tcp::socket, transport::TlsStream> conn,
                                 std::string first, std::string remote,
                                 std::chrono::milliseconds handshake_timeout);

}  // namespace proxer::gateway
