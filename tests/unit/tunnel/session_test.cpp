// Session and stream behaviour over an in-memory socket pair (AF_UNIX), both ends in-process.
#include "tunnel/session.h"

#include <gtest/gtest.h>

#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <numeric>

#include "support/run.h"
#include "tunnel/pump.h"

namespace proxer::tunnel {
namespace {

using proxer::testing::run_for;
using proxer::testing::settle;

struct Recorder : SessionHandler {
  std::vector<std::shared_ptr<Stream>> opened;
  std::vector<proto::OpenStream> opens;
  std::vector<proto::FrameType> controls;
  std::string closed_reason;
  bool closed = false;
  void on_control(Session&, const proto::FrameHeader& h, proto::Bytes) override {
    controls.push_back(h.type);
  }
  void on_open(Session&, std::shared_ptr<Stream> s, proto::OpenStream o) override {
    opened.push_back(std::move(s));
    opens.push_back(std::move(o));
  }
  void on_closed(Session&, const std::string& reason) override {
    closed = true;
    closed_reason = reason;
  }
};

struct Pair {
  net::io_context ioc;
  std::shared_ptr<Session> gw, agent;
  std::shared_ptr<Recorder> gw_h = std::make_shared<Recorder>();
  std::shared_ptr<Recorder> agent_h = std::make_shared<Recorder>();

  explicit Pair(std::uint32_t window = 64 * 1024, std::uint32_t max_payload = 16 * 1024) {
    transport::UnixSocket a(ioc), b(ioc);
    net::local::connect_pair(a, b);
    SessionOptions go;
    go.opener = true;
    go.window = window;
    go.max_payload = max_payload;
    go.name = "gw";
    SessionOptions ao = go;
    ao.opener = false;
    ao.name = "agent";
    gw = std::make_shared<Session>(transport::Stream(std::move(a)), go);
    agent = std::make_shared<Session>(transport::Stream(std::move(b)), ao);
    gw->start(gw_h);
    agent->start(agent_h);
  }
  // Sessions and their streams reference each other until the session closes; close both so
  // the test (like the gateway and agent) leaves nothing behind.
  ~Pair() {
    gw->close(proto::ErrorCode::None, "test over");
    agent->close(proto::ErrorCode::None, "test over");
    settle(ioc, std::chrono::milliseconds(20));
  }
};

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 31 + seed) & 0xff);
  return v;
}

awaitable<std::vector<std::uint8_t>> read_all(std::shared_ptr<Stream> s) {
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await s->read_some(net::buffer(buf));
    if (ec) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  co_return out;
}

