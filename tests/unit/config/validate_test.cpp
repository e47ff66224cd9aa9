// validate() on assembled configs: each rule, all findings at once, parsed agent fields.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "support/errors.h"

namespace proxer::config {
namespace {

using namespace std::chrono_literals;

using testing::has_error;
using testing::join;

AgentConfig valid_agent() {
  AgentConfig c;
  c.gateway = "tls://gw.example.com:8443";
  c.tunnels.push_back(*parse_tunnel_spec("app=3000", nullptr));
  return c;
}

TEST(ValidateGateway, EachRuleReportsItsKey) {
  struct Case {
    const char* what;
    std::function<void(GatewayConfig&)> edit;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"no port", [](auto& c) { c.listen = "0.0.0.0"; }, "listen: expected \"host:port\""},
      {"port range", [](auto& c) { c.agent_listen = "0.0.0.0:65536"; },
       "agent_listen: port must be 0-65535"},
      {"bad host", [](auto& c) { c.admin_listen = "bad host:1"; }, "admin_listen: invalid host"},
      {"same port", [](auto& c) { c.agent_listen = "127.0.0.1:8080"; },
       "agent_listen: uses the same port as listen (8080)"},
      {"domain case", [](auto& c) { c.domain = "Tunnel.Example.com"; }, "domain: invalid DNS name"},
      {"domain label", [](auto& c) { c.domain = "a..b"; }, "each label must have 1-63"},
      {"domain dash", [](auto& c) { c.domain = "-a.b"; }, "cannot start or end with '-'"},
      {"domain empty", [](auto& c) { c.domain = ""; }, "domain: must not be empty"},
      {"url scheme", [](auto& c) { c.public_url = "ftp://x"; }, "public_url: expected"},
      {"url path", [](auto& c) { c.public_url = "https://x.example.com/base"; },
       "public_url: must be a base URL without path"},
      {"url port", [](auto& c) { c.public_url = "http://x:0"; }, "public_url: port must be"},
      {"token", [](auto& c) { c.token = Secret("a b"); },
       "token: must not contain whitespace or control characters"},
      {"token size", [](auto& c) { c.token = Secret(std::string(5000, 'x')); },
       "token: must be at most 4096 bytes"},
      {"key only", [](auto& c) { c.tls_key = "/etc/hostname"; },
       "tls.cert: required when tls.key is set"},
      {"unreadable", [](auto& c) { c.tls_cert = c.tls_key = "/nonexistent"; },
       "tls.cert: cannot read \"/nonexistent\""},
      {"directory", [](auto& c) { c.tls_cert = c.tls_key = "/"; }, "is a directory"},
      {"tcp range", [](auto& c) { c.tcp_port_range = "9000-8000"; },
       "tcp.port_range: the first port must not be above the second"},
      {"tcp range form", [](auto& c) { c.tcp_port_range = "lots"; },
       "tcp.port_range: expected \"MIN-MAX\""},
      {"tcp bind", [](auto& c) { c.tcp_bind = "example.com"; }, "tcp.bind: expected an IP address"},
      {"tcp idle", [](auto& c) { c.tcp_idle_timeout = 0ms; }, "tcp.idle_timeout: must be greater"},
      {"zero timeout", [](auto& c) { c.request_timeout = 0ms; },
       "timeouts.request: must be greater than 0"},
      {"negative", [](auto& c) { c.header_timeout = -1s; }, "timeouts.header: must be greater"},
      {"huge", [](auto& c) { c.idle_timeout = 48h; }, "timeouts.idle: must be at most 24h"},
      {"grace", [](auto& c) { c.shutdown_grace = 0ms; }, "timeouts.shutdown_grace"},
      {"heartbeat", [](auto& c) { c.heartbeat_interval = 40s; },
       "session.heartbeat_interval: must be shorter than session.ttl (40s >= 30s)"},
      {"ttl", [](auto& c) { c.session_ttl = 0ms; }, "session.ttl: must be greater than 0"},
      {"frame small", [](auto& c) { c.max_frame = 100; },
       "session.max_frame: must be between 1KiB and 1MiB, got 100B"},
      {"frame>window", [](auto& c) { c.window = 16 * 1024; },
       "session.max_frame: must be at most session.window (64KiB > 16KiB)"},
      {"window big", [](auto& c) { c.window = 2u << 30; },
       "session.window: must be between 1KiB and 1GiB"},
      {"streams", [](auto& c) { c.max_streams_per_session = 0; },
       "session.max_streams: must be at least 1"},
      {"header bytes", [](auto& c) { c.max_header_bytes = 100; },
       "limits.max_header_bytes: must be between 1KiB and 1MiB"},
      {"connections", [](auto& c) { c.max_connections = 0; },
       "limits.max_connections: must be at least 1"},
      {"pool", [](auto& c) { c.pool_idle_timeout = 0ms; }, "pool.idle_timeout"},
      {"level", [](auto& c) { c.log_level = "warning"; }, "log.level: expected one of"},
      {"escaped slashes", [](auto& c) { c.http.escaped_slashes = "Decode"; },
       "http.escaped_slashes: expected keep, reject or decode, got \"Decode\""},
      {"underscores", [](auto& c) { c.http.headers_with_underscores = "ignore"; },
       "http.headers_with_underscores: expected allow, drop or reject"},
      {"cidr syntax",
       [](auto& c) {
         c.http.trusted_proxies = {"10.0.0.0/8", "proxy.local"};
       },
       "http.trusted_proxies: element 1: expected an IP address or network"},
      {"cidr prefix", [](auto& c) { c.http.trusted_proxies = {"10.0.0.0/33"}; },
       "http.trusted_proxies: element 0: the prefix length of \"10.0.0.0/33\" must be 0-32"},
      {"cidr v6 prefix", [](auto& c) { c.http.trusted_proxies = {"::1/"}; }, "must be 0-128"},
      {"cidr host bits", [](auto& c) { c.http.trusted_proxies = {"10.1.0.0/8"}; },
       "has address bits set beyond its prefix length"},
      {"cidr mapped", [](auto& c) { c.http.trusted_proxies = {"::ffff:10.0.0.1"}; },
       "write an IPv4 network in IPv4 form"},
      // The validator and the request path share one parser (core/cidr.h): what the request
      // path would drop is refused here, with what to write instead.
      {"cidr mapped hex", [](auto& c) { c.http.trusted_proxies = {"::ffff:a00:0/104"}; },
       "element 0: write an IPv4 network in IPv4 form (\"10.0.0.0/8\")"},
      {"cidr long prefix", [](auto& c) { c.http.trusted_proxies = {"10.0.0.0/0008"}; },
       "element 0: the prefix length of \"10.0.0.0/0008\" must be 0-32"},
      {"cidr host bits readings", [](auto& c) { c.http.trusted_proxies = {"10.1.0.0/8"}; },
       "write \"10.0.0.0/8\" for the network or \"10.1.0.0\" for the one address"},
      {"hide name", [](auto& c) { c.http.hide_response_headers = {"Bad Name"}; },
       "http.hide_response_headers: invalid header name"},
      {"hide framing", [](auto& c) { c.http.hide_response_headers = {"Content-Length"}; },
       "frames the response and cannot be hidden"},
  };
  for (const auto& c : cases) {
    GatewayConfig cfg;
    c.edit(cfg);
    const auto errors = validate(cfg);
    EXPECT_TRUE(has_error(errors, c.want)) << c.what << ": missing \"" << c.want << "\" in:\n"
                                           << join(errors);
  }
}

TEST(ValidateGateway, AcceptsEdgeValues) {
  GatewayConfig c;
  c.listen = "127.0.0.1:0";  // port 0: any free port, and never a clash
  c.agent_listen = "127.0.0.1:0";
  c.admin_listen = "[::1]:0";
  c.domain = "127.0.0.1";
  c.public_url = "https://[2001:db8::1]:8443/";
  c.max_body_bytes = 0;
  c.pool_idle_per_tunnel = 0;
  c.max_frame = 1024;
  c.window = 1024;
  c.heartbeat_interval = 29'999ms;
  c.http.trusted_proxies = {"0.0.0.0/0",
                            "10.0.0.0/8",
                            "192.0.2.7",
                            "::/0",
                            "2001:db8::/32",
                            "::1",
                            "64:ff9b::192.0.2.0/120"};
  c.http.hide_response_headers = {"Server", "x-powered-by"};
  c.http.escaped_slashes = "decode";
  c.http.headers_with_underscores = "allow";
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
  c.listen = "0.0.0.0:7000";
  c.agent_listen = "127.0.0.2:7001";
  c.admin_listen = "127.0.0.1:7002";
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
}

TEST(ValidateGateway, ReportsAllErrorsTogether) {
  GatewayConfig c;
  c.listen = "x";
  c.domain = "";
  c.request_timeout = 0ms;
  c.log_level = "loud";
  c.max_connections = 0;
  const auto errors = validate(c);
  EXPECT_EQ(errors.size(), 5u) << join(errors);
}

TEST(ValidateAgent, FillsAndRefreshesParsedFields) {
  auto c = valid_agent();
  c.tunnels.push_back(TunnelConfig{"db", "tcp://[::1]:5432", "", "", false, Secret()});
  ASSERT_TRUE(validate(c).empty()) << join(validate(c));
  EXPECT_EQ(c.gateway_scheme, "tls");
  EXPECT_EQ(c.gateway_host, "gw.example.com");
  EXPECT_EQ(c.gateway_port, "8443");
  EXPECT_EQ(tls_server_name(c), "gw.example.com");
  EXPECT_EQ(c.tunnels[1].host, "::1");
  EXPECT_EQ(c.tunnels[1].port, "5432");
  EXPECT_TRUE(c.tunnels[1].tcp);

  // A CLI override after loading: validating again recomputes everything.
  c.gateway = "tcp://[::1]:9443";
  c.tunnels[1].url = "8080";
  ASSERT_TRUE(validate(c).empty()) << join(validate(c));
  EXPECT_EQ(c.gateway_scheme, "tcp");
  EXPECT_EQ(c.gateway_host, "::1");
  EXPECT_EQ(c.gateway_port, "9443");
  EXPECT_EQ(c.tunnels[1].host, "127.0.0.1");
  EXPECT_FALSE(c.tunnels[1].tcp);

  // An invalid gateway leaves the parsed fields empty rather than stale.
  c.gateway = "tcp://nowhere";
  EXPECT_FALSE(validate(c).empty());
  EXPECT_TRUE(c.gateway_host.empty());
}

// A gateway (and transport) that validates, and the parsed fields it must give.
struct GatewayCase {
  std::string gateway, transport, scheme, host, port, path;
};

void expect_parsed(const std::vector<GatewayCase>& cases) {
  for (const auto& k : cases) {
    auto c = valid_agent();
    c.gateway = k.gateway;
    c.transport = k.transport;
    const auto errors = validate(c);
    ASSERT_TRUE(errors.empty()) << k.gateway << ": " << join(errors);
    EXPECT_EQ(c.gateway_scheme, k.scheme) << k.gateway;
    EXPECT_EQ(c.gateway_host, k.host) << k.gateway;
    EXPECT_EQ(c.gateway_port, k.port) << k.gateway;
    EXPECT_EQ(c.gateway_path, k.path) << k.gateway;
  }
}

TEST(ValidateAgent, LongPollGatewayUrls) {
  expect_parsed({
      {"http://gw.example.com:8080", "", "http", "gw.example.com", "8080", ""},
      {"http://gw.example.com/", "", "http", "gw.example.com", "80", ""},
      {"https://gw.example.com/base/", "", "https", "gw.example.com", "443", "/base"},
  });
}

TEST(ValidateAgent, AGatewayWithoutSchemeIsAutoOrTheTransportKey) {
  expect_parsed({
      {"gw.example.com", "", "auto", "gw.example.com", "443", ""},
      {"gw.example.com:8443", "", "auto", "gw.example.com", "8443", ""},
      {"[::1]:8443", "auto", "auto", "::1", "8443", ""},
      {"gw.example.com:8443", "tls", "tls", "gw.example.com", "8443", ""},
      {"gw.example.com", "wss", "wss", "gw.example.com", "443", "/ws"},
      {"gw.example.com", "http", "http", "gw.example.com", "80", ""},
      {"tls://gw.example.com:8443", "tls", "tls", "gw.example.com", "8443", ""},
  });
  // auto starts with TLS: the TLS settings apply.
  auto c = valid_agent();
  c.gateway = "gw.example.com";
  c.server_name = "other.example.com";
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
  // A scheme-less tcp transport needs the port like tcp:// does.
  c.server_name.clear();
  c.transport = "tcp";
  EXPECT_TRUE(has_error(validate(c), "gateway: expected \"host:port\"")) << join(validate(c));
}

TEST(ValidateAgent, WebSocketGatewayUrls) {
  expect_parsed({
      {"ws://gw.example.com:8080/ws", "", "ws", "gw.example.com", "8080", "/ws"},
      {"ws://gw.example.com", "", "ws", "gw.example.com", "80", "/ws"},
      {"wss://gw.example.com/tunnel/agent", "", "wss", "gw.example.com", "443", "/tunnel/agent"},
      {"wss://[::1]:8443", "", "wss", "::1", "8443", "/ws"},
      {"wss://[::1]", "", "wss", "::1", "443", "/ws"},
  });
  auto c = valid_agent();
  c.gateway = "ws://gw.example.com/ws?x=1";
  EXPECT_TRUE(has_error(validate(c), "must not contain a query")) << join(validate(c));
  c.gateway = "ws://gw.example.com:8080";
  c.ca_file = "/etc/hostname";
  EXPECT_TRUE(has_error(validate(c), "ca: only used with a tls://, wss:// or https:// gateway"));
}

TEST(ValidateAgent, EachRuleReportsItsKey) {
  struct Case {
    const char* what;
    std::function<void(AgentConfig&)> edit;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"auto with a path", [](auto& c) { c.gateway = "gw.example.com:8443/x"; },
       "gateway: expected \"host[:port]\" (or a URL naming the carrier)"},
      {"transport", [](auto& c) { c.transport = "quic"; },
       "transport: expected auto, tcp, tls, ws, wss, http or https, got \"quic\""},
      {"transport vs scheme",
       [](auto& c) {
         c.gateway = "tls://h:1";
         c.transport = "ws";
       },
       "transport: contradicts the scheme of gateway \"tls://h:1\""},
      {"auto with a scheme",
       [](auto& c) {
         c.gateway = "tls://h:1";
         c.transport = "auto";
       },
       "transport: auto picks the carrier itself"},
      {"climb", [](auto& c) { c.climb_interval = 0ms; }, "reconnect.climb: must be greater than 0"},
      {"drain", [](auto& c) { c.drain_timeout = 0ms; }, "timeouts.drain: must be greater than 0"},
      {"scheme", [](auto& c) { c.gateway = "udp://h:1"; }, "gateway: unknown scheme \"udp\""},
      {"port 0", [](auto& c) { c.gateway = "tcp://h:0"; }, "gateway: port must be 1-65535"},
      {"no port", [](auto& c) { c.gateway = "tls://h"; }, "gateway: expected \"host:port\""},
      {"path", [](auto& c) { c.gateway = "tls://h:1/x"; }, "without a path"},
      {"ca on tcp",
       [](auto& c) {
         c.gateway = "tcp://h:1";
         c.ca_file = "/etc/hostname";
       },
       "ca: only used with a tls://, wss:// or https:// gateway"},
      {"insecure on tcp",
       [](auto& c) {
         c.gateway = "tcp://h:1";
         c.insecure = true;
       },
       "insecure: only used with a tls://, wss:// or https:// gateway"},
      {"sni on tcp",
       [](auto& c) {
         c.gateway = "tcp://h:1";
         c.server_name = "x";
       },
       "server_name: only used with a tls://, wss:// or https:// gateway"},
      {"insecure+ca",
       [](auto& c) {
         c.insecure = true;
         c.ca_file = "/etc/hostname";
       },
       "insecure: contradicts ca"},
      {"ca missing", [](auto& c) { c.ca_file = "/nonexistent/ca.pem"; },
       "ca: cannot read \"/nonexistent/ca.pem\""},
      {"sni", [](auto& c) { c.server_name = "bad name"; }, "server_name: invalid host name"},
      {"token", [](auto& c) { c.token = Secret("x\ty"); }, "token: must not contain"},
      {"id", [](auto& c) { c.id = "my agent"; }, "id: invalid agent id"},
      {"id long", [](auto& c) { c.id = std::string(65, 'a'); }, "id: invalid agent id"},
      {"dup", [](auto& c) { c.tunnels.push_back(c.tunnels[0]); },
       "tunnels[1].name: duplicate tunnel name \"app\""},
      {"name", [](auto& c) { c.tunnels[0].name = "a.b"; }, "tunnels[0].name: invalid tunnel name"},
      {"url", [](auto& c) { c.tunnels[0].url = ""; }, "tunnels[0].url: required"},
      {"url form", [](auto& c) { c.tunnels[0].url = "http://h:1/x"; },
       "tunnels[0].url: a target is scheme://host:port without a path"},
      {"tunnel token", [](auto& c) { c.tunnels[0].token = Secret(" "); },
       "tunnels[0].token: must not contain"},
      {"port on http", [](auto& c) { c.tunnels[0].remote_port = 7000; },
       "tunnels[0].remote_port: only TCP tunnels (tcp://) have a public port"},
      {"proxy version",
       [](auto& c) {
         c.tunnels[0].url = "tcp://127.0.0.1:1";
         c.tunnels[0].proxy_protocol = "v3";
       },
       "tunnels[0].proxy_protocol: expected \"v1\" or \"v2\""},
      {"proxy on http", [](auto& c) { c.tunnels[0].proxy_protocol = "v1"; },
       "tunnels[0].proxy_protocol: only TCP tunnels"},
      {"token on tcp",
       [](auto& c) {
         c.tunnels[0].url = "tcp://127.0.0.1:1";
         c.tunnels[0].token = Secret("s3cret");
       },
       "tunnels[0].token: per-tunnel tokens protect HTTP tunnels only"},
      {"connect", [](auto& c) { c.connect_timeout = 0ms; }, "timeouts.connect: must be greater"},
      {"local", [](auto& c) { c.local_connect_timeout = 0ms; }, "timeouts.local_connect"},
      {"backoff", [](auto& c) { c.reconnect_min = 1min; },
       "reconnect.min: must be at most reconnect.max (1m > 30s)"},
      {"backoff max", [](auto& c) { c.reconnect_max = 0ms; }, "reconnect.max: must be greater"},
      {"level", [](auto& c) { c.log_level = ""; }, "log.level"},
  };
  for (const auto& c : cases) {
    auto cfg = valid_agent();
    c.edit(cfg);
    const auto errors = validate(cfg);
    EXPECT_TRUE(has_error(errors, c.want)) << c.what << ": missing \"" << c.want << "\" in:\n"
                                           << join(errors);
  }
}

