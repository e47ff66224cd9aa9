// Route matching (first match in file order, each condition), target rewriting, header ops and
// hash keys.
#include "proxy/router.h"

#include <gtest/gtest.h>

namespace proxer::proxy {
namespace {

bhttp::request_header<> request(std::string_view method, std::string_view target,
                                std::string_view host) {
  bhttp::request_header<> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, host);
  return req;
}

config::RouteConfig route(std::string name, std::string host, std::string prefix) {
  config::RouteConfig r;
  r.name = std::move(name);
  r.host = std::move(host);
  r.path_prefix = std::move(prefix);
  r.cluster = "c";
  return r;
}

TEST(Router, FirstMatchInFileOrderWins) {
  Router router({route("api", "", "/api/"), route("api-v2", "", "/api/v2/"), route("all", "", "")});
  EXPECT_EQ(router.match(request("GET", "/api/v2/x", "a"))->name, "api");
  EXPECT_EQ(router.match(request("GET", "/other", "a"))->name, "all");
}

TEST(Router, HostExactAndWildcard) {
  Router router({route("exact", "api.example.com", ""), route("wild", "*.example.com", "")});
  EXPECT_EQ(router.match(request("GET", "/", "API.example.com:8080"))->name, "exact");
  EXPECT_EQ(router.match(request("GET", "/", "app.example.com"))->name, "wild");
  EXPECT_EQ(router.match(request("GET", "/", "api.example.com."))->name, "exact");
  EXPECT_EQ(router.match(request("GET", "/", "example.com")), nullptr);
  EXPECT_EQ(router.match(request("GET", "/", "a.b.example.com")), nullptr);
  EXPECT_EQ(router.match(request("GET", "/", "evil-example.com")), nullptr);
}

TEST(Router, MethodsAndHeaders) {
  auto r = route("canary", "", "/");
  r.methods = {"GET", "HEAD"};
  r.headers = {{"X-Env", "canary"}};
  Router router({r, route("rest", "", "/")});
  auto req = request("GET", "/", "h");
  EXPECT_EQ(router.match(req)->name, "rest");
  req.set("x-env", "canary");
  EXPECT_EQ(router.match(req)->name, "canary");
  req.set("X-Env", "Canary");  // values are exact
  EXPECT_EQ(router.match(req)->name, "rest");
  req.set("X-Env", "canary");
  req.method_string("POST");
  EXPECT_EQ(router.match(req)->name, "rest");
}

TEST(Router, QueryIsNotPartOfThePath) {
  Router router({route("exact", "", "/a")});
  EXPECT_NE(router.match(request("GET", "/a?x=1", "h")), nullptr);
  EXPECT_EQ(router.match(request("GET", "/?a", "h")), nullptr);
}

TEST(Router, RewriteTarget) {
  auto r = route("r", "", "/api/");
  EXPECT_EQ(rewrite_target(r, "/api/users?x=1"), "/api/users?x=1");  // no rewrite configured
  r.strip_prefix = true;
  EXPECT_EQ(rewrite_target(r, "/api/users?x=1"), "/users?x=1");
  EXPECT_EQ(rewrite_target(r, "/api/"), "/");
  r.strip_prefix = false;
  r.prefix_rewrite = "/v2/";
  EXPECT_EQ(rewrite_target(r, "/api/users"), "/v2/users");
  r.prefix_rewrite = "/v2";
  EXPECT_EQ(rewrite_target(r, "/api/users"), "/v2/users");
  auto bare = route("b", "", "/api");
  bare.strip_prefix = true;
  EXPECT_EQ(rewrite_target(bare, "/api/users"), "/users");
  EXPECT_EQ(rewrite_target(bare, "/api"), "/");
  EXPECT_EQ(rewrite_target(bare, "/api?q"), "/?q");
}

TEST(Router, HashKeys) {
  auto req = request("GET", "/", "h");
  EXPECT_EQ(hash_key_of("client_ip", req, "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(hash_key_of("header:X-User", req, "10.0.0.1"), "10.0.0.1");  // fallback
  req.set("X-User", "alice");
  EXPECT_EQ(hash_key_of("header:X-User", req, "10.0.0.1"), "alice");
  req.set(bhttp::field::cookie, "a=1; session=abc123; sessionx=no");
  EXPECT_EQ(hash_key_of("cookie:session", req, "10.0.0.1"), "abc123");
  EXPECT_EQ(hash_key_of("cookie:other", req, "10.0.0.1"), "10.0.0.1");
}

}  // namespace
}  // namespace proxer::proxy
