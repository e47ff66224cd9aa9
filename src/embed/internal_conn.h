#pragma once
// The embedded engine's internal connections (docs/ARCHITECTURE.md §12): AF_UNIX socket pairs
// whose other end the gateway's PublicServer serves like a client connection. This side keeps
// the idle ones (keep-alive HTTP/1.1) for the next handle() and runs one request and response
// over a reused or a new one. Nothing here knows the gateway: a new connection comes from an
// Opener (the gateway's in exchange.cpp, a test's own in the unit tests).
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/asio.h"
#include "proxer/engine.h"

namespace proxer::gateway {
struct AdoptedClient;
}

namespace proxer::embed {

struct ExchangeLimits {
  std::size_t max_head = 64 * 1024;
  std::size_t max_body = 64 * 1024 * 1024;
  std::chrono::milliseconds timeout{90'000};  // from the start to the last body byte
};

// A response of the engine itself, in the gateway's error format (text/plain message,
// X-Proxer-Error: code, Cache-Control: no-store).
Response error_response(unsigned status, std::string_view code, std::string message);

// The engine's end of one internal connection.
struct InternalConn {
  explicit InternalConn(net::any_io_executor ex) : sock(std::move(ex)) {}
  net::local::stream_protocol::socket sock;
  // Who sends the next request, shared with the gateway's side, which reads it when the request
  // begins (null: nothing to tell, as in the unit tests' connections).
  std::shared_ptr<gateway::AdoptedClient> client;
  std::chrono::steady_clock::time_point idle_since{};
  std::uint64_t idle_epoch = 0;  // which stay in the pool the pool's watch belongs to
  bool writing = false;          // a request is still being written
  bool write_failed = false;
};

// The idle internal connections, most recently used first. Lives on the engine's loop; not
// thread-safe. Each idle connection is watched: when the gateway's side closes it (its idle
// timeout, a drain) or sends anything, it leaves the pool and is closed at once.
class ConnPool : public std::enable_shared_from_this<ConnPool> {
 public:
  explicit ConnPool(std::size_t max_idle) : max_idle_(max_idle) {}
  ConnPool(const ConnPool&) = delete;
  ConnPool& operator=(const ConnPool&) = delete;
  ~ConnPool() { close(); }

  // An idle connection that has been idle less than `max_age` and whose other side is still
  // open and silent (a non-blocking peek), or null. The ones found unusable on the way are
  // closed.
  std::shared_ptr<InternalConn> take(std::chrono::milliseconds max_age);
  // Keeps a connection whose exchange completed cleanly, closing the one idle longest when
  // max_idle are kept already; closes it instead when max_idle is 0 or after close().
  void give_back(std::shared_ptr<InternalConn> c);
  // Closes the idle connections; give_back() closes from now on (the engine stops).
  void close();

  std::size_t idle() const { return idle_.size(); }

 private:
  void forget(const InternalConn* c, std::uint64_t epoch);

  std::vector<std::shared_ptr<InternalConn>> idle_;  // most recently used last
  std::size_t max_idle_;
  bool closed_ = false;
};

// What one request sends, kept whole so that it can be sent again on a new connection.
struct Outgoing {
  std::string head;  // serialised, keep-alive
  std::string body;
  std::string client_ip = "unknown", client_addr = "unknown";  // gateway::AdoptedClient
  bool head_method = false;                                    // the response has no body
};

// Where an exchange gets a new connection.
class Opener {
 public:
  virtual ~Opener() = default;
  // A new connection the gateway serves, or the response to give instead (503: at the
  // connection limit, no descriptors).
  virtual std::variant<std::shared_ptr<InternalConn>, Response> open() = 0;
  // Whether a request whose reused connection turned out closed before any response byte may
  // be sent again on a new one. False while the gateway drains: its side may then have been cut
  // in the middle of the request.
  virtual bool may_retry() const = 0;
};

// Sends `out` over an idle connection of `pool` younger than `reuse_age` (else a new one from
// `opener`) and reads the response back within `limits`. The connection goes back to the pool
// when the exchange left it clean: the response complete and framed, keep-alive, nothing after
// it, the request written whole, within the deadline. A reused connection that ends before any
// response byte was closed by the gateway while idle, which had not read the request (the rule
// DirectPool follows for stale upstream connections): the request is sent once more on a new
// connection. Never fails: errors come back as the engine's responses (502 incomplete_response
// and response_too_large, 504 engine_timeout, 503 from the opener).
awaitable<Response> exchange(ConnPool& pool, Opener& opener, std::shared_ptr<const Outgoing> out,
                             const ExchangeLimits& limits, std::chrono::milliseconds reuse_age);

}  // namespace proxer::embed
