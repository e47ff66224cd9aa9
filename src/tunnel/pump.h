#pragma once
// Bidirectional copy between a TCP socket and a tunnel stream, with half-close in each
// direction: EOF on one side becomes FIN on the other. An error or reset on either side aborts
// both. Used by the agent (stream <-> local target) and the gateway (WebSocket upgrades, TCP).
#include <memory>

#include "core/asio.h"
#include "tunnel/session.h"

namespace proxer::tunnel {

struct PumpResult {
  std::uint64_t to_stream = 0;                           // bytes socket -> stream
  std::uint64_t to_socket = 0;                           // bytes stream -> socket
  proto::ErrorCode reset_code = proto::ErrorCode::None;  // set when the socket side failed
};

// Runs until both directions are finished. Closes the socket at the end. `idle_timeout` of 0
// means none; otherwise a pump with no traffic either way for that long is aborted.
awaitable<PumpResult> pump(std::shared_ptr<Stream> stream, tcp::socket socket,
                           std::chrono::milliseconds idle_timeout = std::chrono::milliseconds(0));

}  // namespace proxer::tunnel
