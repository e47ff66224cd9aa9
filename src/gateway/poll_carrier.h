#pragma once
// The HTTP long-poll carrier, gateway side: for networks where only plain request/response HTTP
// gets through (buffering proxies included). Each long-poll session is a Unix socket pair: the
// protocol session (preface, frames, exactly as on every carrier) runs on one end; the HTTP
// endpoints move bytes in and out of the other. Every HTTP body is complete and carries its
// Content-Length, so a proxy that buffers whole bodies passes it unchanged.
//
//   POST /api/agent/register   {"agent_id","token","tunnels":[...]} -> {"session_id","routes"}
//   GET  /api/agent/pull?session_id=ID&wait=MS   -> 200 with the gateway's bytes, or 204
//   POST /api/agent/respond?session_id=ID        body: the agent's bytes -> 204
//   POST /api/agent/heartbeat?session_id=ID      -> 204 (keeps an idle session alive)
//
// A session nobody pulled, pushed or heartbeat for `session.ttl` is closed.
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "core/asio.h"
#include "gateway/context.h"

namespace proxer::gateway {

struct PollSession {
  explicit PollSession(net::local::stream_protocol::socket s) : end(std::move(s)) {}
  net::local::stream_protocol::socket end;  // the HTTP side of the pair
  std::chrono::steady_clock::time_point last_seen = std::chrono::steady_clock::now();
  bool pulling = false;
  bool pushing = false;
};

struct PollReply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

inline constexpr std::size_t kMaxPollBody = 1024 * 1024;  // respond body and pull answer
inline constexpr auto kMaxPollWait = std::chrono::seconds(30);

// POST /api/agent/register: checks the token, opens the pair and starts the protocol session.
PollReply poll_register(Context& ctx, std::string_view json_body, const std::string& client_addr);
// GET /api/agent/pull: waits up to `wait` for bytes from the gateway's side.
awaitable<PollReply> poll_pull(Context& ctx, std::string_view session_id,
                               std::chrono::milliseconds wait);
// POST /api/agent/respond: feeds the agent's bytes to the protocol session.
awaitable<PollReply> poll_respond(Context& ctx, std::string_view session_id, std::string body);
PollReply poll_heartbeat(Context& ctx, std::string_view session_id);
// One long-poll request, on whichever listener it came: `target` is the request target (path
// under /api/agent/ and query), `body` the whole request body. Unknown endpoints get 404.
awaitable<PollReply> poll_dispatch(Context& ctx, bool post, std::string_view target,
                                   std::string body, const std::string& client_addr);
// An error answer: JSON {"error": message}.
PollReply poll_error(unsigned status, std::string_view message);
// The status line and headers of `reply`: Content-Length always (buffering proxies), no-store,
// and "Connection: close" unless `keep_alive`.
std::string poll_reply_head(const PollReply& reply, bool keep_alive);
// Closes sessions idle past `ttl` (called by the gateway's housekeeping).
void expire_poll_sessions(Context& ctx, std::chrono::milliseconds ttl);

}  // namespace proxer::gateway
