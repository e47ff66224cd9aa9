// HealthChecker's timing and its stop(): a probe that gets no answer fails at the deadline, and
// stop() ends every coroutine at once (the io_context runs out of work, the checker is freed).
// A pooled tunnel endpoint: every member checked on its own, over in-process agent sessions.
#include "gateway/health_checker.h"

#include <gtest/gtest.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <map>
#include <set>

#include "fake_agents.h"
#include "gateway/context.h"

namespace proxer::gateway {
namespace {

using namespace std::chrono_literals;

// A listener that never accepts: connections complete (the kernel's backlog) but nothing answers.
struct SilentServer {
  explicit SilentServer(net::io_context& ioc)
      : acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0}) {
    acceptor.listen(16);
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  tcp::acceptor acceptor;
};

config::GatewayConfig config_with(std::uint16_t port, std::chrono::milliseconds interval,
                                  std::chrono::milliseconds timeout) {
  config::GatewayConfig cfg;
  config::ClusterConfig c;
  c.name = "silent";
  config::EndpointConfig ep;
  ep.url = "http://127.0.0.1:" + std::to_string(port);
  std::string err;
  EXPECT_TRUE(config::parse_endpoint(ep, &err)) << err;
  c.endpoints.push_back(ep);
  c.health_check.path = "/healthz";
  c.health_check.interval = interval;
  c.health_check.timeout = timeout;
  c.health_check.unhealthy_threshold = 2;
  c.health_check.healthy_threshold = 2;
  cfg.clusters.push_back(c);
  return cfg;
}

TEST(HealthChecker, NoAnswerFailsAtTheDeadline) {
  net::io_context ioc;
  SilentServer server(ioc);
  Context ctx(config_with(server.port(), 20ms, 100ms), ioc.get_executor());
  auto cluster = ctx.routes->clusters.at(0);
  auto checker = std::make_shared<HealthChecker>(ctx, cluster);
  checker->start();
  const auto started = std::chrono::steady_clock::now();
  while (cluster->policy().endpoints()[0].health.healthy() &&
         std::chrono::steady_clock::now() - started < 5s) {
    ioc.run_for(10ms);
  }
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_FALSE(cluster->policy().endpoints()[0].health.healthy());
  EXPECT_GE(took, 200ms);  // two failed checks, each at its 100 ms deadline
  EXPECT_EQ(checker->stats().became_unhealthy, 1u);
  EXPECT_GE(checker->stats().failed, 2u);
  checker->stop();
  ioc.run_for(1s);
  EXPECT_TRUE(ioc.stopped());
}

// Answers every connection with `response` after reading the request head, then closes.
struct RawServer {
  RawServer(net::io_context& ioc, std::string resp)
      : acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0}), response(std::move(resp)) {
    acceptor.listen(16);
    accept();
  }
  void accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      auto buf = std::make_shared<std::string>();
      net::async_read_until(
          *sock, net::dynamic_buffer(*buf), "\r\n\r\n", [this, sock, buf](error_code, std::size_t) {
            net::async_write(*sock, net::buffer(response), [sock](error_code, std::size_t) {});
          });
      accept();
    });
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  tcp::acceptor acceptor;
  std::string response;
};

// Runs checks against `response` until `checks` have completed; returns the checker's stats.
HealthCheckStats check_against(const std::string& response, std::uint64_t checks) {
  net::io_context ioc;
  RawServer server(ioc, response);
  Context ctx(config_with(server.port(), 10ms, 1000ms), ioc.get_executor());
  auto cluster = ctx.routes->clusters.at(0);
  auto checker = std::make_shared<HealthChecker>(ctx, cluster);
  checker->start();
  const auto started = std::chrono::steady_clock::now();
  while (checker->stats().checks < checks && std::chrono::steady_clock::now() - started < 5s) {
    ioc.run_for(10ms);
  }
  auto stats = checker->stats();
  checker->stop();
  server.acceptor.close();
  ioc.run_for(1s);
  return stats;
}

