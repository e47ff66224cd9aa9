// proxer::Engine through its public API only (include/proxer/engine.h), against a real HTTP
// upstream on loopback run by the test.
#include <gtest/gtest.h>
#include <proxer/engine.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/asio.h"

namespace {

namespace bhttp = boost::beast::http;
using proxer::net::ip::tcp;
using namespace std::chrono_literals;

// A small HTTP/1.1 upstream on 127.0.0.1 with its own thread:
//   /big      5000 bytes
//   /slow     answers after 2s
//   /noframe  "unframed", neither Content-Length nor chunked: the body ends with the connection
//   other     "METHOD TARGET\nxff=X-Forwarded-For\nbody=BODY", plus hop-by-hop fields
class Upstream {
 public:
  Upstream() : acceptor_(ioc_, tcp::endpoint(proxer::net::ip::make_address("127.0.0.1"), 0)) {
    proxer::net::co_spawn(ioc_, accept(), proxer::net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Upstream() {
    ioc_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int requests() const { return requests_; }

 private:
  proxer::awaitable<void> accept() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(proxer::use_nothrow);
      if (ec) co_return;
      proxer::net::co_spawn(ioc_, serve(std::move(sock)), proxer::net::detached);
    }
  }
  proxer::awaitable<void> serve(tcp::socket sock) {
    boost::beast::flat_buffer buf;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(sock, buf, req, proxer::use_nothrow);
      if (ec) co_return;
      ++requests_;
      if (req.target() == "/noframe") {
        static constexpr std::string_view kUnframed =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nunframed";
        co_await proxer::net::async_write(sock, proxer::net::buffer(kUnframed),
                                          proxer::use_nothrow);
        co_return;
      }
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      if (req.target() == "/big") {
        res.body().assign(5000, 'x');
      } else {
        if (req.target() == "/slow") {
          proxer::net::steady_timer t(ioc_, 2s);
          co_await t.async_wait(proxer::use_nothrow);
        }
        res.body() = std::string(req.method_string()) + " " + std::string(req.target()) +
                     "\nxff=" + std::string(req["X-Forwarded-For"]) + "\nbody=" + req.body();
        res.set("X-Upstream", "yes");
        res.set(bhttp::field::keep_alive, "timeout=5");
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await bhttp::async_write(sock, res, proxer::use_nothrow);
      if (wec || !req.keep_alive()) co_return;
    }
  }

  proxer::net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<int> requests_{0};
};

// A loopback port that refuses connections while the object lives (bound, not listening).
class ClosedPort {
 public:
  ClosedPort() : sock_(ioc_) {
    sock_.open(tcp::v4());
    sock_.bind(tcp::endpoint(proxer::net::ip::make_address("127.0.0.1"), 0));
  }
  std::uint16_t port() const { return sock_.local_endpoint().port(); }

 private:
  proxer::net::io_context ioc_;
  tcp::socket sock_;
};

std::string config(std::uint16_t up, std::uint16_t closed, const std::string& extra = "") {
  return extra + R"(
[[routes]]
name = "api"
path_prefix = "/api/"
cluster = "direct"
strip_prefix = true
[routes.response_headers]
set = { "X-Route" = "api" }

[[routes]]
name = "submit"
host = "example.test"
path_prefix = "/submit"
methods = ["POST"]
cluster = "direct"

[[routes]]
name = "down"
path_prefix = "/down/"
cluster = "down"

[clusters.direct]
endpoints = ["http://127.0.0.1:)" +
         std::to_string(up) + R"("]

[clusters.down]
endpoints = ["http://127.0.0.1:)" +
         std::to_string(closed) + R"("]
)";
}

proxer::Request get(std::string target, std::vector<proxer::Header> headers = {}) {
  proxer::Request r;
  r.target = std::move(target);
  r.headers = std::move(headers);
  r.headers.push_back({"Host", "example.test"});
  r.client_address = "192.0.2.7:5555";
  return r;
}

// Descriptors open in this process (the engine's, the test upstream's and the test's own).
std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Polls `value()` until it equals `want` (closes complete on other threads) for up to 3s.
template <typename F>
auto settles_at(F value, decltype(value()) want) {
  const auto until = std::chrono::steady_clock::now() + 3s;
  auto v = value();
  while (v != want && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
    v = value();
  }
  return v;
}

// The gateway's open public client connections (the engine's internal ones), from the admin
// API's /api/health.
long connections(std::uint16_t admin_port) {
  proxer::net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(proxer::net::ip::make_address("127.0.0.1"), admin_port));
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/api/health", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.keep_alive(false);
  bhttp::write(s, req);
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res);
  const auto& body = res.body();
  const auto at = body.find("\"connections\":");
  if (at == std::string::npos) return -1;
  return std::stol(body.substr(at + 14));
}

