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
      {"[clusters.c]\nendpoints = [\"http://h:1\"]\n",
       "clusters.c.endpoints[0].url: direct http:// and https:// endpoints are not supported yet"},
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
