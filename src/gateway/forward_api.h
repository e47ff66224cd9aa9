#pragma once
// POST /forward on the admin listener: one HTTP request through a tunnel, described in JSON and
// answered in JSON, for scripts and health probes that should not need a public route.
//
//   request:  {"tunnel": "app", "method": "GET", "path": "/x?y=1",
//              "headers": {"Accept": "text/plain", "X-Many": ["a", "b"]},
//              "body": "text" | "body_base64": "...", "timeout_ms": 5000}
//   response: {"status": 200, "headers": {"content-type": "text/plain", ...},
//              "body": "..." | "body_base64": "...", "duration_ms": 1.234}
//
// Only `tunnel` is required (method GET, path "/", no headers, empty body, timeout
// timeouts.forward). The request is sent with Content-Length and Connection: close over a fresh
// stream; the response body is limited to kMaxForwardBody and returned as "body" when it is
// valid UTF-8, else as "body_base64". Header names in the answer are lower-case; a repeated
// header gives an array of values. Errors are JSON too: {"error": "..."} with 400 (bad request
// JSON), 404 (no such tunnel), 502 (agent or local service failed), 504 (timeout).
#include <string>
#include <string_view>

#include "core/asio.h"
#include "gateway/context.h"

namespace proxer::gateway {

inline constexpr std::size_t kMaxForwardBody = 10 * 1024 * 1024;

struct ForwardReply {
  unsigned status = 200;  // status of the admin response itself
  std::string json;
};

awaitable<ForwardReply> forward_json(Context& ctx, std::string_view request_json);

// The parsed request (exposed for unit tests): nullopt and *error on invalid input.
struct ForwardRequest {
  std::string tunnel;
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{0};  // 0: the configured default
};
std::optional<ForwardRequest> parse_forward_request(std::string_view json, std::string* error);
// The HTTP/1.1 request written into the stream.
std::string forward_request_head(const ForwardRequest& r, std::string_view default_host);

}  // namespace proxer::gateway
