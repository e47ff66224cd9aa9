// The admin listener's views of the counters: /metrics text and /api/clusters JSON, rendered
// from a Context whose cluster state was driven by hand (no traffic, no I/O).
#include "gateway/metrics.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <sstream>
#include <string>

#include "fake_agents.h"
#include "gateway/context.h"

namespace proxer::gateway {
namespace {

using namespace std::chrono_literals;
using Result = proxy::OutlierDetector::Result;

config::GatewayConfig two_clusters() {
  config::GatewayConfig cfg;
  auto endpoint = [](std::string url, std::uint32_t weight) {
    config::EndpointConfig ep;
    ep.url = std::move(url);
    ep.weight = weight;
    std::string err;
    EXPECT_TRUE(config::parse_endpoint(ep, &err)) << err;
    return ep;
  };
  config::ClusterConfig api;
  api.name = "api";
  api.endpoints = {endpoint("http://10.0.0.1:80", 1), endpoint("http://10.0.0.2:80", 3),
                   endpoint("http://10.0.0.1:80", 1)};  // listed twice
  api.outlier.consecutive_5xx = 2;
  api.outlier.max_ejected_percent = 100;
  api.health_check.path = "/healthz";
  api.health_check.unhealthy_threshold = 1;
  config::ClusterConfig web;
  web.name = "web \"x\"";  // not a valid config name; shows label escaping
  web.endpoints = {endpoint("tunnel:site", 1)};
  cfg.clusters = {api, web};
  config::RouteConfig r;
  r.name = "to-api";
  r.cluster = "api";
  cfg.routes = {r};
  return cfg;
}

// The text's lines, for exact matching.
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines(text)) {
    if (l == line) return true;
  }
  return false;
}

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() : ctx(two_clusters(), ioc.get_executor()) {}
  proxy::Cluster& api() { return ctx.routes->cluster("api")->policy(); }

  net::io_context ioc;
  Context ctx;
  const std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
};

TEST_F(MetricsTest, PrometheusText) {
  auto& c = api();
  c.stats().requests = 12;
  c.stats().retries = 2;
  c.stats().upstream_errors = 1;
  c.active_requests = 3;
  c.endpoints()[1].active = 2;
  // Endpoint 0: two 5xx in a row eject it; endpoint 1: a connect failure and a success.
  c.record(0, Result::Http5xx, now);
  EXPECT_TRUE(c.record(0, Result::Http5xx, now));
  c.record(1, Result::ConnectFailure, now);
  c.record(1, Result::Success, now);
  c.endpoints()[2].health.record(false);  // unhealthy_threshold 1
  ctx.stats.requests_total = 40;

  const auto text = prometheus_metrics(ctx, now);
  const std::string a = R"(cluster="api",endpoint="http://10.0.0.1:80")";
  const std::string b = R"(cluster="api",endpoint="http://10.0.0.2:80")";
  const std::string dup = R"(cluster="api",endpoint="http://10.0.0.1:80#2")";
  for (const auto& want : {
           std::string("# TYPE proxer_requests_total counter"),
           std::string("proxer_requests_total 40"),
           std::string("proxer_cluster_requests_total{cluster=\"api\"} 12"),
           std::string("proxer_cluster_requests_total{cluster=\"web \\\"x\\\"\"} 0"),
           std::string("proxer_cluster_retries_total{cluster=\"api\"} 2"),
           std::string("proxer_cluster_upstream_errors_total{cluster=\"api\"} 1"),
           std::string("# TYPE proxer_cluster_active_requests gauge"),
           std::string("proxer_cluster_active_requests{cluster=\"api\"} 3"),
           "proxer_cluster_endpoint_requests_total{" + a + "} 2",
           "proxer_cluster_endpoint_requests_total{" + b + "} 2",
           "proxer_cluster_endpoint_requests_total{" + dup + "} 0",
           "proxer_cluster_endpoint_failures_total{" + a + ",kind=\"5xx\"} 2",
           "proxer_cluster_endpoint_failures_total{" + a + ",kind=\"connect\"} 0",
           "proxer_cluster_endpoint_failures_total{" + b + ",kind=\"connect\"} 1",
           "proxer_cluster_endpoint_ejected{" + a + "} 1",
           "proxer_cluster_endpoint_ejected{" + b + "} 0",
           "proxer_cluster_endpoint_ejections_total{" + a + "} 1",
           "proxer_cluster_endpoint_active_requests{" + b + "} 2",
           "proxer_cluster_endpoint_healthy{" + a + "} 1",
           "proxer_cluster_endpoint_healthy{" + dup + "} 0",
           "proxer_cluster_endpoint_health_transitions_total{" + dup + ",to=\"unhealthy\"} 1",
           "proxer_cluster_endpoint_health_transitions_total{" + dup + ",to=\"healthy\"} 0",
           std::string("proxer_cluster_breaker_limit{cluster=\"api\",resource=\"requests\"} 1024"),
           std::string(
               "proxer_cluster_breaker_overflow_total{cluster=\"api\",resource=\"retries\"} 0"),
           std::string("proxer_cluster_endpoint_requests_total{cluster=\"web \\\"x\\\"\","
                       "endpoint=\"tunnel:site\"} 0"),
       }) {
    EXPECT_TRUE(has_line(text, want)) << "missing: " << want << "\n" << text;
  }
  // Every sample follows the TYPE line of its own family, and each family appears once.
  std::string family;
  std::set<std::string> seen;
  for (const auto& l : lines(text)) {
    if (l.starts_with("# HELP ")) continue;
    if (l.starts_with("# TYPE ")) {
      family = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_TRUE(seen.insert(family).second) << "family twice: " << family;
      continue;
    }
    const auto name = l.substr(0, l.find_first_of("{ "));
    EXPECT_EQ(name, family) << l;
  }
}

