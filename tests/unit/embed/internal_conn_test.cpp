// The engine's internal connections without the gateway (src/embed/internal_conn.h): the pool of
// idle ones and one exchange, against a scripted peer on the other end of each socket pair.
#include "embed/internal_conn.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <functional>
#include <optional>

namespace proxer::embed {
namespace {

namespace bhttp = boost::beast::http;
using Local = net::local::stream_protocol;
using namespace std::chrono_literals;

constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// What the peer of one connection does: gets its socket and the requests it read so far.
using Script = std::function<awaitable<void>(Local::socket&, int& requests)>;

// Reads one request head (the tests send no bodies); false at EOF or on an error.
awaitable<bool> read_request(Local::socket& s, boost::beast::flat_buffer& buf) {
  bhttp::request<bhttp::empty_body> req;
  auto [ec, n] = co_await bhttp::async_read(s, buf, req, use_nothrow);
  co_return !ec;
}

awaitable<void> send(Local::socket& s, std::string_view data) {
  co_await net::async_write(s, net::buffer(data), use_nothrow);
}

// Answers every request with `kOk`, keep-alive.
Script serve_all() {
  return [](Local::socket& s, int& requests) -> awaitable<void> {
    boost::beast::flat_buffer buf;
    while (co_await read_request(s, buf)) {
      ++requests;
      co_await send(s, kOk);
    }
  };
}

// Answers `n` requests with `kOk`; then reads the next one and closes without an answer (a
// gateway side that closed its idle connection as the request came).
Script serve_then_close(int n) {
  return [n](Local::socket& s, int& requests) -> awaitable<void> {
    boost::beast::flat_buffer buf;
    for (int i = 0; i < n; ++i) {
      if (!co_await read_request(s, buf)) co_return;
      ++requests;
      co_await send(s, kOk);
    }
    if (co_await read_request(s, buf)) ++requests;
    error_code ignored;
    s.close(ignored);
  };
}

// Answers the first request with `kOk`, the second with `reply`, then closes.
Script then_reply(std::string reply) {
  return [reply](Local::socket& s, int& requests) -> awaitable<void> {
    boost::beast::flat_buffer buf;
    if (!co_await read_request(s, buf)) co_return;
    ++requests;
    co_await send(s, kOk);
    if (!co_await read_request(s, buf)) co_return;
    ++requests;
    const std::string_view data = reply;
    co_await send(s, data);
    error_code ignored;
    s.shutdown(Local::socket::shutdown_send, ignored);
    co_await read_request(s, buf);  // until the engine's side closes
  };
}

// Answers one request with `reply` and ends its side; closes when the other side did.
Script reply_with(std::string reply) {
  return [reply](Local::socket& s, int& requests) -> awaitable<void> {
    boost::beast::flat_buffer buf;
    if (!co_await read_request(s, buf)) co_return;
    ++requests;
    const std::string_view data = reply;
    co_await send(s, data);
    error_code ignored;
    s.shutdown(Local::socket::shutdown_send, ignored);
    co_await read_request(s, buf);
  };
}

class FakeOpener : public Opener {
 public:
  explicit FakeOpener(net::io_context& ioc) : ioc_(ioc) {}

  std::variant<std::shared_ptr<InternalConn>, Response> open() override {
    ++opened;
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      return error_response(503, "internal_connection", "socketpair failed");
    }
    auto conn = std::make_shared<InternalConn>(ioc_.get_executor());
    conn->sock.assign(Local(), fds[0]);
    auto peer = std::make_shared<Local::socket>(ioc_, Local(), fds[1]);
    peers.push_back(peer);
    Script script = scripts.empty() ? serve_all() : scripts.front();
    if (!scripts.empty()) scripts.pop_front();
    net::co_spawn(
        ioc_, [peer, script, this]() -> awaitable<void> { co_await script(*peer, requests); },
        net::detached);
    return conn;
  }
  bool may_retry() const override { return retry; }

  std::deque<Script> scripts;  // one per connection opened; then serve_all()
  std::vector<std::shared_ptr<Local::socket>> peers;
  int opened = 0;
  int requests = 0;  // read by the peers, all connections together
  bool retry = true;