// The status line is judged by the relay's rules: no reason phrase is fine (as nginx and the
// agent's own check accept it), a four-digit status is not.
TEST(HealthChecker, StatusLineByTheRelaysRules) {
  const auto no_reason = check_against("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 3);
  EXPECT_GE(no_reason.checks, 3u);
  EXPECT_EQ(no_reason.failed, 0u);
  EXPECT_EQ(no_reason.became_unhealthy, 0u);

  const auto four_digits = check_against("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", 3);
  EXPECT_GE(four_digits.checks, 3u);
  EXPECT_EQ(four_digits.failed, four_digits.checks);
  EXPECT_EQ(four_digits.became_unhealthy, 1u);
}

TEST(HealthChecker, StopEndsAProbeInFlightAtOnce) {
  net::io_context ioc;
  SilentServer server(ioc);
  // The probe would wait 30 s for its response head; stop() must not.
  Context ctx(config_with(server.port(), 10ms, 30s), ioc.get_executor());
  auto cluster = ctx.routes->clusters.at(0);
  auto checker = std::make_shared<HealthChecker>(ctx, cluster);
  std::weak_ptr<HealthChecker> weak = checker;
  checker->start();
  ioc.run_for(200ms);  // connected, request sent, waiting for an answer
  EXPECT_EQ(cluster->pool(0)->counters().open, 1u);
  checker->stop();
  checker.reset();
  const auto stopped_at = std::chrono::steady_clock::now();
  ioc.run_for(5s);  // returns as soon as no work is left
  EXPECT_TRUE(ioc.stopped());
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 1s);
  EXPECT_TRUE(weak.expired());  // no coroutine holds the checker any more
  EXPECT_EQ(cluster->pool(0)->counters().open, 0u);
  EXPECT_EQ(cluster->pool(0)->idle(), 0u);                         // never given to the pool
  EXPECT_TRUE(cluster->policy().endpoints()[0].health.healthy());  // nothing recorded
}

// --- pooled tunnel endpoints ----------------------------------------------------------------

// Clusters of tunnel endpoints `tunnel:app`, checked every 10 ms with thresholds 2/2: one per
// entry of `paths` (cluster name -> health check path).
config::GatewayConfig tunnel_clusters(
    const std::vector<std::pair<std::string, std::string>>& paths) {
  config::GatewayConfig cfg;
  for (const auto& [name, path] : paths) {
    config::ClusterConfig c;
    c.name = name;
    config::EndpointConfig ep;
    ep.url = "tunnel:app";
    std::string err;
    EXPECT_TRUE(config::parse_endpoint(ep, &err)) << err;
    c.endpoints.push_back(ep);
    c.health_check.path = path;
    c.health_check.interval = 10ms;
    c.health_check.timeout = 1s;
    c.health_check.unhealthy_threshold = 2;
    c.health_check.healthy_threshold = 2;
    cfg.clusters.push_back(c);
  }
  return cfg;
}

class PooledTunnelChecks : public ::testing::Test {
 protected:
  explicit PooledTunnelChecks(
      const std::vector<std::pair<std::string, std::string>>& paths = {{"pool", "/healthz"}})
      : ctx(tunnel_clusters(paths), ioc.get_executor()) {}
  ~PooledTunnelChecks() override {
    for (auto& c : checkers) c->stop();
    agents.close_all();
  }

