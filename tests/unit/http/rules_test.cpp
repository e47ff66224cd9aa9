#include "http/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace proxer::http {
namespace {

// Feeds raw bytes to a Beast parser; returns the message when it parsed completely.
template <bool isRequest>
std::optional<bhttp::message<isRequest, bhttp::string_body>> parse(std::string_view raw) {
  bhttp::parser<isRequest, bhttp::string_body> p;
  p.eager(true);
  beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !p.is_done() && used < raw.size()) {
    const auto n = p.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
    if (n == 0) break;
    used += n;
  }
  if (ec || !p.is_done() || used != raw.size()) return std::nullopt;
  return p.release();
}

std::vector<std::string> values(const bhttp::fields& f, std::string_view name) {
  std::vector<std::string> out;
  const auto range = f.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.emplace_back(it->value());
  return out;
}

// --- Routing -----------------------------------------------------------------------------------

TEST(TunnelFromHost, RoutesByFirstLabel) {
  struct Case {
    std::string_view host;
    std::string_view domain;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"app.tunnel.example.com", "tunnel.example.com", "app"},
      {"app.tunnel.example.com:8080", "tunnel.example.com", "app"},
      {"APP.Tunnel.Example.COM", "tunnel.example.com", "app"},
      {"app.tunnel.example.com", "TUNNEL.example.com", "app"},
      {"app.tunnel.example.com.", "tunnel.example.com", "app"},
      {"app.tunnel.example.com.:443", "tunnel.example.com", "app"},
      {"app.tunnel.example.com", "tunnel.example.com.", "app"},
      {"app.tunnel.example.com", ".tunnel.example.com", "app"},
      {"app.tunnel.example.com:", "tunnel.example.com", "app"},
      {" my-app-2.localhost ", "localhost", "my-app-2"},
      {"demo.localhost:8080", "localhost", "demo"},
      {"demo.localhost:8080", "localhost:8080", "demo"},
      {"demo.localhost", "localhost:8080", "demo"},
      {"a.b.tunnel.example.com", "tunnel.example.com", std::nullopt},
      {"tunnel.example.com", "tunnel.example.com", std::nullopt},
      {".tunnel.example.com", "tunnel.example.com", std::nullopt},
      {"apptunnel.example.com", "tunnel.example.com", std::nullopt},
      {"app.other.example.com", "tunnel.example.com", std::nullopt},
      {"app.tunnel.example.com.evil.com", "tunnel.example.com", std::nullopt},
      {"app.tunnel.example.com:80x", "tunnel.example.com", std::nullopt},
      {"-app.tunnel.example.com", "tunnel.example.com", std::nullopt},
      {"app_1.tunnel.example.com", "tunnel.example.com", std::nullopt},
      {"app.tunnel.example.com", "", std::nullopt},
      {"", "tunnel.example.com", std::nullopt},
      {"[::1]:8080", "tunnel.example.com", std::nullopt},
      {"[::1]", "1]", std::nullopt},
      {"::1", "1", std::nullopt},
      {"fe80::1.localhost", "localhost", std::nullopt},
      {std::string_view("0123456789012345678901234567890123456789012345678901234567890123.d"), "d",
       std::nullopt},  // 64-character label
  };
  for (const auto& c : cases) {
    EXPECT_EQ(tunnel_from_host(c.host, c.domain), c.want) << c.host << " / " << c.domain;
  }
}

TEST(BareHost, DropsPortAndTrailingDot) {
  EXPECT_EQ(bare_host(" API.example.com:8080 "), "API.example.com");
  EXPECT_EQ(bare_host("example.com."), "example.com");
  EXPECT_EQ(bare_host("[::1]:8080"), "[::1]");
  EXPECT_EQ(bare_host("[::1]"), "[::1]");
  EXPECT_EQ(bare_host("example.com:x"), std::nullopt);
  EXPECT_EQ(bare_host("::1"), std::nullopt);
}

