#include "tunnel/pump.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>

#include <vector>

namespace proxer::tunnel {

using namespace net::experimental::awaitable_operators;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

struct PumpState {
  std::shared_ptr<Stream> stream;
  tcp::socket socket;
  std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
  bool done_up = false;
  bool done_down = false;
  bool failed = false;
  PumpResult result;

  void abort_all(proto::ErrorCode code) {
    if (failed) return;
    failed = true;
    result.reset_code = code;
    stream->reset(code);
    error_code ignored;
    socket.close(ignored);
  }
};

// socket -> stream. Waits for readability first, so an idle connection holds no buffer.
awaitable<void> upstream(PumpState& st) {
  std::vector<std::uint8_t> buf;
  for (;;) {
    auto [wec] = co_await st.socket.async_wait(tcp::socket::wait_read, use_nothrow);
    if (st.failed) co_return;
    if (wec) {
      st.abort_all(proto::ErrorCode::LocalReset);
      co_return;
    }
    if (buf.empty()) buf.resize(kReadChunk);
    error_code ec;
    const std::size_t n = st.socket.read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) continue;
    if (ec == net::error::eof) {
      st.stream->shutdown_send();
      st.done_up = true;
      co_return;
    }
    if (ec) {
      st.abort_all(proto::ErrorCode::LocalReset);
      co_return;
    }
    st.last_activity = std::chrono::steady_clock::now();
    st.result.to_stream += n;
    if (auto wec2 = co_await st.stream->write(net::buffer(buf.data(), n))) {
      st.abort_all(proto::ErrorCode::Cancelled);
      co_return;
    }
    if (n < buf.size() / 4) std::vector<std::uint8_t>().swap(buf);  // quiet: give it back
  }
}

// stream -> socket, written straight from the stream's receive queue.
awaitable<void> downstream(PumpState& st) {
  for (;;) {
    auto ec = co_await st.stream->wait_readable();
    if (st.failed) co_return;
    if (ec == net::error::eof) {
      error_code ignored;
      st.socket.shutdown(tcp::socket::shutdown_send, ignored);
      st.done_down = true;
      co_return;
    }
    if (ec) {
      // Peer reset or session gone: abort the local side too.
      st.failed = true;
      error_code ignored;
      st.socket.close(ignored);
      co_return;
    }
    auto data = st.stream->peek();
    auto [wec, n] = co_await net::async_write(st.socket, net::buffer(data.data(), data.size()),
                                              use_nothrow);
    if (wec) {
      st.abort_all(proto::ErrorCode::LocalReset);
      co_return;
    }
    st.last_activity = std::chrono::steady_clock::now();
    st.result.to_socket += n;
    st.stream->consume(n);
  }
}

awaitable<void> watchdog(PumpState& st, std::chrono::milliseconds idle) {
  net::steady_timer timer(co_await net::this_coro::executor);
  while (!st.failed && !(st.done_up && st.done_down)) {
    timer.expires_at(st.last_activity + idle);
    co_await timer.async_wait(use_nothrow);
    if (st.failed || (st.done_up && st.done_down)) co_return;
    if (std::chrono::steady_clock::now() - st.last_activity >= idle) {
      st.abort_all(proto::ErrorCode::Cancelled);
      co_return;
    }
  }
}

}  // namespace

awaitable<PumpResult> pump(std::shared_ptr<Stream> stream, tcp::socket socket,
                           std::chrono::milliseconds idle_timeout) {
  PumpState st{std::move(stream), std::move(socket)};
  error_code ignored;
  st.socket.non_blocking(true, ignored);
  if (idle_timeout.count() > 0) {
    // The watchdog ends with the pump: || cancels it when both directions are done.
    co_await ((upstream(st) && downstream(st)) || watchdog(st, idle_timeout));
  } else {
    co_await (upstream(st) && downstream(st));
  }
  st.socket.close(ignored);
  if (!st.failed && !(st.stream->fin_sent() && st.stream->fin_received())) {
    st.stream->reset(proto::ErrorCode::Cancelled);
  }
  co_return st.result;
}

}  // namespace proxer::tunnel
