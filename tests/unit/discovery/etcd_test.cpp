// etcd discovery against a real etcd on free loopback ports, and against a scripted fake for
// what a real etcd cannot be made to do on cue (a compacted watch, a silent one, a huge message).
#include "discovery/etcd.h"

#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "servers.h"

namespace proxer::discovery {
namespace {

using namespace testing;

EtcdOptions options(const std::string& endpoint, const std::string& prefix) {
  EtcdOptions o;
  o.endpoint = endpoint;
  o.prefix = prefix;
  o.connect_timeout = 1s;
  o.request_timeout = 2s;
  o.idle_timeout = 3s;  // etcd sends a progress notification every 500 ms (servers.cpp)
  o.reconnect_min = 100ms;
  o.reconnect_max = 500ms;
  return o;
}

TEST(Etcd, InitialSetThenPutsAndDeletes) {
  Etcd etcd;
  ASSERT_NO_FATAL_FAILURE(etcd.start());
  etcd.put("/svc/web/a", "10.0.0.1:8080");
  etcd.put("/svc/web/b", R"({"host": "10.0.0.2", "port": 8080, "weight": 5})");
  etcd.put("/svc/webx", "10.9.9.9:80");  // outside the prefix
  etcd.put("/svc/wea", "10.9.9.9:80");

  net::io_context ioc;
  LogCapture logs;
  Updates u;
  EtcdProvider p(ioc.get_executor(), options(etcd.endpoint(), "/svc/web/"));
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 8080, 1}, {"10.0.0.2", 8080, 5}}))
      << (u.all.empty() ? "no update" : describe(u.all.back())) << "\n"
      << etcd.log();

  etcd.put("/svc/web/c", R"({"url": "http://Backend.Test:9000", "weight": 2})");
  ASSERT_TRUE(u.wait_for(
      ioc, {{"10.0.0.1", 8080, 1}, {"10.0.0.2", 8080, 5}, {"backend.test", 9000, 2}}, 5s))
      << describe(u.all.back());
  etcd.del("/svc/web/a");
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.2", 8080, 5}, {"backend.test", 9000, 2}}, 5s))
      << describe(u.all.back());

  // A bad value is skipped with a warning naming the key; a good key after it still counts.
  etcd.put("/svc/web/bad", "not an endpoint");
  etcd.put("/svc/web/d", "[fd00::4]:80");
  ASSERT_TRUE(
      u.wait_for(ioc, {{"10.0.0.2", 8080, 5}, {"backend.test", 9000, 2}, {"fd00::4", 80, 1}}, 5s))
      << describe(u.all.back());
  EXPECT_EQ(logs.count("key '/svc/web/bad' skipped"), 1u);

  // A key whose value turns bad leaves the set.
  etcd.put("/svc/web/b", R"({"host": "10.0.0.2", "port": 8080, "weight": 0})");
  ASSERT_TRUE(u.wait_for(ioc, {{"backend.test", 9000, 2}, {"fd00::4", 80, 1}}, 5s))
      << describe(u.all.back());
  EXPECT_EQ(logs.count("key '/svc/web/b' skipped"), 1u);

  // An idle watch lives on progress notifications: no reconnect, no warning.
  run_for(ioc, 3500ms);
  EXPECT_EQ(logs.count("keeping the last endpoint set"), 0u);
  etcd.put("/svc/web/e", "10.0.0.5:80");
  EXPECT_TRUE(Updates::wait(
      ioc, [&] { return u.all.back().size() == 3; }, 5s));
}

TEST(Etcd, ServerDownKeepsTheLastSetAndRecovers) {
  Etcd etcd;
  ASSERT_NO_FATAL_FAILURE(etcd.start());
  etcd.put("/svc/web/a", "10.0.0.1:8080");
  net::io_context ioc;
  LogCapture logs;
  Updates u;
  EtcdProvider p(ioc.get_executor(), options(etcd.endpoint(), "/svc/web/"));
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 8080, 1}}));

  etcd.stop();
  run_for(ioc, 2s);
  EXPECT_EQ(u.all.size(), 1u);
  EXPECT_GE(logs.count("keeping the last endpoint set"), 1u);
  EXPECT_LE(logs.count("keeping the last endpoint set"), 2u);  // watch broke, then refused

  ASSERT_NO_FATAL_FAILURE(etcd.start());  // same data, same ports
  etcd.put("/svc/web/b", "10.0.0.2:8080");
  EXPECT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 8080, 1}, {"10.0.0.2", 8080, 1}}, 8s))
      << describe(u.all.back()) << "\n"
      << etcd.log();
  EXPECT_GE(logs.count("recovered"), 1u);
}

