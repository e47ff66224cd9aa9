#pragma once
// The upstream side of one proxied exchange: a tunnel stream (through an agent) or a connection
// to a direct endpoint. The forwarding code in public_server.cpp relays through this one type;
// only acquiring it and naming its failures differ. Two alternatives, known at compile time: a
// branch per call instead of a virtual call, and no allocation per request.
#include <memory>
#include <span>
#include <string_view>

#include "gateway/direct_pool.h"
#include "tunnel/pump.h"
#include "tunnel/session.h"

namespace proxer::gateway {

class Upstream {
 public:
  Upstream() = default;
  explicit Upstream(std::shared_ptr<tunnel::Stream> s) : stream_(std::move(s)) {}
  explicit Upstream(std::shared_ptr<DirectConn> c) : conn_(std::move(c)) {}

  explicit operator bool() const { return stream_ || conn_; }
  tunnel::Stream* stream() const { return stream_.get(); }
  DirectConn* conn() const { return conn_.get(); }
  std::shared_ptr<tunnel::Stream> take_stream() { return std::move(stream_); }
  std::shared_ptr<DirectConn> take_conn() { return std::move(conn_); }

  awaitable<error_code> write(net::const_buffer b) {
    return stream_ ? stream_->write(b) : conn_->write(b);
  }
  std::string_view peek() const { return view(stream_ ? stream_->peek() : conn_->peek()); }
  // All buffered bytes as one run (the tunnel queue merges its chunks).
  std::string_view peek_all() const { return view(stream_ ? stream_->peek_all() : conn_->peek()); }
  std::size_t buffered() const { return stream_ ? stream_->buffered() : conn_->buffered(); }
  awaitable<error_code> wait_readable() {
    return stream_ ? stream_->wait_readable() : conn_->wait_readable();
  }
  awaitable<error_code> wait_more(std::size_t have) {
    return stream_ ? stream_->wait_more(have) : conn_->wait_more(have);
  }
  void consume(std::size_t n) { stream_ ? stream_->consume(n) : conn_->consume(n); }
  bool reusable() const { return stream_ ? stream_->reusable() : conn_->reusable(); }
  // Gives up the exchange: the stream is reset, the connection closed. Empties this.
  void discard() {
    if (stream_) stream_->reset(proto::ErrorCode::Cancelled);
    if (conn_) conn_->discard();
    stream_.reset();
    conn_.reset();
  }
  // Wakes this upstream's pending operations with operation_aborted (a deadline passed).
  void abort() {
    if (stream_) stream_->abort();
    if (conn_) conn_->abort();
  }

 private:
  static std::string_view view(std::span<const std::uint8_t> s) {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  std::shared_ptr<tunnel::Stream> stream_;
  std::shared_ptr<DirectConn> conn_;
};

// Two-way copy between a client socket and a direct upstream connection after a 101 (bytes the
// connection had buffered go to the client first). Ends when both directions are done, or after
// `idle` without traffic (0: never).
awaitable<tunnel::PumpResult> pump_direct(std::shared_ptr<DirectConn> conn, tcp::socket client,
                                          std::chrono::milliseconds idle);

}  // namespace proxer::gateway
