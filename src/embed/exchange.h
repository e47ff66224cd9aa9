#pragma once
// One handle() of the embedded engine: the request goes into the gateway's public request path
// over an internal connection (an AF_UNIX socketpair whose other end PublicServer::adopt()
// serves like any client connection), and the response is read back with Beast.
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "core/asio.h"
#include "gateway/gateway.h"
#include "proxer/engine.h"

namespace proxer::embed {

namespace bhttp = boost::beast::http;

struct ExchangeLimits {
  std::size_t max_head = 64 * 1024;
  std::size_t max_body = 64 * 1024 * 1024;
  std::chrono::milliseconds timeout{90'000};  // from the start to the last body byte
};

// The caller's completion: called exactly once. When it was never called (its task destroyed
// because the engine's loop stopped), the destructor answers 503 engine_stopped. Exceptions
// from the callback are logged, not propagated.
class Reply {
 public:
  explicit Reply(std::function<void(Response)> fn) : fn_(std::move(fn)) {}
  Reply(Reply&& o) noexcept : fn_(std::exchange(o.fn_, nullptr)) {}
  Reply& operator=(Reply&&) = delete;
  ~Reply();
  void operator()(Response r) noexcept;

 private:
  std::function<void(Response)> fn_;
};

// A response of the engine itself, in the gateway's error format (text/plain message,
// X-Proxer-Error: code, Cache-Control: no-store).
Response error_response(unsigned status, std::string_view code, std::string message);

// The head matches() gives the router: method, target and fields as they are.
bhttp::request_header<> match_head(const Request& r);

// The request head sent over the internal connection, or why the request is malformed (400).
// Hop-by-hop fields, Content-Length and Expect are dropped; Content-Length (of the body) and
// "Connection: close" are set.
std::optional<std::string> serialize_head(const Request& r, std::string& out);

// (client_ip, client_addr) for PublicServer::adopt from Request::client_address: an IP address
// ("IP") or "IP:PORT" / "[v6]:PORT"; anything else is "unknown".
std::pair<std::string, std::string> client_of(std::string_view address);

// Starts one exchange on the gateway's loop (callable from any thread). `limits` is read on
// the loop only.
void spawn_exchange(gateway::Gateway& gw, const ExchangeLimits& limits, Request request,
                    std::function<void(Response)> done);

}  // namespace proxer::embed
