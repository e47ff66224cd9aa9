// [[routes]] and [clusters.NAME]: loading (every key, short and long endpoint forms, file order
// of header maps) and validation (each rule names its key).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "support/errors.h"

namespace proxer::config {
namespace {

using namespace std::chrono_literals;

using testing::has_error;
using testing::join;

TEST(Routes, LoadEveryKey) {
  const auto loaded = load_gateway_toml(R"(
[[routes]]
name = "api"
host = "*.example.com"
path_prefix = "/api/"
methods = ["GET", "POST"]
headers = { "X-Env" = "prod" }
cluster = "backends"
prefix_rewrite = "/v2/"
timeout = "3s"
max_body_bytes = "1MiB"
[routes.request_headers]
remove = ["X-Debug"]
set = { "X-Z" = "1", "X-A" = "2" }
add = { "Via" = "proxer" }
[routes.response_headers]
set = { "Cache-Control" = "no-store" }

[[routes]]
cluster = "backends"

[clusters.backends]
lb = "ring_hash"
hash_key = "cookie:session"
endpoints = ["tunnel:blue", { url = "tunnel:green", weight = 3 }, "tunnel:app"]
)",
                                        "gw.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& c = *loaded.value;
  ASSERT_EQ(c.routes.size(), 2u);
  const auto& r = c.routes[0];
  EXPECT_EQ(r.name, "api");
  EXPECT_EQ(r.host, "*.example.com");
  EXPECT_EQ(r.path_prefix, "/api/");
  EXPECT_EQ(r.methods, (std::vector<std::string>{"GET", "POST"}));
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"X-Env", "prod"}));
  EXPECT_EQ(r.cluster, "backends");
  EXPECT_EQ(r.prefix_rewrite, "/v2/");
  EXPECT_EQ(r.timeout, 3s);
  EXPECT_EQ(r.max_body_bytes, 1u << 20);
  EXPECT_EQ(r.request_headers.remove, std::vector<std::string>{"X-Debug"});
  // File order, not key order.
  ASSERT_EQ(r.request_headers.set.size(), 2u);
  EXPECT_EQ(r.request_headers.set[0].first, "X-Z");
  EXPECT_EQ(r.request_headers.set[1].first, "X-A");
  ASSERT_EQ(r.response_headers.set.size(), 1u);
  EXPECT_EQ(c.routes[1].path_prefix, "");
  EXPECT_EQ(c.routes[1].name, "route-1");

  ASSERT_EQ(c.clusters.size(), 1u);
  const auto& cl = c.clusters[0];
  EXPECT_EQ(cl.name, "backends");
  EXPECT_EQ(cl.lb, "ring_hash");
  EXPECT_EQ(cl.hash_key, "cookie:session");
  ASSERT_EQ(cl.endpoints.size(), 3u);
  EXPECT_EQ(cl.endpoints[0].url, "tunnel:blue");
  EXPECT_EQ(cl.endpoints[1].weight, 3u);
  EXPECT_EQ(cl.endpoints[2].url, "tunnel:app");
}

TEST(Routes, LoadPolicyKeys) {
  const auto loaded = load_gateway_toml(R"(
[[routes]]
cluster = "api"
[routes.retry]
retries = 2
on = ["connect_failure", "5xx", "429"]
per_try_timeout = "2s"
backoff_base = "10ms"
backoff_max = "1s"

[clusters.api]
endpoints = ["http://127.0.0.1:8081", "https://api.internal", "tunnel:app"]
connect_timeout = "1s"
tls_handshake_timeout = "3s"
max_idle = 8
idle_timeout = "20s"
insecure = true
server_name = "api.internal"
[clusters.api.health_check]
path = "/healthz"
method = "HEAD"
host = "health.local"
interval = "2s"
timeout = "500ms"
expected_status = [200, "300-308"]
healthy_threshold = 1
unhealthy_threshold = 2
[clusters.api.outlier]
consecutive_5xx = 0
consecutive_connect_failures = 2
base_ejection_time = "5s"
max_ejection_time = "1m"
max_ejected_percent = 100
[clusters.api.circuit_breaker]
max_connections = 10
max_pending = 20
max_requests = 30
max_retries = 0
retry_budget_percent = 50
retry_budget_min = 1
)",
                                        "gw.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& r = loaded.value->routes[0].retry;
  EXPECT_EQ(r.retries, 2u);
  EXPECT_EQ(r.on, (std::vector<std::string>{"connect_failure", "5xx", "429"}));
  EXPECT_EQ(r.per_try_timeout, 2s);
  EXPECT_EQ(r.backoff_base, 10ms);
  EXPECT_EQ(r.backoff_max, 1s);
  const auto& c = loaded.value->clusters[0];
  EXPECT_EQ(c.connect_timeout, 1s);
  EXPECT_EQ(c.tls_handshake_timeout, 3s);
  EXPECT_EQ(c.max_idle, 8u);
  EXPECT_EQ(c.idle_timeout, 20s);
  EXPECT_TRUE(c.insecure);
  EXPECT_EQ(c.server_name, "api.internal");
  const auto& h = c.health_check;
  EXPECT_TRUE(h.enabled());
  EXPECT_EQ(h.path, "/healthz");
  EXPECT_EQ(h.method, "HEAD");
  EXPECT_EQ(h.host, "health.local");
  EXPECT_EQ(h.interval, 2s);
  EXPECT_EQ(h.timeout, 500ms);
  EXPECT_EQ(h.expected_status,
            (std::vector<std::pair<unsigned, unsigned>>{{200, 200}, {300, 308}}));
  EXPECT_EQ(h.healthy_threshold, 1u);
  EXPECT_EQ(h.unhealthy_threshold, 2u);
  const auto& o = c.outlier;
  EXPECT_EQ(o.consecutive_5xx, 0u);
  EXPECT_EQ(o.consecutive_connect_failures, 2u);
  EXPECT_EQ(o.base_ejection_time, 5s);
  EXPECT_EQ(o.max_ejection_time, 1min);
  EXPECT_EQ(o.max_ejected_percent, 100u);
  const auto& b = c.circuit_breaker;
  EXPECT_EQ(b.max_connections, 10u);
  EXPECT_EQ(b.max_pending, 20u);
  EXPECT_EQ(b.max_requests, 30u);
  EXPECT_EQ(b.max_retries, 0u);
  EXPECT_EQ(b.retry_budget_percent, 50u);
  EXPECT_EQ(b.retry_budget_min, 1u);
}

