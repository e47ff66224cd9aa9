// Value parsers shared by the TOML loader and the CLI: durations, sizes, addresses, tunnel specs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace proxer::config {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsEveryUnitAndCompounds) {
  const std::vector<std::pair<std::string, Duration>> cases = {
      {"250ms", 250ms}, {"30s", 30s},       {"5m", 5min},
      {"1h", 1h},       {"1m30s", 90s},     {"1h2m3s4ms", 1h + 2min + 3s + 4ms},
      {"0s", 0ms},      {"1500ms", 1500ms}, {"90m", 90min},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    const auto got = parse_duration(text, &error);
    ASSERT_TRUE(got) << text << ": " << error;
    EXPECT_EQ(*got, want) << text;
  }
}

TEST(ParseDuration, RejectsMalformedValuesWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"30", "a unit is required"},
      {"30x", "unknown unit \"x\""},
      {"30us", "unknown unit \"us\""},
      {"1.5s", "whole numbers"},
      {"-1s", "must not be negative"},
      {"1s1m", "largest to smallest"},
      {"1s1s", "largest to smallest"},
      {"s", "expected a number before \"s\""},
      {"30 s", "unexpected character \" \""},
      {"99999999999999999999h", "too large"},
      {"9999999999999999h", "too large"},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    EXPECT_FALSE(parse_duration(text, &error)) << text;
    EXPECT_NE(error.find(want), std::string::npos) << text << " -> " << error;
    EXPECT_NE(error.find("invalid duration"), std::string::npos) << error;
  }
}

TEST(ParseDuration, ToleratesANullErrorPointer) {
  EXPECT_FALSE(parse_duration("nope", nullptr));
}

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  const std::vector<std::pair<std::string, std::uint64_t>> cases = {
      {"512", 512},          {"0", 0},
      {"10B", 10},           {"16KiB", 16 * 1024},
      {"64KB", 64'000},      {"1MiB", 1024 * 1024},
      {"2MB", 2'000'000},    {"1GiB", 1ull << 30},
      {"1TiB", 1ull << 40},  {"16kib", 16 * 1024},
      {"16 KiB", 16 * 1024}, {"3GB", 3'000'000'000ull},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    const auto got = parse_size(text, &error);
    ASSERT_TRUE(got) << text << ": " << error;
    EXPECT_EQ(*got, want) << text;
  }
}

TEST(ParseSize, RejectsMalformedValuesWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"-1", "must not be negative"},
      {"1.5MiB", "whole numbers"},
      {"16k", "ambiguous unit"},
      {"16M", "ambiguous unit"},
      {"12XB", "unknown unit \"XB\""},
      {"KiB", "expected a number"},
      {"99999999999999999999", "too large"},
      {"99999999999TiB", "too large"},
  };
  for (const auto& [text, want] : cases) {
    std::string error;
    EXPECT_FALSE(parse_size(text, &error)) << text;
    EXPECT_NE(error.find(want), std::string::npos) << text << " -> " << error;
  }
}

TEST(SplitHostPort, SplitsNamesIpv4AndBracketedIpv6) {
  struct Case {
    std::string in;
    bool ok;
    std::string host, port;
  };
  const std::vector<Case> cases = {
      {"localhost:80", true, "localhost", "80"},
      {"0.0.0.0:0", true, "0.0.0.0", "0"},
      {"[::1]:8443", true, "::1", "8443"},
      {"[fe80::1%eth0]:1", true, "fe80::1%eth0", "1"},
      {"host", false, "", ""},
      {":80", false, "", ""},
      {"host:", false, "", ""},
      {"::1:80", false, "", ""},
      {"[::1]80", false, "", ""},
      {"[::1]", false, "", ""},
      {"[::1:80", false, "", ""},
      {"host:8x", false, "", ""},
      {"", false, "", ""},
  };
  for (const auto& c : cases) {
    std::string host = "unchanged", port = "unchanged";
    EXPECT_EQ(split_host_port(c.in, host, port), c.ok) << c.in;
    if (c.ok) {
      EXPECT_EQ(host, c.host) << c.in;
      EXPECT_EQ(port, c.port) << c.in;
    } else {
      EXPECT_EQ(host, "unchanged") << c.in;
    }
  }
}

