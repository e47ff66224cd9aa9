#pragma once
// One handle() of the embedded engine: the request goes into the gateway's public request path
// over an internal connection (an AF_UNIX socketpair whose other end PublicServer::adopt()
// serves like any client connection; reused while idle: internal_conn.h), and the response is
// read back with Beast.
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "core/asio.h"
#include "embed/internal_conn.h"
#include "gateway/gateway.h"
#include "proxer/engine.h"

namespace proxer::embed {

namespace bhttp = boost::beast::http;

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

// The head matches() gives the router: method, target and fields as they are.
bhttp::request_header<> match_head(const Request& r);

// The request head sent over the internal connection, or why the request is malformed (400).
// Hop-by-hop fields (Connection among them), Content-Length and Expect are dropped;
// Content-Length (of the body) is set. HTTP/1.1 without Connection: the connection stays open
// for the next request unless the gateway closes it.
std::optional<std::string> serialize_head(const Request& r, std::string& out);

// (client_ip, client_addr) of gateway::AdoptedClient from Request::client_address: an IP
// address ("IP") or "IP:PORT" / "[v6]:PORT"; anything else is "unknown".
std::pair<std::string, std::string> client_of(std::string_view address);

// How long an internal connection may stay idle and still be reused: the gateway closes it
// after `idle_timeout` (timeouts.idle) counted from its last response; a margin (a tenth, at
// most 1s) keeps a reuse from meeting that close.
std::chrono::milliseconds reuse_window(std::chrono::milliseconds idle_timeout);

// Starts one exchange on the gateway's loop (callable from any thread). `limits` and `pool` are
// used on the loop only.
void spawn_exchange(gateway::Gateway& gw, const ExchangeLimits& limits, ConnPool& pool,
                    Request request, std::function<void(Response)> done);

}  // namespace proxer::embed
