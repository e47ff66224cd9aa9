#include "transport/send_now.h"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <string>
#include <vector>

namespace proxer::transport {
namespace {

// A connected loopback pair: `a` writes, `b` reads.
struct Pair {
  net::io_context io;
  tcp::socket a{io};
  tcp::socket b{io};
  Pair() {
    tcp::acceptor acc(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    a.connect(acc.local_endpoint());
    b = acc.accept();
  }
  std::string read_exactly(std::size_t n) {
    std::string got(n, '\0');
    net::read(b, net::buffer(got));
    return got;
  }
};

TEST(SendNow, GathersBuffersInOneCall) {
  Pair p;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  const std::string body = "hello";
  const std::array bufs{net::buffer(head), net::const_buffer(), net::buffer(body)};
  error_code ec;
  EXPECT_EQ(send_now(p.a, bufs, ec), head.size() + body.size());
  EXPECT_FALSE(ec);
  EXPECT_EQ(p.read_exactly(head.size() + body.size()), head + body);
  EXPECT_EQ(send_now(p.a, std::span<const net::const_buffer>(), ec), 0u);
  EXPECT_FALSE(ec);
}

TEST(SendNow, AtMostSixteenBuffersNowAndWriteAllSendsTheRest) {
  Pair p;
  std::vector<std::string> parts;
  for (int i = 0; i < 20; ++i) parts.push_back(std::to_string(i) + ";");
  std::vector<net::const_buffer> bufs;
  std::string all, first16;
  for (int i = 0; i < 20; ++i) {
    bufs.push_back(net::buffer(parts[i]));
    all += parts[i];
    if (i < 16) first16 += parts[i];
  }
  error_code ec;
  EXPECT_EQ(send_now(p.a, bufs, ec), first16.size());
  EXPECT_EQ(p.read_exactly(first16.size()), first16);
  std::tuple<error_code, std::size_t> res;
  net::co_spawn(
      p.io, [&]() -> awaitable<void> { res = co_await write_all(p.a, bufs); }, net::detached);
  p.io.run_for(std::chrono::seconds(30));
  EXPECT_FALSE(std::get<0>(res));
  EXPECT_EQ(std::get<1>(res), all.size());
  EXPECT_EQ(p.read_exactly(all.size()), all);
}

// A socket that cannot take everything: send_now sends a part and reports no error; write_rest
// delivers the rest, in order, once the reader drains the socket.
TEST(SendNow, FullSocketIsNotAnErrorAndWriteRestFinishes) {
  Pair p;
  // More than the two sockets' buffers hold together. (Shrinking them instead makes the
  // receiver's window reopen only through the sender's zero-window probes, seconds apart.)
  std::string big(64 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  const std::array<net::const_buffer, 1> bufs{net::buffer(big)};
  // Send until the socket takes nothing more (the peer is not reading): parts, then 0, and
  // never an error.
  error_code ec;
  std::size_t now = 0;
  int calls = 0;
  for (;; ++calls) {
    const auto n =
        send_now(p.a, std::array{net::const_buffer(big.data() + now, big.size() - now)}, ec);
    ASSERT_FALSE(ec) << ec.message();
    if (n == 0) break;
    now += n;
    ASSERT_LT(now, big.size());
  }
  EXPECT_GT(now, 0u);
  EXPECT_GE(calls, 1);

  std::tuple<error_code, std::size_t> wrote;
  std::string got;
  net::co_spawn(
      p.io, [&]() -> awaitable<void> { wrote = co_await write_rest(p.a, bufs, now); },
      net::detached);
  net::co_spawn(
      p.io,
      [&]() -> awaitable<void> {
        got.resize(big.size());
        auto [rec, n] = co_await net::async_read(p.b, net::buffer(got), use_nothrow);
        EXPECT_FALSE(rec);
        EXPECT_EQ(n, big.size());
      },
      net::detached);
  p.io.run_for(std::chrono::seconds(30));
  EXPECT_FALSE(std::get<0>(wrote));
  EXPECT_EQ(std::get<1>(wrote), big.size() - now);
  EXPECT_TRUE(got == big);
}

// A peer that is gone: an error, not SIGPIPE (which would end this test binary).
TEST(SendNow, ClosedPeerIsAnErrorNotASignal) {
  Pair p;
  p.b.set_option(net::socket_base::linger(true, 0));  // close with RST
  p.b.close();
  const std::string data(64 * 1024, 'x');
  error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) send_now(p.a, std::array{net::buffer(data)}, ec);
  EXPECT_TRUE(ec == net::error::broken_pipe || ec == net::error::connection_reset) << ec.message();
}

}  // namespace
}  // namespace proxer::transport