  // A member of `app` served by a new agent.
  std::shared_ptr<Tunnel> join(const std::string& agent_id, bool pool = true) {
    auto& a = agents.make();
    auto t = std::make_shared<Tunnel>();
    t->name = "app";
    t->agent_id = agent_id;
    t->pool = pool;
    t->session = a.gateway_end;
    std::string err;
    EXPECT_TRUE(ctx.registry.add(t, &err)) << err;
    answers[agent_id] = a.answers;
    return t;
  }
  void leave(const std::shared_ptr<Tunnel>& t) {
    ctx.registry.remove("app", t->session.get());
    t->session->close(proto::ErrorCode::None, "left");
  }
  std::shared_ptr<HealthChecker> start(std::size_t cluster = 0) {
    auto c = std::make_shared<HealthChecker>(ctx, ctx.routes->clusters.at(cluster));
    c->start();
    checkers.push_back(c);
    return c;
  }
  proxy::EndpointState& endpoint(std::size_t cluster = 0) {
    return ctx.routes->clusters.at(cluster)->policy().endpoints()[0];
  }
  // Runs the loop until `done` holds (at most 5 s); returns whether it did.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      ioc.run_for(5ms);
    }
    return true;
  }
  // The agents the cluster's picks land on, over `n` picks.
  std::set<std::string> picked(std::size_t n, std::size_t cluster = 0) {
    std::set<std::string> out;
    auto& c = *ctx.routes->clusters.at(cluster);
    for (std::size_t i = 0; i < n; ++i) {
      auto t = pick_tunnel_member(ctx.registry, c, 0, i);
      out.insert(t ? t->agent_id : "none");
    }
    return out;
  }

  net::io_context ioc;
  Context ctx;
  testing::FakeAgents agents{ioc};
  std::map<std::string, std::shared_ptr<testing::AnsweringAgent>> answers;
  std::vector<std::shared_ptr<HealthChecker>> checkers;
};

TEST_F(PooledTunnelChecks, AFailingMemberLeavesTheRotationAndComesBack) {
  auto a = join("a");
  auto b = join("b");
  answers["b"]->status = 500;
  auto checker = start();
  auto& ep = endpoint();
  ASSERT_TRUE(run_until([&] { return ep.members.excluded(b->id); }));
  EXPECT_FALSE(ep.members.excluded(a->id));
  EXPECT_TRUE(ep.health.healthy());  // one member passes
  EXPECT_EQ(ep.members.find(b->id)->last_failure, "status 500");
  EXPECT_EQ(ep.members.find(b->id)->name, "b");
  EXPECT_EQ(checker->stats().member_became_unhealthy, 1u);
  EXPECT_EQ(checker->stats().became_unhealthy, 0u);
  // Every member was probed, not one per interval in turn.
  ASSERT_TRUE(
      run_until([&] { return answers["a"]->requests >= 3 && answers["b"]->requests >= 3; }));
  // Requests through the cluster go to the member that passes only.
  auto& cluster = *ctx.routes->clusters.at(0);
  EXPECT_TRUE(tunnel_endpoint_up(ctx.registry, cluster, 0));
  EXPECT_EQ(picked(10), std::set<std::string>{"a"});
  // The member's service recovers: after healthy_threshold passes it is back.
  answers["b"]->status = 200;
  ASSERT_TRUE(run_until([&] { return !ep.members.excluded(b->id); }));
  EXPECT_EQ(ep.members.find(b->id)->last_failure, "");
  EXPECT_EQ(checker->stats().member_became_healthy, 1u);
  EXPECT_EQ(picked(10), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(ep.health.became_unhealthy_total(), 0u);  // the endpoint never flapped
}

TEST_F(PooledTunnelChecks, TheEndpointIsUnhealthyWhenNoMemberPassesAndANewMemberStartsHealthy) {
  auto a = join("a");
  auto b = join("b");
  answers["a"]->status = 503;
  answers["b"]->status = 503;
  auto checker = start();
  auto& ep = endpoint();
  ASSERT_TRUE(run_until([&] { return !ep.health.healthy(); }));
  EXPECT_TRUE(ep.members.excluded(a->id));
  EXPECT_TRUE(ep.members.excluded(b->id));
  EXPECT_EQ(checker->stats().became_unhealthy, 1u);
  EXPECT_EQ(checker->stats().member_became_unhealthy, 2u);
  auto& cluster = *ctx.routes->clusters.at(0);
  EXPECT_FALSE(tunnel_endpoint_up(ctx.registry, cluster, 0));
  EXPECT_EQ(picked(4), std::set<std::string>{"none"});
  // "b" leaves: its state goes with it at the next check.
  leave(b);
  ASSERT_TRUE(run_until([&] { return ep.members.find(b->id) == nullptr; }));
  // A new member starts healthy, as a new endpoint does: the endpoint is back at once.
  auto c = join("c");
  EXPECT_TRUE(tunnel_endpoint_up(ctx.registry, cluster, 0));
  EXPECT_EQ(picked(4), std::set<std::string>{"c"});
  ASSERT_TRUE(run_until([&] { return ep.health.healthy(); }));
  EXPECT_EQ(checker->stats().became_healthy, 1u);
  EXPECT_FALSE(ep.members.excluded(c->id));
  // "a" reconnects (a new registration): it is a new member, healthy until its checks fail.
  leave(a);
  auto a2 = join("a");
  answers["a"]->status = 503;  // its service still fails
  EXPECT_NE(a2->id, a->id);
  EXPECT_FALSE(ep.members.excluded(a2->id));
  ASSERT_TRUE(run_until([&] { return ep.members.excluded(a2->id); }));
  EXPECT_EQ(ep.members.find(a->id), nullptr);
  EXPECT_TRUE(ep.health.healthy());
  EXPECT_EQ(picked(6), std::set<std::string>{"c"});
}

TEST_F(PooledTunnelChecks, ANonPooledTunnelIsCheckedAsOneEndpoint) {
  auto solo = join("solo", false);
  answers["solo"]->status = 500;
  auto checker = start();
  auto& ep = endpoint();
  ASSERT_TRUE(run_until([&] { return !ep.health.healthy(); }));
  EXPECT_TRUE(ep.members.empty());  // no per-member state
  EXPECT_EQ(checker->stats().became_unhealthy, 1u);
  EXPECT_EQ(checker->stats().member_became_unhealthy, 0u);
  // The member itself is not excluded: the endpoint's verdict keeps it out (in_rotation).
  auto& cluster = *ctx.routes->clusters.at(0);
  EXPECT_TRUE(tunnel_endpoint_up(ctx.registry, cluster, 0));
  EXPECT_FALSE(cluster.policy().in_rotation(0, std::chrono::steady_clock::now()));
  answers["solo"]->status = 200;
  ASSERT_TRUE(run_until([&] { return ep.health.healthy(); }));
  EXPECT_EQ(checker->stats().became_healthy, 1u);
}

TEST_F(PooledTunnelChecks, StopEndsEveryMemberProbeAtOnce) {
  join("a");
  join("b");
  // The agents take the check's stream and never answer: each probe would wait for its 1 s
  // deadline.
  for (auto& [id, ans] : answers) ans->mute = true;
  auto checker = start();
  std::weak_ptr<HealthChecker> weak = checker;
  ASSERT_TRUE(run_until([&] { return answers["a"]->opened == 1 && answers["b"]->opened == 1; }));
  checker->stop();
  checkers.clear();
  checker.reset();
  const auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until([&] { return weak.expired(); }));  // no coroutine holds it any more
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 500ms);
  EXPECT_TRUE(endpoint().members.empty());  // nothing recorded
  EXPECT_TRUE(endpoint().health.healthy());
}

