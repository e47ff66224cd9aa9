// Loading gateway and agent TOML: defaults, full files, strictness (unknown keys, wrong types),
// all errors at once, positions, secrets kept out of messages, and the shipped examples.
#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/errors.h"

namespace proxer::config {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A private directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("proxer_config_" + std::to_string(::getpid()) + "_" +
                                         info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// The checkout's examples/ folder.
fs::path examples_dir() {
  return fs::path(PROXER_SOURCE_DIR) / "examples";
}

using testing::has_error;
using testing::join;

#define EXPECT_HAS_ERROR(errors, needle) \
  EXPECT_TRUE(has_error(errors, needle)) << "missing \"" << (needle) << "\" in:\n" << join(errors)

TEST(GatewayConfig, DefaultsMatchTheDocumentedValues) {
  const GatewayConfig c;
  EXPECT_EQ(c.listen, "0.0.0.0:8080");
  EXPECT_EQ(c.agent_listen, "0.0.0.0:8443");
  EXPECT_EQ(c.admin_listen, "127.0.0.1:9000");
  EXPECT_EQ(c.domain, "localhost");
  EXPECT_TRUE(c.public_url.empty());
  EXPECT_TRUE(c.token.empty());
  EXPECT_TRUE(c.tls_cert.empty() && c.tls_key.empty());
  EXPECT_EQ(c.request_timeout, 30s);
  EXPECT_EQ(c.header_timeout, 10s);
  EXPECT_EQ(c.idle_timeout, 60s);
  EXPECT_EQ(c.shutdown_grace, 10s);
  EXPECT_EQ(c.heartbeat_interval, 10s);
  EXPECT_EQ(c.session_ttl, 30s);
  EXPECT_EQ(c.window, 256u * 1024);
  EXPECT_EQ(c.max_frame, 64u * 1024);
  EXPECT_EQ(c.max_streams_per_session, 16384u);
  EXPECT_EQ(c.max_header_bytes, 16u * 1024);
  EXPECT_EQ(c.max_body_bytes, 1ull << 30);
  EXPECT_EQ(c.max_connections, 20000u);
  EXPECT_EQ(c.pool_idle_per_tunnel, 128u);
  EXPECT_EQ(c.pool_idle_timeout, 60s);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_FALSE(c.log_json);
  EXPECT_TRUE(c.http.normalize_path);
  EXPECT_FALSE(c.http.merge_slashes);
  EXPECT_EQ(c.http.escaped_slashes, "keep");
  EXPECT_EQ(c.http.headers_with_underscores, "drop");
  EXPECT_TRUE(c.http.trusted_proxies.empty());
  EXPECT_TRUE(c.http.hide_response_headers.empty());
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
}

TEST(LoadGateway, ReadsTheHttpSection) {
  const auto loaded = load_gateway_toml(R"(
[http]
normalize_path = false
merge_slashes = true
escaped_slashes = "reject"
headers_with_underscores = "reject"
trusted_proxies = ["10.0.0.0/8", "::1"]
hide_response_headers = ["Server", "X-Powered-By"]
)",
                                        "gateway.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& h = loaded.value->http;
  EXPECT_FALSE(h.normalize_path);
  EXPECT_TRUE(h.merge_slashes);
  EXPECT_EQ(h.escaped_slashes, "reject");
  EXPECT_EQ(h.headers_with_underscores, "reject");
  EXPECT_EQ(h.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(h.hide_response_headers, (std::vector<std::string>{"Server", "X-Powered-By"}));
}

TEST(LoadGateway, HttpSectionErrorsCarryTheirKeyPath) {
  const auto loaded = load_gateway_toml(R"(
[http]
merge_slashes = "yes"
trusted_proxies = ["10.0.0.0/8", "nope"]
normalise_path = true
)",
                                        "gateway.toml");
  EXPECT_FALSE(loaded.value);
  EXPECT_HAS_ERROR(loaded.errors, "gateway.toml:3:17: http.merge_slashes: expected true or false");
  EXPECT_HAS_ERROR(loaded.errors, "http.trusted_proxies: element 1: expected an IP address");
  EXPECT_HAS_ERROR(loaded.errors, "normalize_path");
}

TEST(GatewayConfig, EmptyFileGivesTheDefaults) {
  const auto loaded = load_gateway_toml("", "gateway.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  EXPECT_EQ(loaded.value->listen, GatewayConfig{}.listen);
  EXPECT_EQ(loaded.value->request_timeout, GatewayConfig{}.request_timeout);
}

TEST(AgentConfig, DefaultsNeedOnlyAGatewayAndATunnel) {
  AgentConfig c;
  EXPECT_EQ(c.connect_timeout, 5s);
  EXPECT_EQ(c.local_connect_timeout, 5s);
  EXPECT_EQ(c.reconnect_min, 500ms);
  EXPECT_EQ(c.reconnect_max, 30s);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_FALSE(c.insecure);
  const auto errors = validate(c);
  EXPECT_EQ(errors.size(), 2u) << join(errors);
  EXPECT_HAS_ERROR(errors, "gateway: required");
  EXPECT_HAS_ERROR(errors, "tunnels: at least one tunnel is required");
  c.gateway = "tcp://127.0.0.1:8443";
  c.tunnels.push_back(*parse_tunnel_spec("app=3000", nullptr));
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
}

TEST(LoadGateway, ReadsAFullFile) {
  TempDir dir;
  const auto cert = dir.write("cert.pem", "cert");
  const auto key = dir.write("key.pem", "key");
  const std::string text = R"(
listen = "127.0.0.1:18080"
agent_listen = "[::1]:18443"
admin_listen = "127.0.0.1:0"
domain = "tunnel.example.com"
public_url = "https://tunnel.example.com"
token = "gw-token-123"

[tls]
cert = ")" + cert + R"("
key = ")" + key + R"("

[timeouts]
request = "45s"
header = "5s"
idle = "2m"
shutdown_grace = "1m30s"

[session]
heartbeat_interval = "5s"
ttl = "20s"
window = "1MiB"
max_frame = 32768
max_streams = 100

[limits]
max_header_bytes = "32KiB"
max_body_bytes = 0
max_connections = 500

[pool]
idle_per_tunnel = 0
idle_timeout = "30s"

[log]
level = "debug"
format = "json"
)";
  const auto loaded = load_gateway_toml(text, "gateway.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& c = *loaded.value;
  EXPECT_EQ(c.listen, "127.0.0.1:18080");
  EXPECT_EQ(c.agent_listen, "[::1]:18443");
  EXPECT_EQ(c.admin_listen, "127.0.0.1:0");
  EXPECT_EQ(c.domain, "tunnel.example.com");
  EXPECT_EQ(c.public_url, "https://tunnel.example.com");
  EXPECT_EQ(c.token.reveal(), "gw-token-123");
  EXPECT_EQ(c.tls_cert, cert);
  EXPECT_EQ(c.tls_key, key);
  EXPECT_EQ(c.request_timeout, 45s);
  EXPECT_EQ(c.header_timeout, 5s);
  EXPECT_EQ(c.idle_timeout, 2min);
  EXPECT_EQ(c.shutdown_grace, 90s);
  EXPECT_EQ(c.heartbeat_interval, 5s);
  EXPECT_EQ(c.session_ttl, 20s);
  EXPECT_EQ(c.window, 1024u * 1024);
  EXPECT_EQ(c.max_frame, 32768u);
  EXPECT_EQ(c.max_streams_per_session, 100u);
  EXPECT_EQ(c.max_header_bytes, 32u * 1024);
  EXPECT_EQ(c.max_body_bytes, 0u);
  EXPECT_EQ(c.max_connections, 500u);
  EXPECT_EQ(c.pool_idle_per_tunnel, 0u);
  EXPECT_EQ(c.pool_idle_timeout, 30s);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_TRUE(c.log_json);
}

TEST(LoadAgent, ReadsAFullFile) {
  TempDir dir;
  const auto ca = dir.write("ca.pem", "ca");
  const auto path = dir.write("agent.toml", R"(
gateway = "tls://gw.example.com:8443"
token = "agent-token"
id = "laptop-1"
ca = ")" + ca + R"("
server_name = "tunnel.example.com"

[[tunnels]]
name = "web"
url = "http://127.0.0.1:3000"

[[tunnels]]
name = "api"
url = "localhost:4000"
token = "per-tunnel"

[[tunnels]]
name = "db"
url = "tcp://10.0.0.5:5432"

[timeouts]
connect = "3s"
local_connect = "750ms"

[reconnect]
min = "250ms"
max = "1m"

[log]
level = "warn"
format = "text"
)");
  const auto loaded = load_agent_file(path);
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& c = *loaded.value;
  EXPECT_EQ(c.gateway, "tls://gw.example.com:8443");
  EXPECT_EQ(c.gateway_scheme, "tls");
  EXPECT_EQ(c.gateway_host, "gw.example.com");
  EXPECT_EQ(c.gateway_port, "8443");
  EXPECT_EQ(c.token.reveal(), "agent-token");
  EXPECT_EQ(c.id, "laptop-1");
  EXPECT_EQ(c.ca_file, ca);
  EXPECT_FALSE(c.insecure);
  EXPECT_EQ(c.server_name, "tunnel.example.com");
  EXPECT_EQ(tls_server_name(c), "tunnel.example.com");
  ASSERT_EQ(c.tunnels.size(), 3u);
  EXPECT_EQ(c.tunnels[0].name, "web");
  EXPECT_EQ(c.tunnels[0].host, "127.0.0.1");
  EXPECT_EQ(c.tunnels[0].port, "3000");
  EXPECT_FALSE(c.tunnels[0].tcp);
  EXPECT_TRUE(c.tunnels[0].token.empty());
  EXPECT_EQ(c.tunnels[1].url, "localhost:4000");
  EXPECT_EQ(c.tunnels[1].host, "localhost");
  EXPECT_EQ(c.tunnels[1].token.reveal(), "per-tunnel");
  EXPECT_TRUE(c.tunnels[2].tcp);
  EXPECT_EQ(c.tunnels[2].port, "5432");
  EXPECT_EQ(c.connect_timeout, 3s);
  EXPECT_EQ(c.local_connect_timeout, 750ms);
  EXPECT_EQ(c.reconnect_min, 250ms);
  EXPECT_EQ(c.reconnect_max, 1min);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_FALSE(c.log_json);
  // The loaded value is already a valid, complete config.
  auto copy = c;
  EXPECT_TRUE(validate(copy).empty()) << join(validate(copy));
}

TEST(LoadAgent, LeavesGatewayAndTunnelsToTheCommandLine) {
  // A file may hold only the shared settings; --gateway and --tunnel complete it.
  const auto loaded = load_agent_toml("token = \"t\"\n", "agent.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  auto c = *loaded.value;
  EXPECT_FALSE(validate(c).empty());
  c.gateway = "tcp://127.0.0.1:1";
  c.tunnels.push_back(*parse_tunnel_spec("app=3000", nullptr));
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
}

TEST(LoadGateway, RejectsAnUnknownTopLevelKeyWithASuggestion) {
  const auto loaded = load_gateway_toml("listn = \"0.0.0.0:1\"\n", "gw.toml");
  EXPECT_FALSE(loaded.value);
  ASSERT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
  EXPECT_EQ(loaded.errors[0], "gw.toml:1:1: unknown key 'listn' (did you mean 'listen'?)");
}

TEST(LoadGateway, RejectsAnUnknownKeyInASection) {
  const auto loaded = load_gateway_toml("[timeouts]\nrequst = \"5s\"\n", "gw.toml");
  EXPECT_FALSE(loaded.value);
  ASSERT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
  EXPECT_EQ(loaded.errors[0],
            "gw.toml:2:1: unknown key 'timeouts.requst' (did you mean 'request'?)");
}

TEST(LoadGateway, RejectsAnUnknownSection) {
  const auto loaded = load_gateway_toml("[timeout]\nrequest = \"5s\"\n", "gw.toml");
  ASSERT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
  EXPECT_HAS_ERROR(loaded.errors, "unknown key 'timeout' (did you mean 'timeouts'?)");
}

TEST(LoadGateway, PointsAMisplacedKeyToItsSection) {
  const auto loaded = load_gateway_toml("ttl = \"5s\"\n[log]\nrequest = \"1s\"\n", "gw.toml");
  EXPECT_HAS_ERROR(loaded.errors, "unknown key 'ttl' (did you mean 'session.ttl'?)");
  EXPECT_HAS_ERROR(loaded.errors, "unknown key 'log.request' (did you mean 'timeouts.request'?)");
}

TEST(LoadGateway, UnknownKeyWithoutACloseMatchHasNoSuggestion) {
  const auto loaded = load_gateway_toml("completely_different = 1\n", "gw.toml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0], "gw.toml:1:1: unknown key 'completely_different'");
}

TEST(LoadAgent, RejectsAnUnknownKeyInsideTunnels) {
  const auto loaded = load_agent_toml(R"(
[[tunnels]]
name = "a"
url = "3000"

[[tunnels]]
nmae = "b"
url = "3001"
)",
                                      "agent.toml");
  EXPECT_FALSE(loaded.value);
  ASSERT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
  // Not also "tunnels[1].name: empty": the typo already explains the missing name.
  EXPECT_EQ(loaded.errors[0],
            "agent.toml:7:1: unknown key 'tunnels[1].nmae' (did you mean 'name'?)");
}

TEST(LoadGateway, ATypoNextToTheRealKeyDoesNotHideItsErrors) {
  const auto loaded = load_gateway_toml("listen = \"nowhere\"\nlistn = \"x\"\n", "gw.toml");
  EXPECT_EQ(loaded.errors.size(), 2u) << join(loaded.errors);
  EXPECT_HAS_ERROR(loaded.errors, "gw.toml:1:10: listen: expected \"host:port\"");
}

TEST(LoadAgent, RejectsTunnelsThatAreNotAnArrayOfTables) {
  auto loaded = load_agent_toml("[tunnels]\nname = \"a\"\n", "agent.toml");
  EXPECT_HAS_ERROR(loaded.errors,
                   "tunnels: expected an array of tables ([[tunnels]]), got a table");
  loaded = load_agent_toml("tunnels = [\"app=3000\"]\n", "agent.toml");
  EXPECT_HAS_ERROR(loaded.errors, "tunnels[0]: expected a table ([[tunnels]]), got \"app=3000\"");
  // The broken element does not also produce "name: empty" noise.
  EXPECT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
}

TEST(LoadGateway, ReportsWrongTypesWithTheirKeyPath) {
  const auto loaded = load_gateway_toml(R"(
listen = 8080
tls = "yes"
[timeouts]
request = 30
[session]
window = true
[limits]
max_connections = "many"
[log]
format = "xml"
level = 3
)",
                                        "gw.toml");
  EXPECT_FALSE(loaded.value);
  const auto& e = loaded.errors;
  EXPECT_EQ(e.size(), 7u) << join(e);
  EXPECT_HAS_ERROR(e, "gw.toml:2:10: listen: expected a string like \"0.0.0.0:8080\", got 8080");
  EXPECT_HAS_ERROR(e, "tls: expected a table ([tls]), got \"yes\"");
  EXPECT_HAS_ERROR(e, "timeouts.request: expected a duration like \"30s\", got 30");
  EXPECT_HAS_ERROR(e, "durations are strings with a unit");
  EXPECT_HAS_ERROR(e,
                   "session.window: expected a size like \"16KiB\" or a number of bytes, got true");
  EXPECT_HAS_ERROR(e, "limits.max_connections: expected an integer, got \"many\"");
  EXPECT_HAS_ERROR(e, "log.format: expected \"text\" or \"json\", got \"xml\"");
  EXPECT_HAS_ERROR(e, "log.level: expected a string like \"info\", got 3");
}

TEST(LoadGateway, ReportsBadDurationsAndSizes) {
  const auto loaded = load_gateway_toml(R"(
[timeouts]
request = "30"
header = "1.5s"
idle = "0s"
shutdown_grace = "2d"
[session]
window = "16k"
max_frame = "2MiB"
max_streams = -1
[limits]
max_header_bytes = -5
max_body_bytes = "lots"
[pool]
idle_timeout = 1.5
)",
                                        "gw.toml");
  const auto& e = loaded.errors;
  EXPECT_HAS_ERROR(e, "timeouts.request: invalid duration \"30\": a unit is required");
  EXPECT_HAS_ERROR(e, "timeouts.header: invalid duration \"1.5s\": use whole numbers");
  EXPECT_HAS_ERROR(e, "timeouts.idle: must be greater than 0");
  EXPECT_HAS_ERROR(e, "timeouts.shutdown_grace: invalid duration \"2d\": unknown unit \"d\"");
  EXPECT_HAS_ERROR(e, "session.window: invalid size \"16k\": ambiguous unit");
  EXPECT_HAS_ERROR(e, "session.max_frame: must be between 1KiB and 1MiB, got 2MiB");
  EXPECT_HAS_ERROR(e, "session.max_streams: must not be negative, got -1");
  EXPECT_HAS_ERROR(e, "limits.max_header_bytes: must not be negative, got -5");
  EXPECT_HAS_ERROR(e, "limits.max_body_bytes: invalid size \"lots\"");
  EXPECT_HAS_ERROR(e, "pool.idle_timeout: expected a duration like \"30s\", got 1.5");
  EXPECT_EQ(e.size(), 10u) << join(e);
}

TEST(LoadGateway, RejectsSizesThatOverflowTheirField) {
  const auto loaded =
      load_gateway_toml("[session]\nwindow = \"8GiB\"\nmax_streams = 5000000000\n", "gw.toml");
  EXPECT_HAS_ERROR(loaded.errors, "session.window: must be at most 4294967295B, got 8GiB");
  EXPECT_HAS_ERROR(loaded.errors, "session.max_streams: must be at most 4294967295");
}

TEST(LoadGateway, ReportsEveryKindOfErrorAtOnceInFileOrder) {
  const auto loaded = load_gateway_toml(R"(listen = "nowhere"
domian = "x"
admin_listen = "127.0.0.1:99999"
[session]
heartbeat_interval = "1m"
ttl = 5
[log]
level = "verbose"
)",
                                        "gw.toml");
  const auto& e = loaded.errors;
  ASSERT_EQ(e.size(), 5u) << join(e);
  EXPECT_EQ(e[0].rfind("gw.toml:1:10: listen: expected \"host:port\"", 0), 0u) << e[0];
  EXPECT_EQ(e[1], "gw.toml:2:1: unknown key 'domian' (did you mean 'domain'?)");
  EXPECT_EQ(e[2], "gw.toml:3:16: admin_listen: port must be 0-65535, got \"99999\"");
  EXPECT_EQ(e[3],
            "gw.toml:6:7: session.ttl: expected a duration like \"30s\", got 5 "
            "(durations are strings with a unit: ms, s, m or h)");
  EXPECT_EQ(e[4],
            "gw.toml:8:9: log.level: expected one of trace, debug, info, warn, error, off, "
            "got \"verbose\"");
  // heartbeat_interval (1m) vs the default ttl would be misleading: ttl failed to load.
  EXPECT_FALSE(has_error(e, "shorter than session.ttl"));
}

TEST(LoadGateway, CrossKeyRulesPointAtTheFile) {
  const auto loaded = load_gateway_toml(R"(
[session]
heartbeat_interval = "30s"
ttl = "30s"
window = "32KiB"
max_frame = "64KiB"
[tls]
cert = "/nonexistent/cert.pem"
)",
                                        "gw.toml");
  const auto& e = loaded.errors;
  EXPECT_HAS_ERROR(e,
                   "gw.toml:3:22: session.heartbeat_interval: must be shorter than "
                   "session.ttl (30s >= 30s)");
  EXPECT_HAS_ERROR(e,
                   "gw.toml:6:13: session.max_frame: must be at most session.window "
                   "(64KiB > 32KiB)");
  EXPECT_HAS_ERROR(e, "tls.key: required when tls.cert is set");
  EXPECT_HAS_ERROR(e, "tls.cert: cannot read \"/nonexistent/cert.pem\": No such file");
}