proxer::Response wait(std::future<proxer::Response> f) {
  if (f.wait_for(20s) != std::future_status::ready) {
    ADD_FAILURE() << "no response within 20s";
    return {};
  }
  return f.get();
}

class EngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<proxer::Engine> started(proxer::EngineOptions o = {}, std::string extra = "") {
    auto e = proxer::Engine::create(config(up.port(), closed.port(), extra), std::move(o));
    e->start();
    return e;
  }
  Upstream up;
  ClosedPort closed;
};

TEST(EngineConfig, EveryErrorIsReported) {
  const std::string bad = R"(
listn = "127.0.0.1:1"
[timeouts]
request = 30
[[routes]]
path_prefix = "/x/"
cluster = "missing"
)";
  try {
    proxer::Engine::create(bad);
    FAIL() << "create() accepted a bad configuration";
  } catch (const proxer::ConfigError& e) {
    EXPECT_GE(e.errors().size(), 2u);
    const std::string all = e.what();
    EXPECT_NE(all.find("listn"), std::string::npos) << all;
    EXPECT_NE(all.find("timeouts.request"), std::string::npos) << all;
    EXPECT_NE(all.find("engine:"), std::string::npos) << all;  // the default source name
  }
  // Cross-key rules run too (validate): a route naming a cluster that does not exist.
  try {
    proxer::Engine::create("[[routes]]\npath_prefix = \"/x/\"\ncluster = \"missing\"\n");
    FAIL() << "create() accepted a route to a missing cluster";
  } catch (const proxer::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  EXPECT_THROW(proxer::Engine::create("listen = \"unterminated"), proxer::ConfigError);
}

// The configuration shipped with examples/embed loads (found as config_test finds examples/).
TEST(EngineConfig, ShippedExampleLoads) {
  namespace fs = std::filesystem;
  fs::path file = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() /
                  "examples" / "embed" / "engine.toml";
  if (!fs::path(__FILE__).is_absolute()) {
    for (auto dir = fs::current_path(); !dir.empty(); dir = dir.parent_path()) {
      if (fs::exists(dir / "examples" / "embed" / "engine.toml")) {
        file = dir / "examples" / "embed" / "engine.toml";
        break;
      }
      if (dir == dir.parent_path()) break;
    }
  }
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  std::ostringstream text;
  text << in.rdbuf();
  auto e = proxer::Engine::create(text.str());
  auto req = get("/api/x");
  EXPECT_TRUE(e->matches(req));
  req.target = "/app/";
  EXPECT_TRUE(e->matches(req));
}

TEST(EngineConfig, VersionAgreesWithHeader) {
  EXPECT_STREQ(proxer::version(), PROXER_VERSION_STRING);
  EXPECT_EQ(PROXER_VERSION,
            PROXER_VERSION_MAJOR * 10000 + PROXER_VERSION_MINOR * 100 + PROXER_VERSION_PATCH);
}

TEST_F(EngineTest, MatchesFollowsTheRoutes) {
  auto e = proxer::Engine::create(config(up.port(), closed.port()));
  EXPECT_TRUE(e->matches(get("/api/x")));
  EXPECT_FALSE(e->matches(get("/apix")));
  EXPECT_FALSE(e->matches(get("/hello")));
  auto post = get("/submit");
  EXPECT_FALSE(e->matches(post));  // GET: the route takes POST only
  post.method = "POST";
  EXPECT_TRUE(e->matches(post));
  post.headers = {{"Host", "other.test"}};
  EXPECT_FALSE(e->matches(post));
}

TEST_F(EngineTest, HandleBeforeStartAndAfterStopAnswers503) {
  auto e = proxer::Engine::create(config(up.port(), closed.port()));
  EXPECT_FALSE(e->running());
  auto r = wait(e->handle(get("/api/x")));
  EXPECT_EQ(r.status, 503u);
  ASSERT_NE(r.header("x-proxer-error"), nullptr);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "engine_not_running");
  e->start();
  EXPECT_TRUE(e->running());
  EXPECT_THROW(e->start(), std::logic_error);
  e->stop();
  EXPECT_FALSE(e->running());
  e->stop();  // idempotent
  r = wait(e->handle(get("/api/x")));
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "engine_stopped");
  EXPECT_EQ(up.requests(), 0);
}