 private:
  net::io_context& ioc_;
};

class InternalConnTest : public ::testing::Test {
 protected:
  InternalConnTest() {
    auto o = std::make_shared<Outgoing>();
    o->head = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    out = std::move(o);
    limits.timeout = 2s;
  }

  Response run(std::chrono::milliseconds reuse_age = 10s) {
    std::optional<Response> r;
    net::co_spawn(ioc, exchange(*pool, opener, out, limits, reuse_age),
                  [&r](std::exception_ptr e, Response res) {
                    if (e) std::rethrow_exception(e);
                    r = std::move(res);
                  });
    settle([&] { return r.has_value(); });
    if (!r) ADD_FAILURE() << "the exchange did not end";
    return r.value_or(Response{});
  }

  // Runs the loop until `done()` or 3s passed.
  template <typename F>
  void settle(F done) {
    const auto until = std::chrono::steady_clock::now() + 3s;
    ioc.restart();
    while (!done() && std::chrono::steady_clock::now() < until) ioc.run_one_for(10ms);
  }
  // A few turns of the loop (handlers that are already due).
  void poll() {
    ioc.restart();
    for (int i = 0; i < 10; ++i) ioc.poll();
  }

  net::io_context ioc;
  FakeOpener opener{ioc};
  std::shared_ptr<ConnPool> pool = std::make_shared<ConnPool>(4);
  std::shared_ptr<const Outgoing> out;
  ExchangeLimits limits;
};

TEST_F(InternalConnTest, ACleanExchangeKeepsItsConnection) {
  for (int i = 0; i < 5; ++i) {
    auto r = run();
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "ok");
    EXPECT_EQ(pool->idle(), 1u);
  }
  EXPECT_EQ(opener.opened, 1);
  EXPECT_EQ(opener.requests, 5);
}

// The peer read the request on the reused connection and closed without a byte of answer:
// the request is sent once more, on a new connection.
TEST_F(InternalConnTest, AStaleReusedConnectionIsRetriedOnANewOne) {
  opener.scripts = {serve_then_close(1)};
  EXPECT_EQ(run().status, 200u);
  auto r = run();
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(opener.opened, 2);
  EXPECT_EQ(opener.requests, 3);  // one answered, one dropped by the stale peer, one answered
  EXPECT_EQ(pool->idle(), 1u);
}

// Only once: a new connection that also closes gives the error.
TEST_F(InternalConnTest, TheRetryHappensOnce) {
  opener.scripts = {serve_then_close(1), serve_then_close(0)};
  EXPECT_EQ(run().status, 200u);
  auto r = run();
  EXPECT_EQ(r.status, 502u);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "incomplete_response");
  EXPECT_EQ(opener.opened, 2);
  EXPECT_EQ(pool->idle(), 0u);
}

// A new connection that closes before answering is not retried.
TEST_F(InternalConnTest, ANewConnectionIsNotRetried) {
  opener.scripts = {serve_then_close(0)};
  auto r = run();
  EXPECT_EQ(r.status, 502u);
  EXPECT_EQ(opener.opened, 1);
}

// While the gateway drains, a closed reused connection may have been cut mid-request.
TEST_F(InternalConnTest, NoRetryWhileDraining) {
  opener.scripts = {serve_then_close(1)};
  EXPECT_EQ(run().status, 200u);
  opener.retry = false;
  EXPECT_EQ(run().status, 502u);
  EXPECT_EQ(opener.opened, 1);
}

// A response that started and broke off: the request may have been processed, no retry.
TEST_F(InternalConnTest, APartialResponseIsNotRetried) {
  opener.scripts = {then_reply("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")};
  EXPECT_EQ(run().status, 200u);
  auto r = run();
  EXPECT_EQ(r.status, 502u);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "incomplete_response");
  EXPECT_EQ(opener.opened, 1);
  EXPECT_EQ(opener.requests, 2);
}

