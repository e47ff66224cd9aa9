#include "gateway/upstream.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>

namespace proxer::gateway {

using namespace net::experimental::awaitable_operators;

namespace {

constexpr std::size_t kChunk = 16 * 1024;
using Clock = std::chrono::steady_clock;

struct DirectPumpState {
  std::shared_ptr<DirectConn> conn;
  tcp::socket client;
  Clock::time_point last_activity = Clock::now();
  bool done_up = false, done_down = false, failed = false;
  tunnel::PumpResult result;

  void abort_all() {
    if (failed) return;
    failed = true;
    conn->abort();
    error_code ignored;
    client.close(ignored);
  }
};

// client -> upstream
awaitable<void> client_to_upstream(DirectPumpState& st) {
  auto buf = std::make_unique_for_overwrite<char[]>(kChunk);
  for (;;) {
    auto [ec, n] = co_await st.client.async_read_some(net::buffer(buf.get(), kChunk), use_nothrow);
    if (st.failed) co_return;
    if (ec == net::error::eof) {
      st.conn->io().shutdown_send();
      st.done_up = true;
      co_return;
    }
    if (ec) co_return st.abort_all();
    st.last_activity = Clock::now();
    st.result.to_stream += n;
    if (co_await st.conn->write(net::buffer(buf.get(), n))) co_return st.abort_all();
  }
}

// upstream -> client, from the connection's buffer (it may hold bytes read with the 101 head)
awaitable<void> upstream_to_client(DirectPumpState& st) {
  for (;;) {
    auto ec = co_await st.conn->wait_readable();
    if (st.failed) co_return;
    if (ec == net::error::eof) {
      error_code ignored;
      st.client.shutdown(tcp::socket::shutdown_send, ignored);
      st.done_down = true;
      co_return;
    }
    if (ec) co_return st.abort_all();
    const auto data = st.conn->peek();
    auto [wec, n] =
        co_await net::async_write(st.client, net::buffer(data.data(), data.size()), use_nothrow);
    if (wec) co_return st.abort_all();
    st.last_activity = Clock::now();
    st.result.to_socket += n;
    st.conn->consume(n);
  }
}

awaitable<void> watchdog(DirectPumpState& st, std::chrono::milliseconds idle) {
  net::steady_timer timer(co_await net::this_coro::executor);
  while (!st.failed && !(st.done_up && st.done_down)) {
    timer.expires_at(st.last_activity + idle);
    co_await timer.async_wait(use_nothrow);
    if (st.failed || (st.done_up && st.done_down)) co_return;
    if (Clock::now() - st.last_activity >= idle) co_return st.abort_all();
  }
}

}  // namespace

awaitable<tunnel::PumpResult> pump_direct(std::shared_ptr<DirectConn> conn, tcp::socket client,
                                          std::chrono::milliseconds idle) {
  DirectPumpState st{std::move(conn), std::move(client)};
  if (idle.count() > 0) {
    co_await ((client_to_upstream(st) && upstream_to_client(st)) || watchdog(st, idle));
  } else {
    co_await (client_to_upstream(st) && upstream_to_client(st));
  }
  error_code ignored;
  st.client.close(ignored);
  st.conn->discard();  // an upgraded connection never returns to a pool
  co_return st.result;
}

}  // namespace proxer::gateway