TEST(TunnelFromPath, SplitsNameAndRest) {
  struct Case {
    std::string_view target;
    std::optional<std::string> tunnel;
    std::string rest;
  };
  const Case cases[] = {
      {"/t/app/x/y?q=1", "app", "/x/y?q=1"},
      {"/t/app", "app", "/"},
      {"/t/app/", "app", "/"},
      {"/t/app?q", "app", "/?q"},
      {"/t/app?a=/b", "app", "/?a=/b"},
      {"/t/app//x", "app", "//x"},
      {"/t/my-app-2/index.html", "my-app-2", "/index.html"},
      {"/t/", std::nullopt, ""},
      {"/t", std::nullopt, ""},
      {"/t//x", std::nullopt, ""},
      {"/t/?q", std::nullopt, ""},
      {"/x", std::nullopt, ""},
      {"/", std::nullopt, ""},
      {"", std::nullopt, ""},
      {"/tt/app", std::nullopt, ""},
      {"/T/app", std::nullopt, ""},
      {"/t/App/x", std::nullopt, ""},
      {"/t/app%2Fx", std::nullopt, ""},
      {"/t/-app", std::nullopt, ""},
      {"/t/app.x/y", std::nullopt, ""},
      {"http://h/t/app/x", std::nullopt, ""},
  };
  for (const auto& c : cases) {
    const auto got = tunnel_from_path(c.target);
    ASSERT_EQ(got.has_value(), c.tunnel.has_value()) << c.target;
    if (!got) continue;
    EXPECT_EQ(got->tunnel, *c.tunnel) << c.target;
    EXPECT_EQ(got->rest, c.rest) << c.target;
  }
}