class TwoClustersOneTunnel : public PooledTunnelChecks {
 protected:
  TwoClustersOneTunnel() : PooledTunnelChecks({{"strict", "/deep"}, {"lenient", "/live"}}) {}
};

TEST_F(TwoClustersOneTunnel, EachClusterKeepsItsOwnVerdictOnAMember) {
  auto a = join("a");
  auto b = join("b");
  answers["b"]->by_path["/deep"] = 500;  // b fails the strict cluster's check only
  start(0);
  start(1);
  auto& strict = endpoint(0);
  auto& lenient = endpoint(1);
  ASSERT_TRUE(run_until([&] { return strict.members.excluded(b->id); }));
  ASSERT_TRUE(run_until([&] { return lenient.members.find(b->id) != nullptr; }));
  EXPECT_FALSE(lenient.members.excluded(b->id));
  EXPECT_TRUE(b->healthy);  // the registry's member (the agent's verdict) is untouched
  EXPECT_EQ(picked(6, 0), std::set<std::string>{"a"});
  EXPECT_EQ(picked(6, 1), (std::set<std::string>{"a", "b"}));
  // Outside clusters (Host routing) every usable member still serves.
  std::set<std::string> direct;
  for (int i = 0; i < 6; ++i) direct.insert(ctx.registry.pick("app")->agent_id);
  EXPECT_EQ(direct, (std::set<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace proxer::gateway