TEST(LoadGateway, SyntaxErrorsCarryFileLineAndColumn) {
  const auto loaded =
      load_gateway_toml("listen = \"0.0.0.0:1\"\nrequest_timeout = 30s\n", "gw.toml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].rfind("gw.toml:2:", 0), 0u) << loaded.errors[0];
  EXPECT_FALSE(loaded.value);
}

TEST(LoadGateway, DuplicateKeysAreSyntaxErrors) {
  const auto loaded = load_gateway_toml("domain = \"a\"\ndomain = \"b\"\n", "gw.toml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].rfind("gw.toml:2:", 0), 0u) << loaded.errors[0];
}

TEST(LoadAgent, ReportsBadTunnelsByIndex) {
  const auto loaded = load_agent_toml(R"(
gateway = "tcp://127.0.0.1:8443"
[[tunnels]]
name = "ok"
url = "3000"
[[tunnels]]
name = "Bad_Name"
url = "https://127.0.0.1:4000"
[[tunnels]]
name = "ok"
url = "tcp://db"
[[tunnels]]
url = 3000
)",
                                      "agent.toml");
  const auto& e = loaded.errors;
  EXPECT_HAS_ERROR(e, "agent.toml:7:8: tunnels[1].name: invalid tunnel name \"Bad_Name\"");
  EXPECT_HAS_ERROR(e, "agent.toml:8:7: tunnels[1].url: https:// targets are not supported yet");
  EXPECT_HAS_ERROR(e, "tunnels[2].name: duplicate tunnel name \"ok\"");
  EXPECT_HAS_ERROR(e, "tunnels[2].url: tcp:// targets need a port");
  EXPECT_HAS_ERROR(e, "tunnels[3].url: expected a string like \"http://127.0.0.1:3000\", got 3000");
  EXPECT_HAS_ERROR(e, "agent.toml: tunnels[3].name: invalid tunnel name \"\": empty");
  EXPECT_EQ(e.size(), 6u) << join(e);
}

TEST(LoadAgent, ReadsPoolAndHealthCheckPerTunnel) {
  const auto loaded = load_agent_toml(R"(
gateway = "tcp://127.0.0.1:8443"
[[tunnels]]
name = "app"
url = "3000"
pool = true
[tunnels.health_check]
path = "/healthz"
interval = "2s"
timeout = "500ms"
expected_status = "200-299"
healthy_threshold = 1
unhealthy_threshold = 4
[[tunnels]]
name = "db"
url = "tcp://127.0.0.1:5432"
[tunnels.health_check]
[[tunnels]]
name = "plain"
url = "3001"
)",
                                      "agent.toml");
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  const auto& t = loaded.value->tunnels;
  ASSERT_EQ(t.size(), 3u);
  EXPECT_TRUE(t[0].pool);
  ASSERT_TRUE(t[0].health_check);
  EXPECT_EQ(t[0].health_check->path, "/healthz");
  EXPECT_EQ(t[0].health_check->interval, std::chrono::seconds(2));
  EXPECT_EQ(t[0].health_check->timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(t[0].health_check->expected_status,
            (std::vector<std::pair<unsigned, unsigned>>{{200, 299}}));
  EXPECT_EQ(t[0].health_check->healthy_threshold, 1u);
  EXPECT_EQ(t[0].health_check->unhealthy_threshold, 4u);
  EXPECT_FALSE(t[1].pool);
  ASSERT_TRUE(t[1].health_check);  // an empty table: a connect check with the defaults
  EXPECT_FALSE(t[1].health_check->enabled());
  EXPECT_EQ(t[1].health_check->interval, std::chrono::seconds(5));
  EXPECT_FALSE(t[2].health_check);
}

TEST(LoadAgent, ReportsBadTunnelHealthChecks) {
  const auto loaded = load_agent_toml(R"(
gateway = "tcp://127.0.0.1:8443"
[[tunnels]]
name = "app"
url = "3000"
pool = "yes"
[tunnels.health_check]
path = "healthz"
interval = "1s"
timeout = "2s"
unhealthy_threshold = 0
colour = "red"
[[tunnels]]
name = "db"
url = "tcp://127.0.0.1:5432"
[tunnels.health_check]
path = "/healthz"
)",
                                      "agent.toml");
  const auto& e = loaded.errors;
  EXPECT_HAS_ERROR(e, "tunnels[0].pool: expected true or false");
  EXPECT_HAS_ERROR(e, "tunnels[0].health_check.path: must start with '/'");
  EXPECT_HAS_ERROR(e, "tunnels[0].health_check.timeout: must be at most interval (1s)");
  EXPECT_HAS_ERROR(e, "tunnels[0].health_check.unhealthy_threshold:");
  EXPECT_HAS_ERROR(e, "unknown key 'tunnels[0].health_check.colour'");
  EXPECT_HAS_ERROR(e, "tunnels[1].health_check.path: a TCP tunnel's check is a connect check");
}