TEST(LexicalRules, TokensAndFieldValues) {
  EXPECT_TRUE(is_token("GET"));
  EXPECT_TRUE(is_token("X-Custom_1!#$%&'*+-.^`|~"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("G T"));
  EXPECT_FALSE(is_token("X:Y"));
  EXPECT_FALSE(is_token("caf\xc3\xa9"));
  EXPECT_TRUE(is_field_value(""));
  EXPECT_TRUE(is_field_value("a b\tc, \"q\" caf\xc3\xa9 ~"));  // HTAB, SP, VCHAR, obs-text
  EXPECT_FALSE(is_field_value("a\rb"));
  EXPECT_FALSE(is_field_value("a\nb"));
  EXPECT_FALSE(is_field_value(std::string("a\0b", 3)));
  EXPECT_FALSE(is_field_value("a\x01"));
  EXPECT_FALSE(is_field_value("0123456789abcdef\x7f"));  // DEL, past the first word
}

TEST(ValidTunnelName, FollowsDnsLabelRule) {
  EXPECT_TRUE(valid_tunnel_name("a"));
  EXPECT_TRUE(valid_tunnel_name("a-1"));
  EXPECT_TRUE(valid_tunnel_name(std::string(63, 'a')));
  EXPECT_FALSE(valid_tunnel_name(std::string(64, 'a')));
  EXPECT_FALSE(valid_tunnel_name(""));
  EXPECT_FALSE(valid_tunnel_name("a-"));
  EXPECT_FALSE(valid_tunnel_name("A"));
  EXPECT_FALSE(valid_tunnel_name("a.b"));
}

// --- Hop-by-hop ----------------------------------------------------------------------------------

struct HopCase {
  const char* name;
  std::vector<std::pair<std::string, std::string>> in;
  bool keep_upgrade;
  std::vector<std::pair<std::string, std::string>> want;  // remaining fields, in order
};

TEST(StripHopByHop, RemovesFixedAndListedHeaders) {
  const HopCase cases[] = {
      {"fixed set",
       {{"Host", "h"},
        {"Connection", "keep-alive"},
        {"Keep-Alive", "timeout=5"},
        {"Proxy-Connection", "keep-alive"},
        {"TE", "trailers"},
        {"Trailer", "X-Sum"},
        {"Transfer-Encoding", "chunked"},
        {"Upgrade", "websocket"},
        {"Proxy-Authenticate", "Basic"},
        {"Proxy-Authorization", "Basic eDp5"},
        {"Accept", "*/*"}},
       false,
       {{"Host", "h"}, {"Accept", "*/*"}}},
      {"names listed in Connection, comma list, mixed case, several lines",
       {{"Host", "h"},
        {"connection", "Close, x-foo ,X-BAR,, "},
        {"Connection", "x-Baz"},
        {"X-Foo", "1"},
        {"x-bar", "2"},
        {"X-BAZ", "3"},
        {"X-Foo", "4"},
        {"X-Keep", "5"}},
       false,
       {{"Host", "h"}, {"X-Keep", "5"}}},
      {"Connection may not strip Host or Content-Length",
       {{"Host", "h"},
        {"Connection", "host, content-length, date"},
        {"Content-Length", "3"},
        {"Date", "d"}},
       false,
       {{"Host", "h"}, {"Content-Length", "3"}}},
      {"upgrade kept and Connection restored",
       {{"Host", "h"},
        {"Connection", "keep-alive, Upgrade, X-Foo"},
        {"Upgrade", "websocket"},
        {"X-Foo", "1"},
        {"Sec-WebSocket-Key", "k"}},
       true,
       {{"Host", "h"},
        {"Upgrade", "websocket"},
        {"Sec-WebSocket-Key", "k"},
        {"Connection", "Upgrade"}}},
      {"keep_upgrade without Upgrade header adds nothing",
       {{"Host", "h"}, {"Connection", "close"}},
       true,
       {{"Host", "h"}}},
      {"nothing to do", {{"Host", "h"}, {"Accept", "a"}}, false, {{"Host", "h"}, {"Accept", "a"}}},
  };
  for (const auto& c : cases) {
    bhttp::fields f;
    for (const auto& [n, v] : c.in) f.insert(n, v);
    strip_hop_by_hop(f, c.keep_upgrade);
    std::vector<std::pair<std::string, std::string>> got;
    for (const auto& field : f) got.emplace_back(field.name_string(), field.value());
    EXPECT_EQ(got, c.want) << c.name;
  }
}

// --- Forwarded -----------------------------------------------------------------------------------

TEST(AddForwarded, AddsAllFourHeaders) {
  bhttp::fields f;
  add_forwarded(f, "203.0.113.7", "http", "app.example.com", false);
  EXPECT_EQ(f["X-Forwarded-For"], "203.0.113.7");
  EXPECT_EQ(f["X-Forwarded-Proto"], "http");
  EXPECT_EQ(f["X-Forwarded-Host"], "app.example.com");
  EXPECT_EQ(f["Forwarded"], "for=203.0.113.7;proto=http;host=app.example.com");
}

TEST(AddForwarded, QuotesIpv6AndHostWithPort) {
  struct Case {
    std::string_view ip;
    std::string_view host;
    std::string_view xff;
    std::string_view forwarded;
  };
  const Case cases[] = {
      {"::1", "h:8080", "::1", R"(for="[::1]";proto=https;host="h:8080")"},
      {"[2001:db8::1]", "h", "2001:db8::1", R"(for="[2001:db8::1]";proto=https;host=h)"},
      {"", "h", "unknown", "for=unknown;proto=https;host=h"},
      {"10.0.0.1", "we\"ird\\", "10.0.0.1", R"(for=10.0.0.1;proto=https;host="we\"ird\\")"},
  };
  for (const auto& c : cases) {
    bhttp::fields f;
    add_forwarded(f, c.ip, "https", c.host, false);
    EXPECT_EQ(f["X-Forwarded-For"], c.xff) << c.ip;
    EXPECT_EQ(f["Forwarded"], c.forwarded) << c.ip;
  }
}

TEST(AddForwarded, TrustedPeerAppendsToExistingLists) {
  bhttp::fields f;
  f.insert("X-Forwarded-For", "198.51.100.1");
  f.insert("X-Forwarded-For", " 198.51.100.2, 198.51.100.3 ");
  f.insert("Forwarded", "for=198.51.100.1");
  f.insert("X-Forwarded-Proto", "https");
  f.insert("X-Forwarded-Host", "original.example");
  f.insert("X-Real-IP", "198.51.100.1");
  add_forwarded(f, "2001:db8::2", "http", "app.example.com", true);
  EXPECT_EQ(values(f, "X-Forwarded-For"),
            std::vector<std::string>{"198.51.100.1, 198.51.100.2, 198.51.100.3, 2001:db8::2"});
  EXPECT_EQ(values(f, "Forwarded"),
            std::vector<std::string>{
                R"(for=198.51.100.1, for="[2001:db8::2]";proto=http;host=app.example.com)"});
  // The trusted proxy's view of the original request is kept.
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), std::vector<std::string>{"https"});
  EXPECT_EQ(values(f, "X-Forwarded-Host"), std::vector<std::string>{"original.example"});
  EXPECT_EQ(values(f, "X-Real-IP"), std::vector<std::string>{"198.51.100.1"});
}