// Responses after which the connection cannot carry another exchange are delivered, and the
// connection is closed instead of kept.
TEST_F(InternalConnTest, ConnectionsThatCannotBeReusedAreClosed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok"},
      {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok"},
      {"HTTP/1.1 200 OK\r\n\r\nuntil-close", "until-close"},  // framed by the end
      {std::string(kOk) + "HTTP/1.1 200 OK\r\n", "ok"},       // bytes after the response
  };
  for (const auto& [reply, body] : cases) {
    opener.scripts = {reply_with(reply)};
    const int opened = opener.opened;
    auto r = run();
    EXPECT_EQ(r.status, 200u) << reply;
    EXPECT_EQ(r.body, body) << reply;
    EXPECT_EQ(pool->idle(), 0u) << reply;
    EXPECT_EQ(opener.opened, opened + 1);
    EXPECT_FALSE(opener.peers.empty());
  }
  // A clean one is kept again.
  EXPECT_EQ(run().status, 200u);
  EXPECT_EQ(pool->idle(), 1u);
}

// An idle connection whose peer closed is never taken: at once by the liveness check, and
// the pool's watch drops it as soon as the loop runs.
TEST_F(InternalConnTest, AClosedIdleConnectionLeavesThePool) {
  EXPECT_EQ(run().status, 200u);
  ASSERT_EQ(pool->idle(), 1u);
  opener.peers.back()->close();
  EXPECT_EQ(pool->take(10s), nullptr);  // no loop turn in between: the peek saw the close
  EXPECT_EQ(pool->idle(), 0u);

  EXPECT_EQ(run().status, 200u);
  ASSERT_EQ(pool->idle(), 1u);
  opener.peers.back()->close();
  settle([&] { return pool->idle() == 0; });
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(opener.opened, 2);
}

// A connection idle longer than the reuse window is not taken.
TEST_F(InternalConnTest, AnOldIdleConnectionIsNotReused) {
  EXPECT_EQ(run().status, 200u);
  EXPECT_EQ(run(0ms).status, 200u);
  EXPECT_EQ(opener.opened, 2);
}

TEST_F(InternalConnTest, ThePoolKeepsAtMostItsCap) {
  pool = std::make_shared<ConnPool>(2);
  std::vector<std::shared_ptr<InternalConn>> conns;
  for (int i = 0; i < 3; ++i) {
    auto c = std::get<std::shared_ptr<InternalConn>>(opener.open());
    conns.push_back(c);
    pool->give_back(c);
  }
  EXPECT_EQ(pool->idle(), 2u);
  EXPECT_FALSE(conns[0]->sock.is_open());  // the one idle longest
  EXPECT_EQ(pool->take(10s), conns[2]);    // most recently used first
  EXPECT_EQ(pool->take(10s), conns[1]);
  EXPECT_EQ(pool->take(10s), nullptr);
  poll();  // the cancelled watches end

  auto none = std::make_shared<ConnPool>(0);
  none->give_back(conns[1]);
  EXPECT_EQ(none->idle(), 0u);
  EXPECT_FALSE(conns[1]->sock.is_open());
}

TEST_F(InternalConnTest, AfterCloseNothingIsKept) {
  EXPECT_EQ(run().status, 200u);
  auto kept = pool->take(10s);
  ASSERT_NE(kept, nullptr);
  pool->give_back(kept);
  pool->close();
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_FALSE(kept->sock.is_open());
  EXPECT_EQ(run().status, 200u);  // still answers, on a new connection
  EXPECT_EQ(pool->idle(), 0u);
  EXPECT_EQ(opener.opened, 2);
}

// The deadline covers the exchange; the connection is not kept.
TEST_F(InternalConnTest, TheDeadlineEndsTheExchange) {
  opener.scripts = {[](Local::socket& s, int& requests) -> awaitable<void> {
    boost::beast::flat_buffer buf;
    if (co_await read_request(s, buf)) ++requests;
    co_await read_request(s, buf);  // never answers; until the engine's side closes
  }};
  limits.timeout = 200ms;
  auto r = run();
  EXPECT_EQ(r.status, 504u);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "engine_timeout");
  EXPECT_EQ(pool->idle(), 0u);
}

}  // namespace
}  // namespace proxer::embed