TEST_F(MetricsTest, ClustersJson) {
  auto& c = api();
  c.stats().requests = 5;
  c.stats().no_endpoint = 1;
  c.record(1, Result::Http5xx, now);
  c.record(1, Result::Http5xx, now);  // ejected
  c.record(0, Result::Success, now);
  auto v = boost::json::parse(clusters_json(ctx, now));
  const auto& clusters = v.at("clusters").as_array();
  ASSERT_EQ(clusters.size(), 2u);
  const auto& j = clusters[0].as_object();
  EXPECT_EQ(j.at("name"), "api");
  EXPECT_EQ(j.at("lb"), "round_robin");
  EXPECT_EQ(j.at("routes"), boost::json::array{"to-api"});
  EXPECT_EQ(j.at("requests"), 5);
  EXPECT_EQ(j.at("no_endpoint"), 1);
  EXPECT_EQ(j.at("ejections"), 1);
  EXPECT_EQ(j.at("circuit_breaker").at("requests").at("limit"), 1024);
  EXPECT_EQ(j.at("circuit_breaker").at("requests").at("open"), false);
  EXPECT_EQ(j.at("circuit_breaker").at("retry_budget").at("percent"), 20);
  EXPECT_EQ(j.at("circuit_breaker").at("retry_budget").at("min"), 3);
  EXPECT_EQ(j.at("circuit_breaker").at("retry_budget").at("allows_retry"), true);
  const auto& eps = j.at("endpoints").as_array();
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[1].at("url"), "http://10.0.0.2:80");
  EXPECT_EQ(eps[1].at("weight"), 3);
  EXPECT_EQ(eps[1].at("requests"), 2);
  EXPECT_EQ(eps[1].at("failures"), 2);
  EXPECT_EQ(eps[1].at("responses_5xx"), 2);
  EXPECT_EQ(eps[1].at("ejected"), true);
  EXPECT_EQ(eps[1].at("in_rotation"), false);
  EXPECT_EQ(eps[1].at("ejections"), 1);
  EXPECT_EQ(eps[0].at("requests"), 1);
  EXPECT_EQ(eps[0].at("failures"), 0);
  EXPECT_EQ(eps[0].at("ejected"), false);
  EXPECT_EQ(eps[0].at("healthy"), true);
  // The ejection ends (base_ejection_time 30s): the view follows the clock it is given.
  auto later = boost::json::parse(clusters_json(ctx, now + 31s));
  EXPECT_EQ(later.at("clusters").at(0).at("endpoints").at(1).at("ejected"), false);
  EXPECT_EQ(later.at("clusters").at(0).at("endpoints").at(1).at("ejections"), 1);
  EXPECT_EQ(clusters[1].at("name"), "web \"x\"");
  EXPECT_EQ(clusters[1].at("routes"), boost::json::array{});
}

