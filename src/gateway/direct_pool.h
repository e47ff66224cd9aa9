#pragma once
// Connections to a direct upstream (an http:// or https:// endpoint of a cluster): connect with
// deadlines, TLS with SNI and verification, and a pool of idle keep-alive connections per
// endpoint (max idle, idle timeout, liveness check before reuse).
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/asio.h"
#include "transport/stream.h"

namespace proxer::gateway {

// Counts the open connections of one endpoint (for the circuit breaker's max_connections and the
// admin API); shared with the connections so it stays right when the pool goes first.
struct PoolCounters {
  std::uint64_t open = 0;
  std::uint64_t connects = 0;  // connections made
  std::uint64_t reuses = 0;    // requests that took an idle connection
};

// One connection to a direct upstream with its receive buffer. The response parser reads it in
// place (peek/consume), like a tunnel stream's receive queue.
class DirectConn {
 public:
  DirectConn(transport::Stream io, std::shared_ptr<PoolCounters> counters);
  ~DirectConn();
  DirectConn(const DirectConn&) = delete;
  DirectConn& operator=(const DirectConn&) = delete;

  awaitable<error_code> write(net::const_buffer data);
  std::span<const std::uint8_t> peek() const {
    return {static_cast<const std::uint8_t*>(in_.data().data()), in_.size()};
  }
  std::size_t buffered() const { return in_.size(); }
  // Waits until something is buffered; net::error::eof when the upstream closed.
  awaitable<error_code> wait_readable() { return wait_more(0); }
  // Waits until more than `have` bytes are buffered.
  awaitable<error_code> wait_more(std::size_t have);
  void consume(std::size_t n) { in_.consume(n); }
  // Wakes pending operations with operation_aborted; the connection is not reused.
  void abort();
  // Marks the connection as not reusable (error, unfinished exchange, Connection: close).
  void discard() { broken_ = true; }
  bool reusable() const { return !broken_ && in_.size() == 0; }
  transport::Stream& io() { return io_; }
  boost::beast::flat_buffer& input() { return in_; }
  // True when the idle connection is still open and has sent nothing (a non-blocking peek at
  // the socket): a server that closed its side makes the read return 0.
  bool alive_while_idle();
  std::chrono::steady_clock::time_point idle_since{};

 private:
  transport::Stream io_;
  boost::beast::flat_buffer in_;
  std::shared_ptr<PoolCounters> counters_;
  bool broken_ = false;
};

// Why a connection could not be made. `timeout` and `refused` become 504/502 errors of their own.
struct ConnectResult {
  error_code ec;
  enum class Stage { None, Connect, Tls } stage = Stage::None;
  std::shared_ptr<DirectConn> conn;
};

// The idle connections of one endpoint. Lives on the gateway's executor.
class DirectPool : public std::enable_shared_from_this<DirectPool> {
 public:
  struct Options {
    std::string host, port;  // where to connect
    bool tls = false;
    std::string server_name;  // SNI and verified name (tls)
    std::shared_ptr<transport::ssl::context> tls_context;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds tls_timeout{5000};
    std::size_t max_idle = 64;
    std::chrono::milliseconds idle_timeout{60'000};
  };
  DirectPool(net::any_io_executor ex, Options opts);
  ~DirectPool();

  // An idle connection that is still good, or nullptr.
  std::shared_ptr<DirectConn> take_idle();
  // A new connection (resolve, connect, TLS), each stage under its deadline.
  awaitable<ConnectResult> connect();
  // Returns a connection whose exchange completed cleanly; closed instead when not reusable or
  // when the pool is full.
  void give_back(std::shared_ptr<DirectConn> c);
  // Closes every idle connection, and from then on those given back (the gateway stops: client
  // connections that end after this return theirs).
  void close_idle();

  const Options& options() const { return opts_; }
  std::size_t idle() const { return idle_.size(); }
  const PoolCounters& counters() const { return *counters_; }
  std::string address() const;  // "host:port" for messages

 private:
  void arm_sweep();

  net::any_io_executor ex_;
  Options opts_;
  std::vector<std::shared_ptr<DirectConn>> idle_;  // most recently used last
  std::shared_ptr<PoolCounters> counters_ = std::make_shared<PoolCounters>();
  net::steady_timer sweep_;
  bool sweep_armed_ = false;
  bool closed_ = false;
};

}  // namespace proxer::gateway
