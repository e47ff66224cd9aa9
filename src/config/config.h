#pragma once
// Configuration of the gateway and the agent: plain structs with their defaults, TOML loading,
// validation and the value parsers shared with the command line.
//
// Contract:
//  - Loading is strict: unknown keys, wrong types and invalid values are all errors, and *every*
//    error is reported at once, each starting with its key path (`timeouts.request: ...`).
//  - A config that loaded (or validated) without errors is treated as immutable: callers apply
//    CLI overrides to a copy, run validate() on the result, and then share it as const.
//  - Error messages never contain a secret (tokens), not even when the token itself is malformed.
//  - Durations are std::chrono values; TOML and CLI spell them as strings with a unit ("30s").
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret.h"

namespace proxer::config {

using Duration = std::chrono::milliseconds;

// Header changes of a route, applied in this order: remove, set (replaces), add (appends).
struct HeaderOps {
  std::vector<std::string> remove;                       // (remove) names
  std::vector<std::pair<std::string, std::string>> set;  // (set) name -> value
  std::vector<std::pair<std::string, std::string>> add;  // (add) name -> value
  bool empty() const { return remove.empty() && set.empty() && add.empty(); }
  bool operator==(const HeaderOps&) const = default;
};

// ([routes.retry]) When and how a failed attempt is tried again. Only when safe: the request
// never reached an upstream (connect failure), or its method is idempotent and its body was
// not streamed beyond what can be replayed.
struct RetryConfig {
  std::uint32_t retries = 1;  // (retries) extra attempts after the first; 0 = none
  // (on) "connect_failure" | "reset" | "timeout" | "5xx" | an HTTP status ("503")
  std::vector<std::string> on{"connect_failure"};
  Duration per_try_timeout{
      0};                     // (per_try_timeout) response header deadline per attempt; 0 = route's
  Duration backoff_base{25};  // (backoff_base) first backoff; doubles per retry, full jitter
  Duration backoff_max{250};  // (backoff_max)
  // The retry budget is the cluster's: BreakerConfig::retry_budget_percent / retry_budget_min.
  bool operator==(const RetryConfig&) const = default;
};

// ([[routes]]) A configured route. Routes are tried in file order before the built-in tunnel
// routing (Host subdomain, /t/{name}/); the first whose every condition holds wins.
struct RouteConfig {
  std::string name;         // (name) for logs and stats; default "route-{index}"
  std::string host;         // (host) "api.example.com", "*.example.com" or "" (any); no port
  std::string path_prefix;  // (path_prefix) "/" when empty; must start with '/'
  std::vector<std::string> methods;                          // (methods) [] = any
  std::vector<std::pair<std::string, std::string>> headers;  // (headers) name -> exact value
  std::string cluster;                                       // (cluster) required
  bool strip_prefix = false;         // (strip_prefix) remove path_prefix before forwarding
  std::string prefix_rewrite;        // (prefix_rewrite) replaces path_prefix (implies strip)
  HeaderOps request_headers;         // ([routes.request_headers])
  HeaderOps response_headers;        // ([routes.response_headers])
  Duration timeout{0};               // (timeout) response header deadline; 0 = timeouts.request
  std::uint64_t max_body_bytes = 0;  // (max_body_bytes) 0 = limits.max_body_bytes
  RetryConfig retry;                 // ([routes.retry])
  bool operator==(const RouteConfig&) const = default;
};

// One upstream of a cluster: a direct URL or a tunnel.
struct EndpointConfig {
  std::string url;           // (url) "http://host:port", "https://host[:port]" or "tunnel:NAME"
  std::uint32_t weight = 1;  // (weight) 1-1000
  // Filled by parse_endpoint():
  bool tunnel = false;
  bool tls = false;
  std::string host, port, tunnel_name;
  bool operator==(const EndpointConfig&) const = default;
};

// ([clusters.NAME.health_check]) Active health checking; enabled when `path` is set.
struct HealthCheckConfig {
  std::string path;            // (path) e.g. "/healthz"; "" = no active checks
  std::string method = "GET";  // (method) GET or HEAD
  std::string host;            // (host) Host header; "" = the endpoint's host (tunnel: its name)
  Duration interval{5'000};    // (interval) between checks of one endpoint
  Duration timeout{2'000};     // (timeout) a check without a response head by then fails
  // (expected_status) accepted statuses: "200", "200-399"; default 200-399
  std::vector<std::pair<unsigned, unsigned>> expected_status{{200, 399}};
  std::uint32_t healthy_threshold = 2;  // (healthy_threshold) passes in a row to become healthy
  std::uint32_t unhealthy_threshold =
      3;  // (unhealthy_threshold) failures in a row to become unhealthy
  bool enabled() const { return !path.empty(); }
  bool operator==(const HealthCheckConfig&) const = default;
};

// ([clusters.NAME.outlier]) Passive outlier ejection from the responses of real traffic.
struct OutlierConfig {
  std::uint32_t consecutive_5xx = 5;               // (consecutive_5xx) 0 = off
  std::uint32_t consecutive_connect_failures = 3;  // (consecutive_connect_failures) 0 = off
  Duration base_ejection_time{30'000};  // (base_ejection_time) times the endpoint's ejection count
  Duration max_ejection_time{300'000};  // (max_ejection_time) cap
  std::uint32_t max_ejected_percent = 50;  // (max_ejected_percent) never eject more of the cluster
  bool operator==(const OutlierConfig&) const = default;
};

// ([clusters.NAME.circuit_breaker]) Limits per cluster; beyond them requests get 503 at once.
// The retry budget (Envoy's circuit_breakers.retry_budget) limits retries in flight to a share
// of the cluster's requests in flight; a retry beyond it is not made. It is shared by every
// route of the cluster, as the counters it compares are.
struct BreakerConfig {
  std::uint32_t max_connections = 1024;  // (max_connections) upstream connections, busy + idle
  std::uint32_t max_pending = 1024;      // (max_pending) requests waiting for a connection
  std::uint32_t max_requests = 1024;     // (max_requests) requests in flight
  std::uint32_t max_retries = 3;         // (max_retries) retries in flight
  // (retry_budget_percent) retries in flight <= this % of the requests in flight...
  std::uint32_t retry_budget_percent = 20;
  std::uint32_t retry_budget_min = 3;  // (retry_budget_min) ...but this many are always allowed
  bool operator==(const BreakerConfig&) const = default;
};

// ([clusters.NAME.discovery]) Where the endpoints come from when they are not listed.
struct DiscoveryConfig {
  std::string type;          // (type) "" (static `endpoints`) | "dns" | "etcd" | "file"
  std::string name;          // (name) dns: the name to resolve
  std::uint16_t port = 0;    // (port) dns a/aaaa: the targets' port
  std::string record = "a";  // (record) dns: "a" | "aaaa" | "a+aaaa" | "srv"
  std::string nameserver;    // (nameserver) dns: "ip[:port]"; "" = /etc/resolv.conf
  std::string endpoint = "http://127.0.0.1:2379";  // (endpoint) etcd
  std::string prefix;                              // (prefix) etcd: key prefix to watch
  std::string path;                                // (path) file: the endpoints file
  std::string scheme = "http";  // (scheme) how discovered targets are reached: http | https
  bool enabled() const { return !type.empty(); }
  bool operator==(const DiscoveryConfig&) const = default;
};

// ([clusters.NAME]) A set of endpoints and how to choose among them.
struct ClusterConfig {
  std::string name;                       // the table's key
  std::vector<EndpointConfig> endpoints;  // ([[clusters.NAME.endpoints]]) at least one
  // (lb) round_robin | weighted | least_request | random | ip_hash | ring_hash
  std::string lb = "round_robin";
  // (hash_key) ip_hash/ring_hash key: "client_ip", "header:NAME" or "cookie:NAME"
  std::string hash_key = "client_ip";
  // Direct endpoints: connection pool and upstream TLS.
  Duration connect_timeout{5'000};        // (connect_timeout) TCP connect
  Duration tls_handshake_timeout{5'000};  // (tls_handshake_timeout)
  std::uint32_t max_idle = 64;            // (max_idle) idle keep-alive connections per endpoint
  Duration idle_timeout{60'000};          // (idle_timeout) an idle pooled connection is closed
  std::string ca_file;                    // (ca) CA bundle for https endpoints; "" = system store
  bool insecure = false;                  // (insecure) skip verification (explicit only)
  std::string server_name;                // (server_name) SNI + verified name; "" = endpoint host
  HealthCheckConfig health_check;         // ([clusters.NAME.health_check])
  OutlierConfig outlier;                  // ([clusters.NAME.outlier])
  BreakerConfig circuit_breaker;          // ([clusters.NAME.circuit_breaker])
  DiscoveryConfig discovery;              // ([clusters.NAME.discovery])
  bool operator==(const ClusterConfig&) const = default;
};

// ([http]) Request sanitising on the public listener, for every request (configured routes and
// tunnel routing alike). See docs/SECURITY.md.
struct HttpConfig {
  bool normalize_path = true;  // (normalize_path) dot segments, escapes; ".." above / = 400
  bool merge_slashes = false;  // (merge_slashes) "//" -> "/"
  std::string escaped_slashes = "keep";  // (escaped_slashes) keep | reject | decode (%2F, %5C)
  std::string headers_with_underscores = "drop";  // (headers_with_underscores) allow|drop|reject
  // (trusted_proxies) networks of proxies in front: their X-Forwarded-* are kept, others' replaced
  std::vector<std::string> trusted_proxies;
  std::vector<std::string> hide_response_headers;  // (hide_response_headers) names removed
  bool operator==(const HttpConfig&) const = default;
};

struct GatewayConfig {
  std::string listen = "0.0.0.0:8080";          // public HTTP listener  (TOML: listen)
  std::string agent_listen = "0.0.0.0:8443";    // agent listener        (agent_listen)
  std::string admin_listen = "127.0.0.1:9000";  // admin API/dashboard   (admin_listen)
  std::string domain = "localhost";             // tunnels at {name}.{domain} (domain)
  std::string public_url;                       // (public_url) base URL printed to agents, e.g.
                           // "https://tunnel.example.com"; empty = default_public_url()
  Secret token;  // (token) agent token; empty = agents need no token (warn at start)
  std::string tls_cert, tls_key;        // ([tls] cert, key) agent listener TLS; both or neither
  Duration request_timeout{30'000};     // ([timeouts] request) upstream response header -> 504
  Duration header_timeout{10'000};      // ([timeouts] header) full client request head -> 408
  Duration idle_timeout{60'000};        // ([timeouts] idle) keep-alive idle client connection
  Duration shutdown_grace{10'000};      // ([timeouts] shutdown_grace) drain deadline on SIGTERM
  Duration forward_timeout{5'000};      // ([timeouts] forward) POST /forward of the admin API
  Duration heartbeat_interval{10'000};  // ([session] heartbeat_interval) told to agents
  Duration session_ttl{30'000};  // ([session] ttl) session dropped after this long without a frame
  std::uint32_t window = 256 * 1024;    // ([session] window) per-stream flow-control window, bytes
  std::uint32_t max_frame = 64 * 1024;  // ([session] max_frame) max DATA payload, 1 KiB..1 MiB
  std::uint32_t max_streams_per_session = 16384;  // ([session] max_streams)
  std::size_t max_header_bytes = 16 * 1024;       // ([limits] max_header_bytes) -> 431
  std::uint64_t max_body_bytes = 1ull << 30;      // ([limits] max_body_bytes) -> 413; 0 = unlimited
  std::size_t max_connections = 20000;            // ([limits] max_connections) public connections
  std::size_t pool_idle_per_tunnel = 128;  // ([pool] idle_per_tunnel) idle streams kept per tunnel
  Duration pool_idle_timeout{60'000};      // ([pool] idle_timeout)
  std::string log_level = "info";          // ([log] level) trace|debug|info|warn|error|off
  bool log_json = false;                   // ([log] format) "text"|"json"
  // ([tcp] port_range) public ports TCP tunnels may get, "MIN-MAX"; "" = no TCP tunnels
  std::string tcp_port_range = "10000-10999";
  std::string
      tcp_bind;  // ([tcp] bind) IP address TCP tunnel ports listen on; "" = host of `listen`
  Duration tcp_idle_timeout{
      3'600'000};  // ([tcp] idle_timeout) close a TCP tunnel connection idle this long
  // ([reload] watch) re-read the --config file when it changes (SIGHUP always reloads)
  bool reload_watch = true;
  HttpConfig http;                      // ([http])
  std::vector<RouteConfig> routes;      // ([[routes]]) in file order
  std::vector<ClusterConfig> clusters;  // ([clusters.NAME]) sorted by name
  bool operator==(const GatewayConfig&) const = default;
};

struct TunnelConfig {
  std::string name;               // DNS label: 1-63 of [a-z0-9-], no leading/trailing '-'
  std::string url;                // "http://host:port" or "tcp://host:port" (local target)
  std::string host, port;         // parsed from url (host without IPv6 brackets)
  bool tcp = false;               // scheme tcp://
  Secret token;                   // per-tunnel token, empty = none
  std::uint16_t remote_port = 0;  // TCP: public port asked of the gateway; 0 = it picks
  std::string proxy_protocol;     // TCP: "" | "v1" | "v2": PROXY header sent to the local target
  bool pool = false;  // (pool) share the name with other agents that set it too (a pool)
  // ([tunnels.health_check]) the agent checks its local target and reports verdict changes to
  // the gateway; absent = no checks. An empty path is a connect check (the only kind for TCP
  // tunnels); a path is an HTTP request whose status must be in expected_status.
  std::optional<HealthCheckConfig> health_check;
  bool operator==(const TunnelConfig&) const = default;
};

struct AgentConfig {
  // (gateway) "host[:port]" (carrier chosen by `transport`, auto by default; port 443), or a
  // URL naming the carrier: tcp:// tls:// ws:// wss:// http:// https:// (long-poll).
  std::string gateway;
  // (transport) "auto" | "tcp" | "tls" | "ws" | "wss" | "http" | "https"; empty = the scheme of
  // `gateway`, or "auto" when it names none. auto tries tls, then wss, then https (long-poll) on
  // the same address and climbs back up while on a lower one.
  std::string transport;
  // Parsed by validate(). gateway_scheme is one of the transport values (never empty when
  // valid); gateway_path: the WebSocket path of ws:// and wss:// ("/ws" if none), the long-poll
  // prefix of http:// and https://.
  std::string gateway_scheme, gateway_host, gateway_port, gateway_path;
  Secret token;    // (token)
  std::string id;  // (id) agent id; empty = the CLI derives "<hostname>-<hash of tunnel names>"
  std::string ca_file;      // (ca) CA bundle to verify the gateway; empty = system store
  bool insecure = false;    // (insecure) skip TLS verification (explicit only)
  std::string server_name;  // (server_name) TLS SNI/verification name; empty = gateway_host
  // (proxy) HTTP proxy to leave through with CONNECT: "http://[user:password@]host[:port]";
  // empty = none. Parsed by validate() into proxy_host/proxy_port/proxy_credentials.
  Secret proxy;
  std::string proxy_host, proxy_port;
  Secret proxy_credentials;               // "user:password" (percent-decoded), empty = none
  std::vector<TunnelConfig> tunnels;      // ([[tunnels]] name, url, token)
  Duration connect_timeout{5'000};        // ([timeouts] connect) dial the gateway incl. TLS + auth
  Duration local_connect_timeout{5'000};  // ([timeouts] local_connect) dial a local target
  Duration reconnect_min{500};            // ([reconnect] min)
  Duration reconnect_max{30'000};         // ([reconnect] max)
  Duration climb_interval{60'000};        // ([reconnect] climb) auto: retry higher carriers
  Duration drain_timeout{30'000};         // ([timeouts] drain) a session being left: streams end
  std::string log_level = "info";         // ([log] level)
  bool log_json = false;                  // ([log] format)
};

// Result of loading a file: `value` is set exactly when `errors` is empty.
template <typename T>
struct Loaded {
  std::optional<T> value;
  std::vector<std::string> errors;
};

// Parse TOML text, then validate. Errors read "SOURCE:LINE:COL: key.path: message" when the key
// is in the text, "SOURCE: key.path: message" otherwise. Load checks every value that is present
// but not completeness (an agent file may leave `gateway` or the tunnels to the command line):
// run validate() on the assembled config for that.
Loaded<GatewayConfig> load_gateway_toml(std::string_view text, std::string_view source_name);
Loaded<GatewayConfig> load_gateway_file(const std::string& path);  // error if unreadable
Loaded<AgentConfig> load_agent_toml(std::string_view text, std::string_view source_name);
Loaded<AgentConfig> load_agent_file(const std::string& path);

// Validation of a fully assembled config (after CLI overrides were applied by the caller).
// Returns all errors as "key.path: message"; empty means valid.
std::vector<std::string> validate(const GatewayConfig&);
// Also fills the parsed fields (gateway_*, tunnel host/port/tcp); safe to call again after
// changing the config, the parsed fields are recomputed each time.
std::vector<std::string> validate(AgentConfig&);

// Value parsers, usable for CLI flags too; return nullopt and set *error (if not null). The error
// names the offending value but not the key: callers prefix the key or flag.
// "250ms", "30s", "5m", "1h", "1m30s": whole numbers, units largest first, each at most once.
std::optional<Duration> parse_duration(std::string_view, std::string* error);
// "512", "16KiB", "64KB" (= 64000), "1MiB", "1GiB"; units are case-insensitive.
std::optional<std::uint64_t> parse_size(std::string_view, std::string* error);
// Tunnel spec of the CLI: "name=URL", "name@token=URL"; URL may be "http://h:p", "tcp://h:p",
// "h:p" or "p" (http, 127.0.0.1). The result's url is normalised ("app=3000" gives
// "http://127.0.0.1:3000"). The token may itself contain '=' (the URL never does).
std::optional<TunnelConfig> parse_tunnel_spec(std::string_view, std::string* error);
// Splits "h:p" or "[v6]:p" (host returned without brackets). Syntax only: host and port
// non-empty, port all digits, at most one unbracketed ':'. Range checks are validate()'s job.
bool split_host_port(std::string_view in, std::string& host, std::string& port);
// A cluster endpoint's url ("http://h:p", "https://h[:p]", "tunnel:NAME") into the parsed fields
// of `ep`; false with *error on a bad URL.
bool parse_endpoint(EndpointConfig& ep, std::string* error);
// "10000-10999" (or one port, "7000"): inclusive, 1-65535, min <= max.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(std::string_view,
                                                                        std::string* error);
// "http://{domain}:{port of listen}" with ":80" omitted. Ignores cfg.public_url (callers use
// that when it is set). With `listen` on port 0, use the overload with the bound port.
std::string default_public_url(const GatewayConfig&);
std::string default_public_url(std::string_view domain, std::uint16_t port);

// Helpers for printing values back in the units the config uses.
std::string format_duration(Duration);   // "1m30s", "250ms", "0s"
std::string format_size(std::uint64_t);  // "256KiB" when exact, else "1500B"
// TLS name to verify the gateway against: server_name, or gateway_host when empty.
const std::string& tls_server_name(const AgentConfig&);

}  // namespace proxer::config
