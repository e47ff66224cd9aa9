#include "proxy/safety.h"

#include <gtest/gtest.h>

#include <string>

#include "proxy/router.h"

namespace proxer::proxy {
namespace {

config::RouteConfig route(std::string prefix, bool strip, std::string rewrite) {
  config::RouteConfig r;
  r.name = "r";
  r.path_prefix = std::move(prefix);
  r.strip_prefix = strip;
  r.prefix_rewrite = std::move(rewrite);
  r.cluster = "c";
  return r;
}

// The target a route forwards, or "!code" when the request is refused.
std::string forwarded(const RequestSafety& s, const config::RouteConfig& r, std::string target) {
  bhttp::request_header<> req;
  req.method(bhttp::verb::get);
  req.target(target);
  if (auto bad = s.sanitize_request(req)) return "!" + bad->code;
  std::string out = rewrite_target(r, req.target());
  if (auto bad = s.check_rewritten(r, req.target(), out)) return "!" + bad->code;
  return out;
}

TEST(RequestSafety, FromConfig) {
  config::HttpConfig c;
  c.merge_slashes = true;
  c.escaped_slashes = "decode";
  c.headers_with_underscores = "reject";
  c.trusted_proxies = {"10.0.0.0/8", "::1"};
  c.hide_response_headers = {"Server"};
  const RequestSafety s(c);
  EXPECT_EQ(s.path, (http::PathOptions{true, true, http::EscapedSlashes::Decode}));
  EXPECT_EQ(s.underscores, http::UnderscoreHeaders::Reject);
  EXPECT_TRUE(s.trusts("10.2.3.4"));
  EXPECT_TRUE(s.trusts("::1"));
  EXPECT_FALSE(s.trusts("192.0.2.1"));
  EXPECT_EQ(s.hide_response_headers, std::vector<std::string>{"Server"});

  const RequestSafety d;  // the defaults
  EXPECT_EQ(d.path, (http::PathOptions{true, false, http::EscapedSlashes::Keep}));
  EXPECT_EQ(d.underscores, http::UnderscoreHeaders::Drop);
  EXPECT_FALSE(d.trusts("127.0.0.1"));
}

TEST(RequestSafety, NormalisesBeforeRouting) {
  const RequestSafety s;
  const auto plain = route("/", false, "");
  EXPECT_EQ(forwarded(s, plain, "/public/../admin"), "/admin");
  EXPECT_EQ(forwarded(s, plain, "/public/%2e%2e/admin?x=/../"), "/admin?x=/../");
  EXPECT_EQ(forwarded(s, plain, "/../admin"), "!path_traversal");
  EXPECT_EQ(forwarded(s, plain, "/a%00"), "!bad_path");
  // A route's prefix sees the normalised path: "/public/../admin" does not match "/public/".
  Router router({route("/public/", false, ""), route("/", false, "")});
  bhttp::request_header<> req;
  req.method(bhttp::verb::get);
  req.target("/public/../admin");
  ASSERT_FALSE(s.sanitize_request(req));
  EXPECT_EQ(router.match(req)->path_prefix, "/");
}

TEST(RequestSafety, AbsoluteFormBecomesOriginForm) {
  const RequestSafety s;
  const auto plain = route("/", false, "");
  EXPECT_EQ(forwarded(s, plain, "http://app.example.com/a/../b?q=1"), "/b?q=1");
  EXPECT_EQ(forwarded(s, plain, "HTTPS://app.example.com:8443"), "/");
  EXPECT_EQ(forwarded(s, plain, "http://app.example.com?q"), "/?q");
  EXPECT_EQ(forwarded(s, plain, "http:///nohost"), "!bad_path");
  EXPECT_EQ(forwarded(s, plain, "http://user:pw@app.example.com/"), "!bad_path");
  EXPECT_EQ(forwarded(s, plain, "ftp://app.example.com/"), "!bad_path");
  // The authority replaces Host (RFC 9112 §3.2.2).
  bhttp::request_header<> req;
  req.method(bhttp::verb::get);
  req.target("http://api.example.com:8080/x");
  req.set(bhttp::field::host, "other.example.com");
  ASSERT_FALSE(s.sanitize_request(req));
  EXPECT_EQ(req.target(), "/x");
  EXPECT_EQ(req[bhttp::field::host], "api.example.com:8080");
}

TEST(RequestSafety, ChecksAgainAfterTheRewrite) {
  const RequestSafety s;
  struct Case {
    config::RouteConfig r;
    std::string in, want;
  };
  const Case cases[] = {
      // strip_prefix with a prefix that ends inside a segment: ".." is left over.
      {route("/api", true, ""), "/api/users", "/users"},
      {route("/api", true, ""), "/api..", "!path_traversal"},
      {route("/api", true, ""), "/api../etc/passwd", "!path_traversal"},
      {route("/api", true, ""), "/api%2e%2e/etc/passwd", "!path_traversal"},
      {route("/api", true, ""), "/api./x", "/x"},
      {route("/api", true, ""), "/api.x", "/.x"},
      // prefix_rewrite: the rest may not climb out of the new prefix either.
      {route("/static", false, "/files/"), "/static/a.css", "/files/a.css"},
      {route("/static", false, "/files/"), "/static../secret", "!path_traversal"},
      {route("/static", false, "/files/public"), "/static/a/../b", "/files/public/b"},
      {route("/static/", false, "/files/"), "/static/./a//b?q=..", "/files/a//b?q=.."},
      // A route that rewrites nothing is not checked again (its target was normalised).
      {route("/api", false, ""), "/api/x", "/api/x"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(forwarded(s, c.r, c.in), c.want) << c.in << " via " << c.r.path_prefix;
  }
}

TEST(RequestSafety, NormalizePathOffChecksNothing) {
  config::HttpConfig c;
  c.normalize_path = false;
  const RequestSafety s(c);
  EXPECT_EQ(forwarded(s, route("/api", true, ""), "/api../x"), "/../x");
  EXPECT_EQ(forwarded(s, route("/", false, ""), "/a/../../b"), "/a/../../b");
}

TEST(RequestSafety, UnderscoreHeaders) {
  auto request = [] {
    bhttp::request_header<> req;
    req.method(bhttp::verb::get);
    req.target("/");
    req.insert("X_Forwarded_For", "1.2.3.4");
    req.insert("X-Ok", "1");
    return req;
  };
  {
    const RequestSafety s;
    auto req = request();
    EXPECT_FALSE(s.sanitize_request(req));
    EXPECT_EQ(req.find("X_Forwarded_For"), req.end());
    EXPECT_NE(req.find("X-Ok"), req.end());
  }
  {
    config::HttpConfig c;
    c.headers_with_underscores = "reject";
    auto req = request();
    const auto bad = RequestSafety(c).sanitize_request(req);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->code, "header_with_underscore");
    EXPECT_NE(bad->message.find("X_Forwarded_For"), std::string::npos);
  }
  {
    config::HttpConfig c;
    c.headers_with_underscores = "allow";
    auto req = request();
    EXPECT_FALSE(RequestSafety(c).sanitize_request(req));
    EXPECT_NE(req.find("X_Forwarded_For"), req.end());
  }
}

}  // namespace
}  // namespace proxer::proxy
