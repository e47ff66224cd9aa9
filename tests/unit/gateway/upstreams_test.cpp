// build_route_table as a hot reload calls it: a cluster whose config is unchanged is carried
// over (same object, same state), one whose circuit_breaker changed, the retry budget
// included, is built anew with the new settings.
#include "gateway/upstreams.h"

#include <gtest/gtest.h>

#include <string>

namespace proxer::gateway {
namespace {

config::GatewayConfig one_cluster(std::uint32_t budget_percent, std::uint32_t budget_min) {
  config::EndpointConfig ep;
  ep.url = "http://127.0.0.1:1";
  std::string err;
  EXPECT_TRUE(config::parse_endpoint(ep, &err)) << err;
  config::ClusterConfig api;
  api.name = "api";
  api.endpoints = {ep};
  api.circuit_breaker.retry_budget_percent = budget_percent;
  api.circuit_breaker.retry_budget_min = budget_min;
  config::RouteConfig route;
  route.name = "r";
  route.cluster = "api";
  config::GatewayConfig cfg;
  cfg.clusters = {api};
  cfg.routes = {route};
  return cfg;
}

TEST(BuildRouteTable, AReloadThatChangesTheRetryBudgetBuildsTheClusterAnew) {
  net::io_context io;
  const auto first = build_route_table(io.get_executor(), one_cluster(20, 3), 1);
  const auto old = first->cluster("api");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->policy().retry_budget().percent(), 20u);
  old->policy().active_retries = 3;  // state of the running cluster
  EXPECT_FALSE(old->policy().retry_budget_allows());

  // Unchanged: carried over, state and all.
  const auto same = build_route_table(io.get_executor(), one_cluster(20, 3), 2, first.get());
  EXPECT_EQ(same->cluster("api"), old);

  // Another budget: a new cluster that applies it (requests in flight keep the old one).
  const auto next = build_route_table(io.get_executor(), one_cluster(0, 10), 3, same.get());
  const auto now = next->cluster("api");
  ASSERT_TRUE(now);
  EXPECT_NE(now, old);
  EXPECT_EQ(now->policy().retry_budget().percent(), 0u);
  EXPECT_EQ(now->policy().retry_budget().min(), 10u);
  now->policy().active_retries = 3;
  EXPECT_TRUE(now->policy().retry_budget_allows());
  EXPECT_EQ(old->policy().retry_budget().min(), 3u);
}

}  // namespace
}  // namespace proxer::gateway