TEST_F(EngineTest, GetThroughADirectUpstream) {
  auto e = started();
  auto r = wait(e->handle(
      get("/api/x?q=1", {{"Connection", "keep-alive, X-Drop"}, {"X-Drop", "1"}, {"X-Keep", "2"}})));
  EXPECT_EQ(r.status, 200u);
  // The route stripped its prefix; the engine told the upstream who the client was.
  EXPECT_EQ(r.body, "GET /x?q=1\nxff=192.0.2.7\nbody=");
  ASSERT_NE(r.header("x-route"), nullptr);  // the route's response_headers
  EXPECT_EQ(*r.header("X-Route"), "api");
  EXPECT_NE(r.header("X-Upstream"), nullptr);
  // Framing and hop-by-hop fields are not passed on.
  EXPECT_EQ(r.header("Content-Length"), nullptr);
  EXPECT_EQ(r.header("Connection"), nullptr);
  EXPECT_EQ(r.header("Keep-Alive"), nullptr);
  EXPECT_EQ(up.requests(), 1);
}

TEST_F(EngineTest, PostBodyAndHead) {
  auto e = started();
  auto req = get("/submit");
  req.method = "POST";
  req.body = std::string(200'000, 'b');
  auto r = wait(e->handle(req));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "POST /submit\nxff=192.0.2.7\nbody=" + req.body);

  auto head = get("/api/x");
  head.method = "HEAD";
  r = wait(e->handle(head));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "");
  ASSERT_NE(r.header("Content-Length"), nullptr);  // kept for HEAD
  EXPECT_EQ(*r.header("Content-Length"),
            std::to_string(std::string("HEAD /x\nxff=192.0.2.7\nbody=").size()));
}

TEST_F(EngineTest, ConcurrentCallersFromManyThreads) {
  auto e = started();
  std::atomic<int> ok{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      std::vector<std::future<proxer::Response>> pending;
      for (int i = 0; i < 25; ++i) {
        pending.push_back(e->handle(get("/api/" + std::to_string(t) + "-" + std::to_string(i))));
      }
      for (int i = 0; i < 25; ++i) {
        auto r = wait(std::move(pending[static_cast<std::size_t>(i)]));
        const auto want = "GET /" + std::to_string(t) + "-" + std::to_string(i) + "\n";
        if (r.status == 200 && r.body.starts_with(want)) ++ok;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok, 100);
}

TEST_F(EngineTest, UpstreamDownGivesTheGatewaysError) {
  auto e = started();
  auto r = wait(e->handle(get("/down/x")));
  EXPECT_EQ(r.status, 502u);
  ASSERT_NE(r.header("X-Proxer-Error"), nullptr);
  // One retry on connect failure by default: both attempts refused.
  EXPECT_EQ(*r.header("X-Proxer-Error"), "retries_exhausted");
  EXPECT_NE(r.body.find("refused"), std::string::npos) << r.body;
  // No route: the built-in tunnel routing answers (no such tunnel).
  r = wait(e->handle(get("/t/nope/")));
  EXPECT_EQ(r.status, 404u);
}

TEST_F(EngineTest, LimitsAndDeadline) {
  proxer::EngineOptions o;
  o.max_response_body = 1000;
  o.timeout = 500ms;
  auto e = started(o);
  auto r = wait(e->handle(get("/api/big")));
  EXPECT_EQ(r.status, 502u);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "response_too_large");
  const auto t0 = std::chrono::steady_clock::now();
  r = wait(e->handle(get("/api/slow")));
  EXPECT_EQ(r.status, 504u);
  EXPECT_EQ(*r.header("X-Proxer-Error"), "engine_timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1900ms);
  // Malformed requests never reach the gateway's path.
  r = wait(e->handle(get("/api/x", {{"X-Bad", "a\r\nInjected: 1"}})));
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("contains a control character"), std::string::npos) << r.body;
  // Any CTL but HTAB, and DEL, as the gateway's own head check rules: refused before sending.
  r = wait(e->handle(get("/api/x", {{"X-Bad", std::string("a\x01b")}})));
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("contains a control character"), std::string::npos) << r.body;
  r = wait(e->handle(get("/api/x", {{"X-Bad", std::string("a\x7f")}})));
  EXPECT_EQ(r.status, 400u);
  auto bad = get("/api/x");
  bad.method = "G T";
  EXPECT_EQ(wait(e->handle(bad)).status, 400u);
  EXPECT_EQ(wait(e->handle(get("no-slash"))).status, 400u);
}