TEST(ValidateAgent, ProxyUrls) {
  struct Case {
    std::string url, host, port, creds;
  };
  for (const auto& k : std::vector<Case>{
           {"http://proxy.corp:3128", "proxy.corp", "3128", ""},
           {"http://proxy.corp", "proxy.corp", "80", ""},
           {"http://proxy.corp:8080/", "proxy.corp", "8080", ""},
           {"http://alice:s3cr%40t@10.0.0.1:3128", "10.0.0.1", "3128", "alice:s3cr@t"},
           {"http://[::1]:3128", "::1", "3128", ""},
       }) {
    auto c = valid_agent();
    c.proxy = Secret(k.url);
    const auto errors = validate(c);
    ASSERT_TRUE(errors.empty()) << k.url << ": " << join(errors);
    EXPECT_EQ(c.proxy_host, k.host) << k.url;
    EXPECT_EQ(c.proxy_port, k.port) << k.url;
    EXPECT_EQ(c.proxy_credentials.reveal(), k.creds) << k.url;
  }
  for (const std::string bad :
       {"https://proxy:3128", "socks5://proxy:1080", "proxy:3128", "http://proxy:0",
        "http://proxy:3128/path", "ftp://bob:hunter2@proxy:21"}) {
    auto c = valid_agent();
    c.proxy = Secret(bad);
    const auto errors = validate(c);
    EXPECT_TRUE(has_error(errors, "proxy: expected")) << bad << ": " << join(errors);
    EXPECT_FALSE(has_error(errors, "hunter2")) << join(errors);  // never the password
    EXPECT_TRUE(c.proxy_host.empty());
  }
}

TEST(ValidateAgent, AcceptsTlsOptions) {
  auto c = valid_agent();
  c.insecure = true;
  c.server_name = "tunnel.example.com";
  c.id = "host-01.lab_a";
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
  EXPECT_EQ(tls_server_name(c), "tunnel.example.com");
}

TEST(ValidateAgent, NeverPrintsTokens) {
  auto c = valid_agent();
  c.token = Secret("s3cret value");
  c.tunnels[0].token = Secret("s3cret\x01");
  const auto errors = validate(c);
  EXPECT_EQ(errors.size(), 2u) << errors.size();
  EXPECT_EQ(join(errors).find("s3cret"), std::string::npos);
}

}  // namespace
}  // namespace proxer::config