TEST(Etcd, EmptyPrefixIsAValidEmptySetAndUnreachableGivesNone) {
  Etcd etcd;
  ASSERT_NO_FATAL_FAILURE(etcd.start());
  net::io_context ioc;
  Updates empty, none;
  EtcdProvider p1(ioc.get_executor(), options(etcd.endpoint(), "/nothing/"));
  EtcdProvider p2(ioc.get_executor(),
                  options("http://127.0.0.1:" + std::to_string(free_port()), "/svc/"));
  p1.start(empty.callback());
  p2.start(none.callback());
  EXPECT_TRUE(empty.wait_for(ioc, {}));
  run_for(ioc, 500ms);
  EXPECT_TRUE(none.all.empty());
}

// ---- a scripted etcd ----

namespace http = boost::beast::http;

std::string kv(const std::string& key, const std::string& value) {
  return R"({"key":")" + base64(key) + R"(","value":")" + base64(value) + R"("})";
}
std::string range_body(int revision, const std::vector<std::string>& kvs) {
  std::string out = R"({"header":{"revision":")" + std::to_string(revision) + R"("},"kvs":[)";
  for (std::size_t i = 0; i < kvs.size(); ++i) out += (i ? "," : "") + kvs[i];
  return out + "]}";
}
const std::string kCreated = R"({"result":{"header":{"revision":"5"},"created":true}})";

// Answers the n-th range with ranges[min(n, size-1)] and the n-th watch with the messages of
// watches[...], then keeps the watch open and silent.
class FakeEtcd {
 public:
  explicit FakeEtcd(net::io_context& ioc)
      : ioc_(ioc), acceptor_(ioc, {net::ip::make_address("127.0.0.1"), 0}) {
    net::co_spawn(ioc, accept(), DetachedTask{"fake etcd"});
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::vector<std::string> ranges;
  std::vector<std::vector<std::string>> watches;
  int range_count = 0, watch_count = 0;
  std::string last_watch_request;

 private:
  awaitable<void> accept() {
    for (;;) {
      auto [ec, s] = co_await acceptor_.async_accept(use_nothrow);
      if (ec) co_return;
      auto ex = ioc_.get_executor();
      net::co_spawn(ex, serve(std::move(s)), DetachedTask{"fake etcd conn"});
    }
  }
  awaitable<void> serve(tcp::socket s) {
    boost::beast::flat_buffer buf;
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(s, buf, req, use_nothrow);
    if (ec) co_return;
    if (req.target() == "/v3/kv/range") {
      const auto& body = ranges.at(std::min<std::size_t>(range_count++, ranges.size() - 1));
      const std::string res =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body;
      co_await net::async_write(s, net::buffer(res), use_nothrow);
      co_return;
    }
    last_watch_request = req.body();
    const auto& msgs = watches.at(std::min<std::size_t>(watch_count++, watches.size() - 1));
    std::string res =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    for (const auto& m : msgs) {
      const std::string line = m + "\n";
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", line.size());
      res += size + line + "\r\n";
    }
    co_await net::async_write(s, net::buffer(res), use_nothrow);
    // Silent from here on, until the client goes away.
    char c;
    co_await s.async_read_some(net::buffer(&c, 1), use_nothrow);
    (void)n;
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

TEST(EtcdFake, CompactedWatchReadsTheRangeAgainAtOnce) {
  net::io_context ioc;
  FakeEtcd fake(ioc);
  fake.ranges = {range_body(5, {kv("/s/a", "10.0.0.1:80")}),
                 range_body(12, {kv("/s/a", "10.0.0.1:80"), kv("/s/b", "10.0.0.2:80")})};
  fake.watches = {{kCreated, R"({"result":{"header":{},"canceled":true,"compact_revision":"9"}})"},
                  {kCreated}};
  auto o = options(fake.endpoint(), "/s/");
  o.reconnect_min = o.reconnect_max = 10s;  // a backoff delay would fail the test
  Updates u;
  EtcdProvider p(ioc.get_executor(), o);
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 80, 1}, {"10.0.0.2", 80, 1}}, 3s))
      << (u.all.empty() ? "no update" : describe(u.all.back()));
  EXPECT_EQ(fake.range_count, 2);
  // The second watch starts after the second range's revision.
  EXPECT_TRUE(Updates::wait(
      ioc,
      [&] { return fake.last_watch_request.find(R"("start_revision":"13")") != std::string::npos; },
      3s))
      << fake.last_watch_request;
  EXPECT_NE(fake.last_watch_request.find(R"("progress_notify":true)"), std::string::npos);
  EXPECT_NE(fake.last_watch_request.find(R"("range_end":")" + base64("/s0") + "\""),
            std::string::npos);
}