TEST(LoadAgent, ReportsUnknownCarriers) {
  const auto loaded = load_agent_toml("gateway = \"quic://gw.example.com:443\"\n", "agent.toml");
  ASSERT_EQ(loaded.errors.size(), 1u) << join(loaded.errors);
  EXPECT_EQ(loaded.errors[0],
            "agent.toml:1:11: gateway: unknown scheme \"quic\" (use tcp://, tls://, ws://, wss://, "
            "http:// or https://, or host:port alone for the automatic choice)");
}

TEST(Secrets, NeverAppearInErrorMessages) {
  // Each document misuses a token whose value (or part of it) would be recognisable.
  const std::vector<std::string> gateway_docs = {
      "token = 77377377\n",                // wrong type: integer
      "token = [\"s3cret\"]\n",            // wrong type: array
      "token = { value = \"s3cret\" }\n",  // wrong type: table
      "token = \"s3cret with spaces\"\n",  // invalid characters
      "token = \"s3cret\\u0001\"\n",       // control character
      "token = s3cret\n",                  // unquoted: a syntax error
      "token = 773773.5\n",                // float
      "token = 1979-05-27T07:32:00Z\n",    // date
  };
  for (const auto& doc : gateway_docs) {
    const auto loaded = load_gateway_toml(doc, "gw.toml");
    EXPECT_FALSE(loaded.value) << doc;
    const auto all = join(loaded.errors);
    EXPECT_EQ(all.find("s3cret"), std::string::npos) << all;
    EXPECT_EQ(all.find("773"), std::string::npos) << all;
    EXPECT_EQ(all.find("1979"), std::string::npos) << all;
  }
  const std::vector<std::string> agent_docs = {
      "token = 77377377\n",
      "token = \"s3cret \"\n",
      "[[tunnels]]\nname = \"a\"\nurl = \"1\"\ntoken = 77377377\n",
      "[[tunnels]]\nname = \"a\"\nurl = \"1\"\ntoken = \"s3cret\\n\"\n",
  };
  for (const auto& doc : agent_docs) {
    const auto loaded = load_agent_toml(doc, "agent.toml");
    EXPECT_FALSE(loaded.value) << doc;
    const auto all = join(loaded.errors);
    EXPECT_EQ(all.find("s3cret"), std::string::npos) << all;
    EXPECT_EQ(all.find("773"), std::string::npos) << all;
  }
  // The type error still says what was wrong.
  const auto loaded = load_gateway_toml("token = 77377377\n", "gw.toml");
  EXPECT_HAS_ERROR(loaded.errors, "gw.toml:1:9: token: expected a string, got an integer");
}