TEST_F(EngineTest, CallbackRunsOnceAndMayThrow) {
  auto e = started();
  std::promise<unsigned> p;
  e->handle(get("/api/cb"), [&p](proxer::Response r) {
    p.set_value(r.status);
    throw std::runtime_error("the host's callback failed");  // logged, not fatal
  });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(f.get(), 200u);
  EXPECT_EQ(wait(e->handle(get("/api/after"))).status, 200u);
}

TEST_F(EngineTest, HotReload) {
  auto e = started();
  auto added = get("/added/x");
  EXPECT_FALSE(e->matches(added));
  const auto next = config(up.port(), closed.port()) + R"(
[[routes]]
name = "added"
path_prefix = "/added/"
cluster = "direct"
)";
  EXPECT_EQ(e->reload(next), "");
  EXPECT_TRUE(e->matches(added));
  auto r = wait(e->handle(added));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.substr(0, 14), "GET /added/x\nx");
  // A bad configuration is refused with its errors; the running one stays.
  const auto err = e->reload(next + "\n[clusters.broken]\nendpoints = []\nlb = \"nope\"\n");
  EXPECT_NE(err.find("clusters.broken"), std::string::npos) << err;
  EXPECT_TRUE(e->matches(added));
  EXPECT_EQ(wait(e->handle(added)).status, 200u);
  e->stop();
  EXPECT_NE(e->reload(next), "");
}

TEST_F(EngineTest, ListenersOnlyWhenConfigured) {
  auto plain = started();
  EXPECT_EQ(plain->agent_port(), 0);
  EXPECT_EQ(plain->admin_port(), 0);
  EXPECT_EQ(plain->public_port(), 0);
  auto with = started({}, "agent_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n");
  EXPECT_NE(with->agent_port(), 0);
  ASSERT_NE(with->admin_port(), 0);
  // The admin API answers and counts the engine's requests.
  EXPECT_EQ(wait(with->handle(get("/api/x"))).status, 200u);
  proxer::net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(proxer::net::ip::make_address("127.0.0.1"), with->admin_port()));
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/api/health", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(s, req);
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_NE(res.body().find("\"requests_total\":1"), std::string::npos) << res.body();
  with->stop();
  EXPECT_EQ(with->admin_port(), 0);
}

// Sequential calls share one internal connection: the gateway sees one client connection, the
// process's descriptors do not grow with the number of calls, and all of them are released with
// the engine. stop() does not wait for the idle connection.
TEST_F(EngineTest, SequentialCallsReuseOneConnection) {
  const auto baseline = open_fds();
  {
    auto e = started({}, "admin_listen = \"127.0.0.1:0\"\n");
    ASSERT_EQ(wait(e->handle(get("/api/warm"))).status, 200u);
    const auto warm = open_fds();  // + the internal pair, the upstream connection (both ends)
    for (int i = 0; i < 300; ++i) {
      auto r = wait(e->handle(get("/api/n" + std::to_string(i))));
      ASSERT_EQ(r.status, 200u);
      ASSERT_EQ(r.body, "GET /n" + std::to_string(i) + "\nxff=192.0.2.7\nbody=");
    }
    EXPECT_EQ(open_fds(), warm);
    EXPECT_EQ(connections(e->admin_port()), 1);
    EXPECT_EQ(up.requests(), 301);
    const auto t0 = std::chrono::steady_clock::now();
    e->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  }
  EXPECT_EQ(settles_at(open_fds, baseline), baseline);
}

// The client address of each request reaches the upstream, on reused connections too.
TEST_F(EngineTest, EachRequestCarriesItsOwnClientAddress) {
  auto e = started();
  for (int i = 0; i < 6; ++i) {
    auto req = get("/api/who");
    req.client_address = "198.51.100." + std::to_string(i + 1) + ":40000";
    if (i == 5) req.client_address = "not an address";
    auto r = wait(e->handle(std::move(req)));
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body,
              "GET /who\nxff=" +
                  (i == 5 ? std::string("unknown") : "198.51.100." + std::to_string(i + 1)) +
                  "\nbody=");
  }
}