TEST(Session, OpenStreamCarriesDataBothWaysWithHalfClose) {
  Pair p;
  auto s = p.gw->open_stream({"app", "1.2.3.4:5"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id(), 1u);
  bool ok = run_for(p.ioc, [&]() -> awaitable<void> {
    EXPECT_FALSE(co_await s->write(net::buffer(std::string_view("hello"))));
    s->shutdown_send();
    while (p.agent_h->opened.empty()) co_await net::post(p.ioc, net::use_awaitable);
    auto remote = p.agent_h->opened[0];
    EXPECT_EQ(p.agent_h->opens[0].tunnel, "app");
    EXPECT_EQ(p.agent_h->opens[0].client_addr, "1.2.3.4:5");
    auto got = co_await read_all(remote);
    EXPECT_EQ(std::string(got.begin(), got.end()), "hello");
    EXPECT_FALSE(co_await remote->write(net::buffer(std::string_view("world"))));
    remote->shutdown_send();
    auto back = co_await read_all(s);
    EXPECT_EQ(std::string(back.begin(), back.end()), "world");
  }());
  ASSERT_TRUE(ok);
  settle(p.ioc);
  EXPECT_EQ(p.gw->stream_count(), 0u);
  EXPECT_EQ(p.agent->stream_count(), 0u);
}

TEST(Session, LargeTransfersOnManyStreamsArriveIntactUnderFlowControl) {
  Pair p(32 * 1024, 8 * 1024);  // small window: forces many WINDOW_UPDATE round trips
  constexpr int kStreams = 8;
  constexpr std::size_t kBytes = 2 * 1024 * 1024;
  std::vector<std::shared_ptr<Stream>> streams;
  for (int i = 0; i < kStreams; ++i) streams.push_back(p.gw->open_stream({"app", ""}));
  int done = 0;
  for (int i = 0; i < kStreams; ++i) {
    net::co_spawn(
        p.ioc,
        [&, i]() -> awaitable<void> {
          auto data = pattern(kBytes, static_cast<std::uint8_t>(i));
          EXPECT_FALSE(co_await streams[i]->write(net::buffer(data)));  // large: zero-copy path
          streams[i]->shutdown_send();
          ++done;
        },
        net::detached);
  }
  bool ok = run_for(
      p.ioc,
      [&]() -> awaitable<void> {
        while (p.agent_h->opened.size() < kStreams) co_await net::post(p.ioc, net::use_awaitable);
        for (int i = 0; i < kStreams; ++i) {
          auto got = co_await read_all(p.agent_h->opened[i]);
          EXPECT_EQ(got, pattern(kBytes, static_cast<std::uint8_t>(i))) << "stream " << i;
        }
      }(),
      std::chrono::seconds(30));
  ASSERT_TRUE(ok);
  EXPECT_EQ(done, kStreams);
}

TEST(Session, SenderStopsAtTheWindowUntilTheReceiverReads) {
  Pair p(16 * 1024, 4 * 1024);
  auto s = p.gw->open_stream({"app", ""});
  bool wrote_all = false;
  net::co_spawn(
      p.ioc,
      [&]() -> awaitable<void> {
        auto data = pattern(64 * 1024, 1);
        EXPECT_FALSE(co_await s->write(net::buffer(data)));
        wrote_all = true;
      },
      net::detached);
  settle(p.ioc, std::chrono::milliseconds(100));
  ASSERT_EQ(p.agent_h->opened.size(), 1u);
  auto remote = p.agent_h->opened[0];
  EXPECT_FALSE(wrote_all);
  EXPECT_LE(remote->buffered(), 16u * 1024);  // never more than the window buffered
  bool ok = run_for(p.ioc, [&]() -> awaitable<void> {
    std::array<std::uint8_t, 1024> buf;
    std::size_t total = 0;
    while (total < 64 * 1024) {
      auto [ec, n] = co_await remote->read_some(net::buffer(buf));
      EXPECT_FALSE(ec);
      if (ec) co_return;
      total += n;
      EXPECT_LE(remote->buffered(), 16u * 1024);
    }
  }());
  ASSERT_TRUE(ok);
  settle(p.ioc);
  EXPECT_TRUE(wrote_all);
}

TEST(Session, ResetCarriesItsCodeToThePeer) {
  Pair p;
  auto s = p.gw->open_stream({"app", ""});
  bool ok = run_for(p.ioc, [&]() -> awaitable<void> {
    while (p.agent_h->opened.empty()) co_await net::post(p.ioc, net::use_awaitable);
    p.agent_h->opened[0]->reset(proto::ErrorCode::ConnectRefused);
    std::array<std::uint8_t, 16> buf;
    auto [ec, n] = co_await s->read_some(net::buffer(buf));
    EXPECT_EQ(ec, net::error::connection_reset);
    EXPECT_EQ(s->reset_code(), proto::ErrorCode::ConnectRefused);
  }());
  ASSERT_TRUE(ok);
}

TEST(Session, ClosingTheSessionFailsOpenStreams) {
  Pair p;
  auto s = p.gw->open_stream({"app", ""});
  bool ok = run_for(p.ioc, [&]() -> awaitable<void> {
    while (p.agent_h->opened.empty()) co_await net::post(p.ioc, net::use_awaitable);
    p.agent->close(proto::ErrorCode::Shutdown, "bye");
    std::array<std::uint8_t, 16> buf;
    auto [ec, n] = co_await s->read_some(net::buffer(buf));
    EXPECT_EQ(ec, net::error::connection_aborted);
  }());
  ASSERT_TRUE(ok);
  settle(p.ioc);
  EXPECT_TRUE(p.gw_h->closed);
  EXPECT_NE(p.gw_h->closed_reason.find("shutting down"), std::string::npos)
      << p.gw_h->closed_reason;
}

TEST(Session, HeartbeatsMeasureRoundTripTime) {
  Pair p;
  p.agent->set_heartbeat(std::chrono::milliseconds(20), std::chrono::seconds(5));
  settle(p.ioc, std::chrono::milliseconds(150));
  EXPECT_GT(p.agent->rtt().count(), 0);
  EXPECT_FALSE(p.agent->closed());
}

TEST(Session, SilentPeerIsDroppedAfterTheIdleTimeout) {
  net::io_context ioc;
  transport::UnixSocket a(ioc), b(ioc);
  net::local::connect_pair(a, b);
  SessionOptions o;
  o.opener = true;
  o.idle_timeout = std::chrono::milliseconds(100);
  auto s = std::make_shared<Session>(transport::Stream(std::move(a)), o);
  auto h = std::make_shared<Recorder>();
  s->start(h);
  net::write(b, net::buffer(proto::kPreface));
  settle(ioc, std::chrono::milliseconds(400));
  EXPECT_TRUE(h->closed);
  EXPECT_NE(h->closed_reason.find("heartbeat timeout"), std::string::npos) << h->closed_reason;
}

// Reads frames from a raw peer socket until an ERROR frame; returns its code.
proto::ErrorCode read_error_frame(transport::UnixSocket& sock) {
  std::vector<std::uint8_t> buf(1 << 16);
  std::size_t have = 0;
  error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) {
    have += sock.read_some(net::buffer(buf.data() + have, buf.size() - have), ec);
    std::size_t pos = proto::kPreface.size();
    while (have >= pos + proto::kHeaderSize) {
      auto d = proto::decode(std::span(buf.data() + pos, have - pos), proto::kMaxPayloadCeiling);
      if (d.status != proto::DecodeStatus::Frame) break;
      if (d.header.type == proto::FrameType::Error) {
        return static_cast<proto::ErrorCode>(proto::get_u32(d.payload.data()));
      }
      pos += d.consumed;
    }
  }
  return proto::ErrorCode::None;
}