TEST(TunnelSpec, ParsesEveryUrlForm) {
  struct Case {
    std::string spec;
    std::string name, token, url, host, port;
    bool tcp;
  };
  const std::vector<Case> cases = {
      {"api@s3cret=http://127.0.0.1:4000", "api", "s3cret", "http://127.0.0.1:4000", "127.0.0.1",
       "4000", false},
      {"app=3000", "app", "", "http://127.0.0.1:3000", "127.0.0.1", "3000", false},
      {"db=tcp://10.0.0.5:5432", "db", "", "tcp://10.0.0.5:5432", "10.0.0.5", "5432", true},
      {"web=localhost:8080", "web", "", "http://localhost:8080", "localhost", "8080", false},
      {"v6=[::1]:9000", "v6", "", "http://[::1]:9000", "::1", "9000", false},
      {"site=http://backend.internal", "site", "", "http://backend.internal:80", "backend.internal",
       "80", false},
      {"slash=http://127.0.0.1:4000/", "slash", "", "http://127.0.0.1:4000", "127.0.0.1", "4000",
       false},
      {"compose=my_app:3000", "compose", "", "http://my_app:3000", "my_app", "3000", false},
      // A base64 token may end with '=': the URL starts after the last '='.
      {"b64@YWJjZA===8080", "b64", "YWJjZA==", "http://127.0.0.1:8080", "127.0.0.1", "8080", false},
      {"a-1@t@k=1", "a-1", "t@k", "http://127.0.0.1:1", "127.0.0.1", "1", false},
  };
  for (const auto& c : cases) {
    std::string error;
    const auto t = parse_tunnel_spec(c.spec, &error);
    ASSERT_TRUE(t) << c.spec << ": " << error;
    EXPECT_EQ(t->name, c.name) << c.spec;
    EXPECT_EQ(t->token.reveal(), c.token) << c.spec;
    EXPECT_EQ(t->url, c.url) << c.spec;
    EXPECT_EQ(t->host, c.host) << c.spec;
    EXPECT_EQ(t->port, c.port) << c.spec;
    EXPECT_EQ(t->tcp, c.tcp) << c.spec;
  }
}

TEST(TunnelSpec, TcpTunnelMayAskForAPublicPort) {
  std::string error;
  auto t = parse_tunnel_spec("db:7000=tcp://127.0.0.1:6379", &error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->name, "db");
  EXPECT_EQ(t->remote_port, 7000);
  EXPECT_TRUE(t->tcp);
  t = parse_tunnel_spec("db=tcp://127.0.0.1:6379", &error);
  ASSERT_TRUE(t) << error;
  EXPECT_EQ(t->remote_port, 0);
  for (const auto& [spec, why] : std::vector<std::pair<std::string, std::string>>{
           {"app:7000=3000", "only tcp:// tunnels have a public port"},
           {"db:0=tcp://127.0.0.1:1", "NAME:PORT"},
           {"db:x=tcp://127.0.0.1:1", "NAME:PORT"},
           {"db:70000=tcp://127.0.0.1:1", "NAME:PORT"},
       }) {
    EXPECT_FALSE(parse_tunnel_spec(spec, &error)) << spec;
    EXPECT_NE(error.find(why), std::string::npos) << spec << ": " << error;
  }
}

