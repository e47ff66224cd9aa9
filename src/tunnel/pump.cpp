#include "tunnel/pump.h"

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <memory>

namespace proxer::tunnel {

using namespace net::experimental::awaitable_operators;

namespace {

constexpr std::size_t kSmallRead = 2 * 1024;
constexpr std::size_t kLargeRead = 64 * 1024;

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

// socket -> stream. An ordinary read into a small buffer kept in the coroutine frame waits for
// data, so an idle connection holds only that. (Waiting with async_wait(wait_read) instead costs an
// epoll_ctl per wait: Asio re-arms the descriptor for every non-speculative operation.) When a read
// fills the small buffer, more is coming: a large buffer takes over until reads turn short again.
awaitable<void> upstream(PumpState& st) {
  std::array<std::uint8_t, kSmallRead> small;
  std::unique_ptr<std::uint8_t[]> large;
  for (;;) {
    const net::mutable_buffer into =
        large ? net::buffer(large.get(), kLargeRead) : net::buffer(small);
    auto [ec, n] = co_await st.socket.async_read_some(into, use_nothrow);
    if (st.failed) co_return;
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
    if (auto wec = co_await st.stream->write(net::buffer(into.data(), n))) {
      st.abort_all(proto::ErrorCode::Cancelled);
      co_return;
    }
    if (!large && n == kSmallRead) {
      large = std::make_unique_for_overwrite<std::uint8_t[]>(kLargeRead);
    } else if (large && n < kLargeRead / 8) {
      large.reset();  // quiet again: give it back
    }
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
    auto [wec, n] =
        co_await net::async_write(st.socket, net::buffer(data.data(), data.size()), use_nothrow);
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