TEST(Session, MalformedFrameGetsAnErrorFrameAndClose) {
  struct Case {
    const char* name;
    std::vector<std::uint8_t> bytes;
  };
  const std::vector<Case> cases = {
      {"bad version", {9, 0x21, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
      {"unknown type", {1, 0x77, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
      {"oversized", {1, 0x21, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff}},
      // Above this session's max payload but below the protocol ceiling: once made the reader
      // spin on a full buffer; must be refused from the header alone.
      {"above negotiated max", {1, 0x21, 0, 0, 0, 0, 0, 1, 0x00, 0x08, 0x00, 0x00}},
      {"data on stream 0", {1, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"data on unopened stream", {1, 0x21, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 'x'}},
  };
  for (const auto& c : cases) {
    net::io_context ioc;
    transport::UnixSocket a(ioc), b(ioc);
    net::local::connect_pair(a, b);
    SessionOptions o;
    o.opener = false;
    auto s = std::make_shared<Session>(transport::Stream(std::move(a)), o);
    auto h = std::make_shared<Recorder>();
    s->start(h);
    net::write(b, net::buffer(proto::kPreface));
    net::write(b, net::buffer(c.bytes));
    settle(ioc, std::chrono::milliseconds(50));
    EXPECT_TRUE(s->closed() || h->closed) << c.name;
    b.non_blocking(false);
    EXPECT_EQ(read_error_frame(b), proto::ErrorCode::ProtocolError) << c.name;
    settle(ioc, std::chrono::milliseconds(20));
    EXPECT_TRUE(h->closed) << c.name;
  }
}

TEST(Session, BadPrefaceIsRefused) {
  net::io_context ioc;
  transport::UnixSocket a(ioc), b(ioc);
  net::local::connect_pair(a, b);
  auto s = std::make_shared<Session>(transport::Stream(std::move(a)), SessionOptions{});
  auto h = std::make_shared<Recorder>();
  s->start(h);
  net::write(b, net::buffer(std::string_view("GET / HTTP/1.1\r\n\r\n")));
  settle(ioc, std::chrono::milliseconds(50));
  EXPECT_TRUE(h->closed);
  EXPECT_NE(h->closed_reason.find("preface"), std::string::npos) << h->closed_reason;
}

TEST(Session, GoAwayStopsNewStreams) {
  Pair p;
  p.agent->go_away(proto::ErrorCode::Shutdown, "draining");
  settle(p.ioc, std::chrono::milliseconds(50));
  EXPECT_TRUE(p.gw->going_away());
  EXPECT_EQ(p.gw->open_stream({"app", ""}), nullptr);
}

TEST(Session, AStreamThatCrossedTheGoAwayIsStillServed) {
  // The gateway opens a stream before the agent's GOAWAY reaches it (a carrier switch: the
  // OPEN_STREAM is still on its way over the old, slower carrier). The agent serves it: the
  // opener stops only once it has seen the GOAWAY, so whatever arrives after it crossed it.
  Pair p;
  auto s = p.gw->open_stream({"app", ""});
  ASSERT_NE(s, nullptr);
  p.agent->go_away(proto::ErrorCode::None, "moving to another carrier");
  settle(p.ioc, std::chrono::milliseconds(50));
  ASSERT_EQ(p.agent_h->opened.size(), 1u);
  EXPECT_TRUE(p.gw->going_away());
  EXPECT_FALSE(s->is_reset()) << proto::to_string(s->reset_code());
}

TEST(Pump, CopiesBothWaysBetweenSocketAndStream) {
  Pair p;
  tcp::acceptor acc(p.ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  // Echo server on the "local target" side.
  net::co_spawn(
      p.ioc,
      [&]() -> awaitable<void> {
        auto sock = co_await acc.async_accept(net::use_awaitable);
        std::array<char, 4096> buf;
        for (;;) {
          auto [ec, n] = co_await sock.async_read_some(net::buffer(buf), use_nothrow);
          if (ec) break;
          co_await net::async_write(sock, net::buffer(buf.data(), n), use_nothrow);
        }
        sock.shutdown(tcp::socket::shutdown_send);
      },
      net::detached);
  auto s = p.gw->open_stream({"app", ""});
  bool ok = run_for(
      p.ioc,
      [&]() -> awaitable<void> {
        while (p.agent_h->opened.empty()) co_await net::post(p.ioc, net::use_awaitable);
        tcp::socket local(p.ioc);
        co_await local.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                     net::use_awaitable);
        net::co_spawn(p.ioc, pump(p.agent_h->opened[0], std::move(local)), net::detached);
        auto data = pattern(300 * 1024, 7);
        EXPECT_FALSE(co_await s->write(net::buffer(data)));
        s->shutdown_send();
        auto got = co_await read_all(s);
        EXPECT_EQ(got, data);
      }(),
      std::chrono::seconds(20));
  ASSERT_TRUE(ok);
}

}  // namespace
}  // namespace proxer::tunnel