TEST_F(MetricsTest, PooledTunnelEndpointMembers) {
  testing::FakeAgents agents(ioc);
  auto join = [&](const char* id, bool pool) {
    auto t = std::make_shared<Tunnel>();
    t->name = "site";
    t->agent_id = id;
    t->pool = pool;
    t->session = agents.make().gateway_end;
    std::string err;
    EXPECT_TRUE(ctx.registry.add(t, &err)) << err;
    return t;
  };
  auto web = [&] {
    auto v = boost::json::parse(clusters_json(ctx, now));
    return v.at("clusters").at(1).at("endpoints").at(0).as_object();
  };
  // Not a pool: no members in the view.
  auto solo = join("solo", false);
  EXPECT_FALSE(web().contains("members"));
  EXPECT_EQ(prometheus_metrics(ctx, now).find("proxer_cluster_endpoint_member_healthy{"),
            std::string::npos);
  ctx.registry.remove("site", solo->session.get());

  auto a = join("a", true);
  auto b = join("b", true);
  auto& ep = ctx.routes->cluster("web \"x\"")->policy().endpoints()[0];
  ep.members.record(b->id, "b", false, "status 500");  // default threshold 3: still healthy
  ep.members.record(b->id, "b", false, "status 500");
  ep.members.record(b->id, "b", false, "status 500");
  a->healthy = false;  // its agent reports its service down
  a->health_reason = "answered 503";
  const auto e = web();
  const auto& members = e.at("members").as_array();
  ASSERT_EQ(members.size(), 2u);
  const auto& ma = members[0].as_object();
  EXPECT_EQ(ma.at("agent_id"), "a");
  EXPECT_EQ(ma.at("healthy"), true);  // the cluster's checks have nothing against it
  EXPECT_EQ(ma.at("checked"), false);
  EXPECT_EQ(ma.at("agent_healthy"), false);
  EXPECT_EQ(ma.at("agent_health_reason"), "answered 503");
  EXPECT_EQ(ma.at("in_rotation"), false);
  EXPECT_FALSE(ma.contains("last_failure"));
  const auto& mb = members[1].as_object();
  EXPECT_EQ(mb.at("agent_id"), "b");
  EXPECT_EQ(mb.at("healthy"), false);
  EXPECT_EQ(mb.at("checked"), true);
  EXPECT_EQ(mb.at("agent_healthy"), true);
  EXPECT_EQ(mb.at("in_rotation"), false);
  EXPECT_EQ(mb.at("last_failure"), "status 500");
  EXPECT_EQ(mb.at("became_unhealthy"), 1);
  EXPECT_EQ(mb.at("became_healthy"), 0);

  const auto text = prometheus_metrics(ctx, now);
  const std::string l = R"(cluster="web \"x\"",endpoint="tunnel:site",member=)";
  for (const auto& want : {
           "proxer_cluster_endpoint_member_healthy{" + l + "\"a\"} 1",
           "proxer_cluster_endpoint_member_healthy{" + l + "\"b\"} 0",
           "proxer_cluster_endpoint_member_health_transitions_total{" + l +
               "\"b\",to=\"unhealthy\"} 1",
           "proxer_cluster_endpoint_member_health_transitions_total{" + l +
               "\"a\",to=\"healthy\"} 0",
       }) {
    EXPECT_TRUE(has_line(text, want)) << "missing: " << want << "\n" << text;
  }
  // The "api" cluster has no tunnel endpoint: no member samples.
  EXPECT_EQ(text.find("member_healthy{cluster=\"api\""), std::string::npos);
}

}  // namespace
}  // namespace proxer::gateway
