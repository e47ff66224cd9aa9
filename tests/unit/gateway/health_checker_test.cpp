// HealthChecker's timing and its stop(): a probe that gets no answer fails at the deadline, and
// stop() ends every coroutine at once (the io_context runs out of work, the checker is freed).
#include "gateway/health_checker.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace proxer::gateway