TEST(PortRange, ParsesRangesAndSinglePorts) {
  std::string error;
  auto r = parse_port_range("10000-10999", &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->first, 10000);
  EXPECT_EQ(r->second, 10999);
  r = parse_port_range("7000", &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->first, 7000);
  EXPECT_EQ(r->second, 7000);
  for (const char* bad : {"", "-", "0-10", "10-65536", "2000-1000", "a-b", "1-2-3", " 1-2"}) {
    EXPECT_FALSE(parse_port_range(bad, &error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(TunnelSpec, RejectsBadSpecsWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"app3000", "expected NAME=URL or NAME@TOKEN=URL"},
      {"", "expected NAME=URL"},
      {"App=3000", "upper-case"},
      {"-app=3000", "starts or ends with '-'"},
      {"app-=3000", "starts or ends with '-'"},
      {"a_b=3000", "invalid character"},
      {"a.b=3000", "invalid character"},
      {std::string(64, 'a') + "=3000", "longer than 63"},
      {"=3000", "empty"},
      {"app=", "missing URL"},
      {"app@=3000", "empty token"},
      {"app=https://127.0.0.1:443", "https:// targets are not supported yet"},
      {"app=ftp://127.0.0.1:21", "unknown scheme \"ftp\""},
      {"app=tcp://db.internal", "tcp:// targets need a port"},
      {"app=70000", "port must be 1-65535"},
      {"app=0", "port must be 1-65535"},
      {"app=http://127.0.0.1:4000/api", "without a path"},
      {"app=http://127.0.0.1:4000?x", "without a path"},
      {"app=bad host:80", "invalid host"},
      {"app=::1:80", "expected \"http://host:port\""},
      {"app=http://", "missing host"},
  };
  for (const auto& [spec, want] : cases) {
    std::string error;
    EXPECT_FALSE(parse_tunnel_spec(spec, &error)) << spec;
    EXPECT_NE(error.find(want), std::string::npos) << spec << " -> " << error;
  }
}

TEST(TunnelSpec, ErrorsNeverShowTheToken) {
  const std::vector<std::string> specs = {
      "api@s3cret",            // no '='
      "API@s3cret=3000",       // bad name
      "api@s3cret=ftp://h:1",  // bad scheme
      "api@s3cret=",           // no URL
      "api@s3 cret=3000",      // whitespace in the token
      "api@s3cret=tcp://h",    // missing port
      "api@s3cret\x01=3000",   // control character
  };
  for (const auto& spec : specs) {
    std::string error;
    EXPECT_FALSE(parse_tunnel_spec(spec, &error)) << "case " << &spec - specs.data();
    EXPECT_EQ(error.find("s3"), std::string::npos) << "case " << &spec - specs.data();
    EXPECT_NE(error.find("***"), std::string::npos) << error;
  }
}

TEST(DefaultPublicUrl, UsesDomainAndListenPort) {
  GatewayConfig cfg;
  EXPECT_EQ(default_public_url(cfg), "http://localhost:8080");
  cfg.domain = "tunnel.example.com";
  cfg.listen = "0.0.0.0:80";
  EXPECT_EQ(default_public_url(cfg), "http://tunnel.example.com");
  cfg.listen = "[::]:8000";
  EXPECT_EQ(default_public_url(cfg), "http://tunnel.example.com:8000");
  EXPECT_EQ(default_public_url("example.org", 41234), "http://example.org:41234");
}

TEST(FormatDuration, PrintsLargestUnitsFirst) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(1h + 500ms), "1h500ms");
  EXPECT_EQ(format_duration(-2s), "-2s");
  // Round trip through the parser.
  for (Duration d : {Duration(1ms), Duration(1500ms), Duration(61min), Duration(25h + 1s)}) {
    EXPECT_EQ(parse_duration(format_duration(d), nullptr), d);
  }
}

TEST(FormatSize, PrintsExactBinaryUnits) {
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(1500), "1500B");
  EXPECT_EQ(format_size(256 * 1024), "256KiB");
  EXPECT_EQ(format_size(1ull << 30), "1GiB");
  EXPECT_EQ(format_size(3ull << 20), "3MiB");
}

}  // namespace
}  // namespace proxer::config