TEST(Routes, PolicyDefaults) {
  const auto loaded =
      load_gateway_toml("[clusters.api]\nendpoints = [\"http://127.0.0.1:1\"]\n", "gw.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& c = loaded.value->clusters[0];
  EXPECT_FALSE(c.health_check.enabled());
  EXPECT_EQ(c.health_check.expected_status,
            (std::vector<std::pair<unsigned, unsigned>>{{200, 399}}));
  EXPECT_EQ(c.outlier.consecutive_5xx, 5u);
  EXPECT_EQ(c.circuit_breaker.max_requests, 1024u);
  EXPECT_EQ(c.circuit_breaker.retry_budget_percent, 20u);
  EXPECT_EQ(c.circuit_breaker.retry_budget_min, 3u);
  EXPECT_EQ(c.connect_timeout, 5s);
}

// The retry budget compares counters of the whole cluster, so it moved from [routes.retry] to
// [clusters.NAME.circuit_breaker]: the old keys are refused with the new key's full path (the
// route's cluster when it has a usable name), not as unknown keys.
TEST(Routes, RetryBudgetKeysMovedToTheCluster) {
  const std::string cluster = "[clusters.api]\nendpoints = [\"http://127.0.0.1:1\"]\n";
  auto loaded = load_gateway_toml(
      "[[routes]]\ncluster = \"api\"\n[routes.retry]\nbudget_percent = 50\nbudget_min = 1\n" +
          cluster,
      "gw.toml");
  EXPECT_FALSE(loaded.value);
  ASSERT_EQ(loaded.errors.size(), 2u) << join(loaded.errors);
  EXPECT_EQ(loaded.errors[0],
            "gw.toml:4:18: routes[0].retry.budget_percent: moved; set "
            "clusters.api.circuit_breaker.retry_budget_percent (the budget is shared by every "
            "route of a cluster)");
  EXPECT_EQ(loaded.errors[1],
            "gw.toml:5:14: routes[0].retry.budget_min: moved; set "
            "clusters.api.circuit_breaker.retry_budget_min (the budget is shared by every route "
            "of a cluster)");

  // Without a usable cluster name (missing, or one that is not a name), the path says NAME.
  loaded = load_gateway_toml("[[routes]]\n[routes.retry]\nbudget_min = 1\n" + cluster, "gw.toml");
  EXPECT_TRUE(has_error(loaded.errors,
                        "routes[0].retry.budget_min: moved; set "
                        "clusters.NAME.circuit_breaker.retry_budget_min"))
      << join(loaded.errors);
  loaded = load_gateway_toml(
      "[[routes]]\ncluster = \"a b\"\n[routes.retry]\nbudget_percent = 1\n" + cluster, "gw.toml");
  EXPECT_TRUE(has_error(loaded.errors, "set clusters.NAME.circuit_breaker.retry_budget_percent"))
      << join(loaded.errors);

  // The new names in the old place, and the old names in the new place, say what to write.
  loaded =
      load_gateway_toml("[[routes]]\ncluster = \"api\"\n[routes.retry]\nretry_budget_min = 1\n" +
                            cluster + "[clusters.api.circuit_breaker]\nbudget_percent = 5\n",
                        "gw.toml");
  EXPECT_TRUE(has_error(loaded.errors,
                        "routes[0].retry.retry_budget_min: belongs to the cluster; set "
                        "clusters.api.circuit_breaker.retry_budget_min (the budget is shared by "
                        "every route of a cluster)"))
      << join(loaded.errors);
  EXPECT_TRUE(has_error(loaded.errors,
                        "clusters.api.circuit_breaker.budget_percent: is called "
                        "retry_budget_percent here"))
      << join(loaded.errors);
  EXPECT_EQ(loaded.errors.size(), 2u) << join(loaded.errors);

  // A typo in [routes.retry] is not pointed at a key that moved away.
  loaded = load_gateway_toml(
      "[[routes]]\ncluster = \"api\"\n[routes.retry]\nbudget_percnt = 1\n" + cluster, "gw.toml");
  ASSERT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
  EXPECT_EQ(loaded.errors[0], "gw.toml:4:1: unknown key 'routes[0].retry.budget_percnt'");

  // In their new place they load.
  loaded = load_gateway_toml(
      "[[routes]]\ncluster = \"api\"\n" + cluster +
          "[clusters.api.circuit_breaker]\nretry_budget_percent = 0\nretry_budget_min = 0\n",
      "gw.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  EXPECT_EQ(loaded.value->clusters[0].circuit_breaker.retry_budget_percent, 0u);
  EXPECT_EQ(loaded.value->clusters[0].circuit_breaker.retry_budget_min, 0u);
}

TEST(Routes, ParseEndpoint) {
  EndpointConfig ep{.url = "https://api.internal"};
  std::string err;
  ASSERT_TRUE(parse_endpoint(ep, &err)) << err;
  EXPECT_TRUE(ep.tls);
  EXPECT_EQ(ep.host, "api.internal");
  EXPECT_EQ(ep.port, "443");
  ep.url = "http://[::1]:8080/";
  ASSERT_TRUE(parse_endpoint(ep, &err)) << err;
  EXPECT_FALSE(ep.tls);
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.port, "8080");
  ep.url = "tunnel:app";
  ASSERT_TRUE(parse_endpoint(ep, &err)) << err;
  EXPECT_TRUE(ep.tunnel);
  EXPECT_EQ(ep.tunnel_name, "app");
  for (const char* bad : {"tcp://h:1", "http://h:1/path", "http://u:p@h:1", "tunnel:Bad_Name",
                          "http://h:0", "h:80"}) {
    ep.url = bad;
    EXPECT_FALSE(parse_endpoint(ep, &err)) << bad;
  }
}

TEST(Routes, EachRuleReportsItsKey) {
  struct Case {
    std::string toml, want;
  };
  const std::string cluster = "[clusters.c]\nendpoints = [\"tunnel:app\"]\n";
  const std::vector<Case> cases = {
      {"[[routes]]\npath_prefix = \"/\"\n" + cluster, "routes[0].cluster: required"},
      {"[[routes]]\ncluster = \"nope\"\n" + cluster,
       "routes[0].cluster: no cluster named \"nope\""},
      {"[[routes]]\ncluster = \"c\"\nhost = \"a.com:80\"\n" + cluster, "routes[0].host: expected"},
      {"[[routes]]\ncluster = \"c\"\npath_prefix = \"api\"\n" + cluster,
       "routes[0].path_prefix: must start with '/'"},
      {"[[routes]]\ncluster = \"c\"\nmethods = [\"get\"]\n" + cluster,
       "routes[0].methods: expected upper-case"},
      {"[[routes]]\ncluster = \"c\"\nmethods = [1]\n" + cluster,
       "routes[0].methods: expected an array of strings, element 0 is"},
      {"[[routes]]\ncluster = \"c\"\nheaders = { \"Bad Name\" = \"x\" }\n" + cluster,
       "routes[0].headers: invalid header name"},
      {"[[routes]]\ncluster = \"c\"\nstrip_prefix = true\nprefix_rewrite = \"/x\"\n" + cluster,
       "routes[0].strip_prefix: contradicts prefix_rewrite"},
      {"[[routes]]\ncluster = \"c\"\n[routes.request_headers]\nset = { \"X\" = 1 }\n" + cluster,
       "routes[0].request_headers.set: expected string values"},
      {"[[routes]]\ncluster = \"c\"\n[routes.response_headers]\nremove = [\"Content-Length\"]\n" +
           cluster,
       "routes[0].response_headers.remove: \"Content-Length\" frames the message"},
      {"[[routes]]\ncluster = \"c\"\n[routes.request_headers]\nset = { \"transfer-encoding\" = "
       "\"gzip\" }\n" +
           cluster,
       "routes[0].request_headers.set: \"transfer-encoding\" frames the message"},
      {"[[routes]]\ncluster = \"c\"\nclster = \"c\"\n" + cluster, "clster"},
      {"[clusters.c]\nendpoints = []\n", "clusters.c.endpoints: a cluster needs at least one"},
      {"[clusters.c]\nendpoints = [\"ftp://h:1\"]\n", "clusters.c.endpoints[0].url: expected"},
      {"[clusters.c]\nendpoints = [{ url = \"http://h:1\", weight = 0 }]\n",
       "clusters.c.endpoints[0].weight: must be between 1 and 1000"},
      {"[clusters.c]\nlb = \"fastest\"\nendpoints = [\"http://h:1\"]\n",
       "clusters.c.lb: expected round_robin"},
      {"[clusters.c]\nhash_key = \"ip\"\nendpoints = [\"http://h:1\"]\n",
       "clusters.c.hash_key: expected \"client_ip\""},
      {"[clusters.c]\nendpont = 1\nendpoints = [\"http://h:1\"]\n", "endpont"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\ninsecure = true\nca = \"/etc/hostname\"\n",
       "clusters.c.insecure: contradicts ca"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\nca = \"/nonexistent/ca.pem\"\n",
       "clusters.c.ca: cannot read"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\nconnect_timeout = \"0s\"\n",
       "clusters.c.connect_timeout: must be greater than 0"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.health_check]\npath = \"x\"\n",
       "clusters.c.health_check.path: must start with '/'"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.health_check]\nmethod = \"POST\"\n",
       "clusters.c.health_check.method: expected \"GET\" or \"HEAD\""},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.health_check]\n"
       "expected_status = \"300-200\"\n",
       "clusters.c.health_check.expected_status: expected HTTP statuses"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.health_check]\n"
       "expected_status = [200, 700]\n",
       "clusters.c.health_check.expected_status: expected HTTP statuses"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.health_check]\n"
       "healthy_threshold = 0\n",
       "clusters.c.health_check.healthy_threshold: must be between 1 and 1000"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.outlier]\n"
       "base_ejection_time = \"1m\"\nmax_ejection_time = \"10s\"\n",
       "clusters.c.outlier.max_ejection_time: must be at least base_ejection_time"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.outlier]\n"
       "max_ejected_percent = 101\n",
       "clusters.c.outlier.max_ejected_percent: must be between 0 and 100"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.circuit_breaker]\n"
       "max_requests = 0\n",
       "clusters.c.circuit_breaker.max_requests: must be between 1"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.circuit_breaker]\nmax_reqs = 1\n",
       "max_reqs"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.circuit_breaker]\n"
       "retry_budget_percent = 101\n",
       "clusters.c.circuit_breaker.retry_budget_percent: must be between 0 and 100, got 101"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.circuit_breaker]\n"
       "retry_budget_min = 100001\n",
       "clusters.c.circuit_breaker.retry_budget_min: must be between 0 and 100000"},
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n[clusters.c.circuit_breaker]\n"
       "retry_budget_min = -1\n",
       "clusters.c.circuit_breaker.retry_budget_min: must not be negative"},
      {"[[routes]]\ncluster = \"c\"\n[routes.retry]\nbudget_percent = 20\n" + cluster,
       "routes[0].retry.budget_percent: moved; set "
       "clusters.c.circuit_breaker.retry_budget_percent"},
      {"[[routes]]\ncluster = \"c\"\n[routes.retry]\non = [\"5xx\", \"gateway-error\"]\n" + cluster,
       "routes[0].retry.on: expected \"connect_failure\""},
      {"[[routes]]\ncluster = \"c\"\n[routes.retry]\non = [\"302\"]\n" + cluster,
       "routes[0].retry.on: expected"},
      {"[[routes]]\ncluster = \"c\"\n[routes.retry]\non = [\"0503\"]\n" + cluster,
       "routes[0].retry.on: expected"},
      {"[[routes]]\ncluster = \"c\"\n[routes.retry]\nretries = 11\n" + cluster,
       "routes[0].retry.retries: must be between 0 and 10"},
      {"[[routes]]\ncluster = \"c\"\n[routes.retry]\nbackoff_base = \"1s\"\n" + cluster,
       "routes[0].retry.backoff_max: must be at least backoff_base"},
  };
  for (const auto& k : cases) {
    const auto loaded = load_gateway_toml(k.toml, "gw.toml");
    EXPECT_FALSE(loaded.value) << k.toml;
    EXPECT_TRUE(has_error(loaded.errors, k.want)) << "missing \"" << k.want << "\" in:\n"
                                                  << join(loaded.errors) << "for:\n"
                                                  << k.toml;
  }
}

}  // namespace
}  // namespace proxer::config
