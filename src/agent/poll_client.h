#pragma once
// The HTTP long-poll carrier, agent side (the gateway side and the endpoints are described in
// gateway/poll_carrier.h and docs/PROTOCOL.md). The protocol session runs on one end of a Unix
// socket pair, exactly as on any carrier; this client moves the other end's bytes over plain
// HTTP/1.1 request/response exchanges: one connection long-polls GET /api/agent/pull, another
// POSTs what the session writes to /api/agent/respond.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.h"
#include "transport/stream.h"

namespace proxer::agent {

struct PollTarget {
  bool https = false;
  std::string host, port, path_prefix;  // path_prefix: "" or "/base" (no trailing '/')
  std::string server_name;              // TLS name to verify (https)
  std::shared_ptr<transport::ssl::context> tls;
  std::optional<transport::HttpProxy> proxy;
  std::chrono::milliseconds timeout{5000};  // connect, TLS and each non-poll exchange
};

// Registers (agent id, token, tunnel names) and returns the session's end of the pair, ready for
// tunnel::Session; the HTTP side runs on until that end closes or an exchange fails. On failure
// returns nullopt and sets *error.
awaitable<std::optional<transport::Stream>> open_poll_session(
    net::any_io_executor ex, PollTarget target, std::string agent_id, std::string token,
    std::vector<std::string> tunnels, std::string* error);

}  // namespace proxer::agent