TEST(EtcdFake, SilentWatchHitsTheIdleDeadline) {
  net::io_context ioc;
  FakeEtcd fake(ioc);
  fake.ranges = {range_body(5, {kv("/s/a", "10.0.0.1:80")}),
                 range_body(7, {kv("/s/b", "10.0.0.2:80")})};
  fake.watches = {{kCreated}};
  auto o = options(fake.endpoint(), "/s/");
  o.idle_timeout = 300ms;
  LogCapture logs;
  Updates u;
  EtcdProvider p(ioc.get_executor(), o);
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.2", 80, 1}}, 5s));
  EXPECT_EQ(u.all.size(), 2u);
  EXPECT_EQ(logs.count("watch idle for 300 ms; keeping"), 1u);
}

TEST(EtcdFake, OversizedMessagesAndBadStreamsBreakTheWatchNotTheSet) {
  net::io_context ioc;
  FakeEtcd fake(ioc);
  fake.ranges = {range_body(5, {kv("/s/a", "10.0.0.1:80")})};
  const std::string huge = R"({"result":{"header":{},"events":[{"kv":{"key":"L3MvYg==","value":")" +
                           std::string(4000, 'A') + R"("}}]}})";
  fake.watches = {
      {kCreated, huge}, {kCreated, "{not json"}, {R"({"error":{"message":"boom"}})"}, {kCreated}};
  auto o = options(fake.endpoint(), "/s/");
  o.max_response_bytes = 2048;
  LogCapture logs;
  Updates u;
  EtcdProvider p(ioc.get_executor(), o);
  p.start(u.callback());
  EXPECT_TRUE(Updates::wait(
      ioc, [&] { return fake.watch_count >= 4; }, 8s));
  run_for(ioc, 100ms);
  EXPECT_EQ(logs.count("watch message larger than 2048 bytes; keeping"), 1u);
  EXPECT_EQ(logs.count("bad JSON in the stream; keeping"), 1u);
  EXPECT_EQ(logs.count("boom; keeping"), 1u);
  ASSERT_EQ(u.all.size(), 1u);
  EXPECT_EQ(u.all[0], (std::vector<Target>{{"10.0.0.1", 80, 1}}));
}

TEST(EtcdFake, StopInsideTheCallbackEndsEverything) {
  net::io_context ioc;
  FakeEtcd fake(ioc);
  fake.ranges = {range_body(5, {kv("/s/a", "10.0.0.1:80")})};
  const std::string put_b = R"({"result":{"header":{},"events":[{"kv":{"key":")" + base64("/s/b") +
                            R"(","value":")" + base64("10.0.0.2:80") + R"("}}]}})";
  fake.watches = {{kCreated, put_b, put_b}};
  int calls = 0;
  auto p = std::make_unique<EtcdProvider>(ioc.get_executor(), options(fake.endpoint(), "/s/"));
  p->start([&](const std::vector<Target>& set) {
    ++calls;
    if (set.size() == 2) p.reset();  // destroys the provider from inside its callback
  });
  ASSERT_TRUE(Updates::wait(
      ioc, [&] { return p == nullptr; }, 3s));
  run_for(ioc, 300ms);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(fake.range_count, 1);
}

TEST(Etcd, Options) {
  EtcdOptions o;
  EXPECT_NE(validate(o), "");  // no prefix
  o.prefix = "/s/";
  EXPECT_EQ(validate(o), "");
  for (const char* bad : {"https://127.0.0.1:2379", "127.0.0.1:2379", "http://127.0.0.1",
                          "http://127.0.0.1:2379/v3"}) {
    o.endpoint = bad;
    EXPECT_NE(validate(o), "") << bad;
  }
  o.endpoint = "http://[::1]:2379/";
  EXPECT_EQ(validate(o), "");
  net::io_context ioc;
  EXPECT_THROW(EtcdProvider(ioc.get_executor(), EtcdOptions{}), std::invalid_argument);
}

}  // namespace
}  // namespace proxer::discovery