// The gateway closes an internal connection idle for timeouts.idle; the engine closes its end at
// once and the next request opens a new one.
TEST_F(EngineTest, ARequestAfterTheIdleTimeoutSucceeds) {
  auto e = started({}, "admin_listen = \"127.0.0.1:0\"\n[timeouts]\nidle = \"300ms\"\n");
  const auto before = open_fds();
  ASSERT_EQ(wait(e->handle(get("/api/one"))).status, 200u);
  EXPECT_EQ(connections(e->admin_port()), 1);
  // The gateway's side went (idle timeout); so did the engine's: only the pooled upstream
  // connection (two ends, both in this process) is left of the exchange.
  EXPECT_EQ(settles_at([&] { return connections(e->admin_port()); }, 0), 0);
  EXPECT_EQ(settles_at(open_fds, before + 2), before + 2);
  auto r = wait(e->handle(get("/api/two")));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "GET /two\nxff=192.0.2.7\nbody=");
  EXPECT_EQ(connections(e->admin_port()), 1);
}

// Responses after which the gateway closes the connection (one framed by the end of the
// connection, an error that ends it) are delivered whole and leave nothing behind for the next
// caller; an error that keeps the connection open lets it be reused.
TEST_F(EngineTest, ClosingResponsesDoNotPoisonThePool) {
  auto e = started({}, R"(admin_listen = "127.0.0.1:0"
[[routes]]
name = "small"
path_prefix = "/small/"
cluster = "direct"
max_body_bytes = 100
)");
  ASSERT_EQ(wait(e->handle(get("/api/warm"))).status, 200u);
  const auto warm = open_fds();
  for (int i = 0; i < 20; ++i) {
    auto r = wait(e->handle(get("/api/noframe")));
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "unframed");
    r = wait(e->handle(get("/api/a" + std::to_string(i))));
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "GET /a" + std::to_string(i) + "\nxff=192.0.2.7\nbody=");
    auto big = get("/small/x");
    big.method = "POST";
    big.body.assign(1000, 'b');
    r = wait(e->handle(std::move(big)));
    ASSERT_EQ(r.status, 413u);
    EXPECT_EQ(*r.header("X-Proxer-Error"), "body_too_large");
    r = wait(e->handle(get("/t/nope/")));  // 404, connection kept
    ASSERT_EQ(r.status, 404u);
    r = wait(e->handle(get("/api/b" + std::to_string(i))));
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "GET /b" + std::to_string(i) + "\nxff=192.0.2.7\nbody=");
  }
  // Closed connections are gone on both sides: one internal connection is left, and the
  // descriptors are those of the first exchange (the upstream closed its connection after
  // /noframe; the gateway's pool holds another).
  EXPECT_EQ(settles_at([&] { return connections(e->admin_port()); }, 1), 1);
  EXPECT_EQ(settles_at(open_fds, warm), warm);
}

// Many threads at once: each caller gets its own response, and the idle connections kept stay
// within max_idle_connections.
TEST_F(EngineTest, ConcurrentCallersShareABoundedPool) {
  proxer::EngineOptions o;
  o.max_idle_connections = 2;
  auto e = started(o, "admin_listen = \"127.0.0.1:0\"\n");
  std::atomic<int> ok{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      const auto ip = "203.0.113." + std::to_string(t + 1);
      for (int round = 0; round < 10; ++round) {
        std::vector<std::future<proxer::Response>> pending;
        for (int i = 0; i < 5; ++i) {
          auto req = get("/api/" + std::to_string(t) + "-" + std::to_string(round) + "-" +
                         std::to_string(i));
          req.client_address = ip;
          pending.push_back(e->handle(std::move(req)));
        }
        for (int i = 0; i < 5; ++i) {
          auto r = wait(std::move(pending[static_cast<std::size_t>(i)]));
          const auto want = "GET /" + std::to_string(t) + "-" + std::to_string(round) + "-" +
                            std::to_string(i) + "\nxff=" + ip + "\nbody=";
          if (r.status == 200 && r.body == want) ++ok;
        }
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(settles_at([&] { return connections(e->admin_port()); }, 2), 2);
}

// max_idle_connections = 0: a connection per call, closed after it.
TEST_F(EngineTest, NoReuseWhenTheCapIsZero) {
  proxer::EngineOptions o;
  o.max_idle_connections = 0;
  auto e = started(o, "admin_listen = \"127.0.0.1:0\"\n");
  const auto before = open_fds();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(wait(e->handle(get("/api/x"))).status, 200u);
  EXPECT_EQ(settles_at([&] { return connections(e->admin_port()); }, 0), 0);
  // Of the exchanges only the gateway's pooled upstream connection (both ends) is left.
  EXPECT_EQ(settles_at(open_fds, before + 2), before + 2);
}

}  // namespace