TEST(AddForwarded, TrustedPeerWithoutValuesGetsOurs) {
  bhttp::fields f;
  f.insert("X-Forwarded-Proto", "  ");
  add_forwarded(f, "10.0.0.1", "http", "h", true);
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
  EXPECT_EQ(values(f, "X-Forwarded-Host"), std::vector<std::string>{"h"});
}

TEST(AddForwarded, UntrustedPeerValuesAreReplaced) {
  bhttp::fields f;
  f.insert("X-Forwarded-For", "1.2.3.4");
  f.insert("x-forwarded-for", "5.6.7.8");
  f.insert("Forwarded", "for=1.2.3.4;proto=https");
  f.insert("X-Forwarded-Proto", "https");
  f.insert("X-Forwarded-Host", "spoofed");
  f.insert("X-Forwarded-Port", "443");
  f.insert("X-Real-IP", "1.2.3.4");
  f.insert("X-Other", "kept");
  add_forwarded(f, "203.0.113.9", "http", "", false);
  EXPECT_EQ(values(f, "X-Forwarded-For"), std::vector<std::string>{"203.0.113.9"});
  EXPECT_EQ(values(f, "Forwarded"), std::vector<std::string>{"for=203.0.113.9;proto=http"});
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
  // No host given: none is invented, and the client's is gone.
  EXPECT_TRUE(values(f, "X-Forwarded-Host").empty());
  EXPECT_TRUE(values(f, "X-Forwarded-Port").empty());
  EXPECT_TRUE(values(f, "X-Real-IP").empty());
  EXPECT_EQ(values(f, "X-Other"), std::vector<std::string>{"kept"});
}

// --- Tunnel tokens -------------------------------------------------------------------------------

TEST(TunnelToken, FindsCandidatesInThreePlaces) {
  struct Case {
    const char* name;
    std::vector<std::pair<std::string, std::string>> in;
    std::vector<std::string> want;
  };
  // "user:s3cret" = dXNlcjpzM2NyZXQ=, "user" = dXNlcg==, "user:" = dXNlcjo=, ":pw" = OnB3,
  // "u:p:q" = dTpwOnE=
  const Case cases[] = {
      {"bearer", {{"Authorization", "Bearer abc.def"}}, {"abc.def"}},
      {"bearer any case and spaces", {{"Authorization", "  bEARER   tok  "}}, {"tok"}},
      {"header", {{"X-Proxer-Token", " tok "}}, {"tok"}},
      {"basic password", {{"Authorization", "Basic dXNlcjpzM2NyZXQ="}}, {"s3cret"}},
      {"basic without padding", {{"Authorization", "basic dXNlcjpzM2NyZXQ"}}, {"s3cret"}},
      {"basic empty user", {{"Authorization", "Basic OnB3"}}, {"pw"}},
      {"basic colon in password", {{"Authorization", "Basic dTpwOnE="}}, {"p:q"}},
      {"basic missing colon", {{"Authorization", "Basic dXNlcg=="}}, {}},
      {"basic empty password", {{"Authorization", "Basic dXNlcjo="}}, {}},
      {"basic malformed base64", {{"Authorization", "Basic dXN*cjpw"}}, {}},
      {"basic bad length", {{"Authorization", "Basic dXNlc"}}, {}},
      {"basic padding in middle", {{"Authorization", "Basic dX=lcjpw"}}, {}},
      {"basic empty", {{"Authorization", "Basic "}}, {}},
      {"bearer empty", {{"Authorization", "Bearer"}}, {}},
      {"other scheme", {{"Authorization", "Digest x=y"}}, {}},
      {"empty header", {{"X-Proxer-Token", "  "}}, {}},
      {"all three",
       {{"Authorization", "Bearer b"}, {"x-proxer-token", "h"}, {"Authorization", "Basic OnB3"}},
       {"h", "b", "pw"}},
      {"none", {{"Host", "h"}}, {}},
  };
  for (const auto& c : cases) {
    bhttp::fields f;
    for (const auto& [n, v] : c.in) f.insert(n, v);
    EXPECT_EQ(tunnel_token_candidates(f), c.want) << c.name;
  }
}