TEST(LoadFile, ReportsAnUnreadableFile) {
  TempDir dir;
  auto loaded = load_gateway_file(dir.path() + "/missing.toml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_HAS_ERROR(loaded.errors, "missing.toml: cannot read config file: No such file");
  loaded = load_gateway_file(dir.path());
  EXPECT_HAS_ERROR(loaded.errors, "cannot read config file: is a directory");
  const auto agent = load_agent_file(dir.path() + "/missing.toml");
  EXPECT_FALSE(agent.value);
  EXPECT_EQ(agent.errors.size(), 1u);
}

TEST(LoadFile, ErrorsNameTheFile) {
  TempDir dir;
  const auto path = dir.write("gw.toml", "listen = \"x\"\n");
  const auto loaded = load_gateway_file(path);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].rfind(path + ":1:10: listen:", 0), 0u) << loaded.errors[0];
}

TEST(Examples, GatewayExampleLoads) {
  const auto path = (examples_dir() / "gateway.toml").string();
  const auto loaded = load_gateway_file(path);
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  EXPECT_TRUE(validate(*loaded.value).empty());
  EXPECT_FALSE(loaded.value->token.empty());
}

TEST(Examples, AgentExampleLoadsAndIsComplete) {
  const auto path = (examples_dir() / "agent.toml").string();
  const auto loaded = load_agent_file(path);
  ASSERT_TRUE(loaded.value) << join(loaded.errors);
  auto c = *loaded.value;
  EXPECT_TRUE(validate(c).empty()) << join(validate(c));
  EXPECT_FALSE(c.tunnels.empty());
}

}  // namespace
}  // namespace proxer::config