TEST(TunnelToken, ReportsSource) {
  bhttp::fields f;
  f.insert("Authorization", "Bearer b");
  f.insert("X-Proxer-Token", "h");
  const auto got = tunnel_token_sources(f);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].source, TokenSource::Header);
  EXPECT_EQ(got[1].source, TokenSource::Bearer);
}

TEST(TunnelToken, StripRemovesAuthorizationOnlyWhenUsed) {
  bhttp::fields f;
  f.insert("Authorization", "Basic abc");
  f.insert("X-Proxer-Token", "t");
  f.insert("x-proxer-token", "t2");
  strip_tunnel_token(f, false);
  EXPECT_EQ(f.count("X-Proxer-Token"), 0u);
  EXPECT_EQ(f["Authorization"], "Basic abc");
  strip_tunnel_token(f, true);
  EXPECT_EQ(f.count(bhttp::field::authorization), 0u);
}

// --- Serialisation -------------------------------------------------------------------------------

TEST(SerializeRequestHead, RoundTripsThroughBeast) {
  bhttp::request_header<> h;
  h.method(bhttp::verb::post);
  h.target("/x/y?q=1&r=a:b");
  h.version(11);
  h.set(bhttp::field::host, "app.example.com:8080");
  h.insert("X-Multi", "1");
  h.insert("X-Multi", "2");
  h.set(bhttp::field::content_length, "5");
  h.set("X-Url", "http://a:1/b");
  std::string out = "prefix";
  serialize_request_head(h, out);
  ASSERT_TRUE(out.starts_with("prefix"));
  const std::string wire = out.substr(6) + "hello";
  EXPECT_TRUE(wire.starts_with("POST /x/y?q=1&r=a:b HTTP/1.1\r\nHost: app.example.com:8080\r\n"));
  EXPECT_EQ(check_request_head(wire.substr(0, find_head_end(wire))), std::nullopt);
  const auto m = parse<true>(wire);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->method(), bhttp::verb::post);
  EXPECT_EQ(m->target(), "/x/y?q=1&r=a:b");
  EXPECT_EQ(m->version(), 11u);
  EXPECT_EQ((*m)[bhttp::field::host], "app.example.com:8080");
  EXPECT_EQ(values(*m, "X-Multi"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ((*m)["X-Url"], "http://a:1/b");
  EXPECT_EQ(m->body(), "hello");
}

TEST(SerializeRequestHead, UnknownMethodAndHttp10BecomeHttp11) {
  bhttp::request_header<> h;
  h.method_string("PURGE");
  h.target("/");
  h.version(10);
  h.set(bhttp::field::host, "h");
  std::string out;
  serialize_request_head(h, out);
  EXPECT_EQ(out, "PURGE / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(SerializeRequestHead, CannotInjectHeaderLines) {
  bhttp::request_header<> h;
  h.method(bhttp::verb::get);
  h.target("/a b\r\nX: y");
  h.set(bhttp::field::host, "h");
  h.set("X-Evil", std::string_view("a\r\nInjected: 1\0z", 16));
  h.set("Bad Name", "v");
  std::string out;
  serialize_request_head(h, out);
  EXPECT_EQ(out, "GET /a%20b%0D%0AX:%20y HTTP/1.1\r\nHost: h\r\nX-Evil: a  Injected: 1 z\r\n\r\n");
  EXPECT_EQ(check_request_head(out), std::nullopt);
}

TEST(SerializeResponseHead, RoundTripsThroughBeast) {
  struct Case {
    unsigned status;
    std::string_view reason;
    std::string_view want_line;
  };
  const Case cases[] = {
      {200, "", "HTTP/1.1 200 OK\r\n"},
      {404, "Nope", "HTTP/1.1 404 Nope\r\n"},
      {299, "", "HTTP/1.1 299 Unknown\r\n"},
      {502, "Bad\r\nX: y", "HTTP/1.1 502 Bad  X: y\r\n"},
  };
  for (const auto& c : cases) {
    bhttp::response_header<> h;
    h.result(c.status);
    if (!c.reason.empty()) h.reason(c.reason);
    h.set(bhttp::field::content_length, "2");
    h.insert(bhttp::field::set_cookie, "a=1");
    h.insert(bhttp::field::set_cookie, "b=2");
    std::string out;
    serialize_response_head(h, out);
    EXPECT_TRUE(out.starts_with(c.want_line)) << out;
    EXPECT_EQ(check_response_head(out), std::nullopt) << out;
    const auto m = parse<false>(out + "hi");
    ASSERT_TRUE(m.has_value()) << out;
    EXPECT_EQ(m->result_int(), c.status);
    EXPECT_EQ(values(*m, "Set-Cookie"), (std::vector<std::string>{"a=1", "b=2"}));
    EXPECT_EQ(m->body(), "hi");
  }
}

// --- Error responses -----------------------------------------------------------------------------

TEST(ErrorResponse, ParsesBackWithBeast) {
  struct Case {
    unsigned status;
    std::string_view code;
    std::string_view message;
    bool keep_alive;
    std::string_view want_code;
  };
  const Case cases[] = {
      {404, "tunnel_not_found", "no tunnel named 'app'", true, "tunnel_not_found"},
      {502, "agent_unavailable", "the agent for 'app' is not connected", false,
       "agent_unavailable"},
      {504, "timeout", "", false, "timeout"},
      {502, "bad\r\ncode", "multi\nline", true, "bad__code"},
      {499, "x", "unknown status", true, "x"},
  };
  for (const auto& c : cases) {
    const auto raw = error_response(c.status, c.code, c.message, c.keep_alive);
    EXPECT_EQ(check_response_head(raw.substr(0, find_head_end(raw))), std::nullopt) << raw;
    const auto m = parse<false>(raw);
    ASSERT_TRUE(m.has_value()) << raw;
    EXPECT_EQ(m->result_int(), c.status);
    EXPECT_EQ((*m)[bhttp::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ((*m)["X-Proxer-Error"], c.want_code);
    EXPECT_EQ((*m)[bhttp::field::cache_control], "no-store");
    EXPECT_EQ(m->body(), std::string(c.message) + "\n");
    EXPECT_EQ(m->keep_alive(), c.keep_alive) << raw;
    EXPECT_EQ(m->count(bhttp::field::connection), c.keep_alive ? 0u : 1u);
  }
}

TEST(ErrorResponse, ExactBytes) {
  EXPECT_EQ(error_response(404, "tunnel_not_found", "not found", false),
            "HTTP/1.1 404 Not Found\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 10\r\n"
            "Cache-Control: no-store\r\n"
            "X-Proxer-Error: tunnel_not_found\r\n"
            "Connection: close\r\n"
            "\r\n"
            "not found\n");
}

// --- Keep-alive and upgrade ----------------------------------------------------------------------

TEST(KeepAlive, FollowsVersionAndConnectionTokens) {
  struct Case {
    unsigned version;
    std::vector<std::string> connection;
    bool want;
  };
  const Case cases[] = {
      {11, {}, true},
      {11, {"close"}, false},
      {11, {"Keep-Alive, CLOSE"}, false},
      {11, {"upgrade", "close"}, false},
      {11, {"keep-alive"}, true},
      {10, {}, false},
      {10, {"keep-alive"}, true},
      {10, {"foo, Keep-Alive"}, true},
      {10, {"close"}, false},
  };
  for (const auto& c : cases) {
    bhttp::request_header<> h;
    h.version(c.version);
    for (const auto& v : c.connection) h.insert(bhttp::field::connection, v);
    EXPECT_EQ(wants_keep_alive(h), c.want)
        << c.version << " " << ::testing::PrintToString(c.connection);
  }
}

TEST(IsUpgrade, NeedsConnectionTokenAndUpgradeHeader) {
  struct Case {
    unsigned version;
    std::string_view connection;
    std::string_view upgrade;
    bool want;
  };
  const Case cases[] = {
      {11, "Upgrade", "websocket", true},     {11, "keep-alive, upgrade", "websocket", true},
      {11, "keep-alive", "websocket", false}, {11, "upgrade", "", false},
      {11, "", "websocket", false},           {11, "upgraded", "websocket", false},
      {10, "upgrade", "websocket", false},
  };
  for (const auto& c : cases) {
    bhttp::request_header<> h;
    h.version(c.version);
    if (!c.connection.empty()) h.set(bhttp::field::connection, c.connection);
    if (!c.upgrade.empty()) h.set(bhttp::field::upgrade, c.upgrade);
    EXPECT_EQ(is_upgrade(h), c.want) << c.connection << " / " << c.upgrade;
  }
}

}  // namespace
}  // namespace proxer::http

// --- The upstream head in one pass (serialize_forward_head) ------------------------------------

namespace proxer::http {
namespace {

struct ForwardCase {
  const char* name;
  std::string raw;  // a request head as a client sends it
  ForwardEdits edits;
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> set, add;
};

// The start line, then the field lines stably sorted by lower-case name: what both paths must
// agree on (they add fields in different places: Beast files a repeated name after the last
// field of that name, the one-pass writer appends).
std::vector<std::string> grouped_by_name(const std::string& head) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  for (;;) {
    const auto end = head.find("\r\n", at);
    if (end == std::string::npos || end == at) break;
    lines.push_back(head.substr(at, end - at));
    at = end + 2;
  }
  const auto lower_name = [](const std::string& line) {
    std::string n = line.substr(0, line.find(':'));
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return n;
  };
  std::stable_sort(lines.begin() + 1, lines.end(),
                   [&](const auto& a, const auto& b) { return lower_name(a) < lower_name(b); });
  return lines;
}

// What the gateway wrote before serialize_forward_head(): edit Beast's fields, then serialise.
std::string forward_via_beast(const ForwardCase& c) {
  auto m = parse<true>(c.raw);
  EXPECT_TRUE(m.has_value()) << c.name;
  if (!m) return {};
  auto& req = *m;
  req.erase(bhttp::field::expect);
  strip_hop_by_hop(req, c.edits.keep_upgrade);
  add_forwarded(req, c.edits.client_ip, c.edits.proto, c.edits.host, c.edits.trusted_peer);
  for (const auto& n : c.remove) req.erase(n);
  for (const auto& [n, v] : c.set) req.set(n, v);
  for (const auto& [n, v] : c.add) req.insert(n, v);
  req.target(c.edits.target);
  if (c.edits.chunked) req.set(bhttp::field::transfer_encoding, "chunked");
  std::string out;
  serialize_request_head(req.base(), out);
  return out;
}

std::string forward_in_one_pass(const ForwardCase& c, ForwardingMemo* memo = nullptr) {
  const auto m = parse<true>(c.raw);
  if (!m) return {};
  auto e = c.edits;
  e.remove = c.remove;
  e.set = c.set;
  e.add = c.add;
  e.memo = memo;
  std::string out;
  serialize_forward_head(m->base(), e, out);
  return out;
}

std::vector<ForwardCase> forward_cases() {
  const ForwardEdits plain{
      .target = "/x", .client_ip = "10.0.0.1", .proto = "http", .host = "app.example.com"};
  auto trusted = plain;
  trusted.trusted_peer = true;
  auto v6 = plain;
  v6.client_ip = "[2001:db8::1]";
  auto upgrade = plain;
  upgrade.keep_upgrade = true;
  auto chunked = plain;
  chunked.chunked = true;
  auto bare = plain;
  bare.proto = "";
  bare.host = "";
  bare.client_ip = "";
  return {
      {"plain GET", "GET /a HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n", plain},
      {"hop-by-hop and Connection-listed fields",
       "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-A, host, content-length\r\n"
       "Keep-Alive: 5\r\nTE: trailers\r\nX-A: 1\r\nx-a: 2\r\nProxy-Authorization: x\r\n"
       "Upgrade: h2c\r\nExpect: 100-continue\r\nContent-Length: 0\r\nX-B: 3\r\n\r\n",
       plain},
      {"untrusted peer's forwarding headers are dropped",
       "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\n"
       "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\n"
       "X-Real-IP: 1.2.3.4\r\nX-Other: o\r\n\r\n",
       plain},
      {"trusted peer's lists are extended and its proto/host kept",
       "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\nA: 1\r\n"
       "x-forwarded-for:  198.51.100.2 , 198.51.100.3 \r\nForwarded: for=198.51.100.1\r\n"
       "X-Forwarded-Proto: https\r\nX-Forwarded-Host: original.example\r\nX-Real-IP: r\r\n\r\n",
       trusted},
      {"trusted peer with empty or Connection-listed values gets ours",
       "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: \r\nX-Forwarded-Proto: https\r\n"
       "Connection: X-Forwarded-Host\r\nX-Forwarded-Host: dropped\r\n\r\n",
       trusted},
      {"IPv6 client", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", v6},
      {"no client address, proto or host", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", bare},
      {"upgrade keeps Upgrade and restores Connection",
       "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, X-A\r\nUpgrade: websocket\r\n"
       "X-A: 1\r\nSec-WebSocket-Key: k\r\n\r\n",
       upgrade},
      {"chunked body re-framed",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", chunked},
      {"route remove, set and add, also of forwarding headers",
       "GET / HTTP/1.1\r\nHost: h\r\nX-Debug: 1\r\nx-debug: 2\r\nX-From: client\r\n"
       "Via: 1.1 edge\r\n\r\n",
       plain,
       {"x-debug", "Forwarded"},
       {{"X-From", "proxer"}, {"x-forwarded-proto", "https"}},
       {{"Via", "1.1 proxer"}, {"X-Forwarded-For", "extra"}}},
      {"configured values cannot inject lines",
       "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
       plain,
       {},
       {{"X-A", "a\r\nX-Evil: 1"}},
       {{"Bad Name", "v"}}},
      {"another host on the same connection",
       "GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
       {.target = "/", .client_ip = "10.0.0.1", .proto = "http", .host = "other.example.com"}},
      {"another client address (the embedded engine's reused connections)",
       "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
       {.target = "/", .client_ip = "10.0.0.2", .proto = "http", .host = "app.example.com"}},
      {"another scheme",
       "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
       {.target = "/", .client_ip = "10.0.0.1", .proto = "https", .host = "app.example.com"}},
  };
}

TEST(SerializeForwardHead, WritesWhatTheBeastPathWrote) {
  for (const auto& c : forward_cases()) {
    const auto want = forward_via_beast(c);
    const auto got = forward_in_one_pass(c);
    EXPECT_EQ(grouped_by_name(got), grouped_by_name(want)) << c.name << "\n" << got;
    EXPECT_EQ(check_request_head(got), std::nullopt) << c.name << "\n" << got;
  }
}

// A connection's memo of its forwarding fields never changes what is written: every case, one
// after another on one memo (each input the memo is keyed on changes between some two of them,
// and a trusted peer's merged lists bypass it), forwards and backwards, each twice in a row,
// writes what it writes without a memo.
TEST(SerializeForwardHead, MemoWritesWhatNoMemoWrites) {
  auto cases = forward_cases();
  ForwardingMemo memo;
  for (int round = 0; round < 2; ++round) {
    for (const auto& c : cases) {
      const auto want = forward_in_one_pass(c);
      EXPECT_EQ(forward_in_one_pass(c, &memo), want) << c.name;
      EXPECT_EQ(forward_in_one_pass(c, &memo), want) << c.name << " (again)";
    }
    std::reverse(cases.begin(), cases.end());
  }
  EXPECT_TRUE(memo.valid);
}

// The client's fields come in the order Beast's parser stored them (it files a repeated name
// after the last field of that name), then the forwarding headers, then the route's.
TEST(SerializeForwardHead, ExactBytes) {
  const auto m = parse<true>(
      "GET /old HTTP/1.1\r\nHost: app.example.com\r\nA: 1\r\nB: 2\r\na: 3\r\n"
      "Connection: close\r\n\r\n");
  ASSERT_TRUE(m.has_value());
  const std::vector<std::pair<std::string, std::string>> add{{"Via", "1.1 proxer"}};
  const ForwardEdits e{.target = "/new?q",
                       .client_ip = "10.0.0.1",
                       .proto = "http",
                       .host = "app.example.com",
                       .add = add};
  std::string out;
  serialize_forward_head(m->base(), e, out);
  EXPECT_EQ(out,
            "GET /new?q HTTP/1.1\r\nHost: app.example.com\r\nA: 1\r\na: 3\r\nB: 2\r\n"
            "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: app.example.com\r\n"
            "Forwarded: for=10.0.0.1;proto=http;host=app.example.com\r\nVia: 1.1 proxer\r\n\r\n");
}

}  // namespace
}  // namespace proxer::http
