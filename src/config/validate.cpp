// Validation of assembled configs: every rule runs and every finding is kept, so one run shows the
// user everything to fix.
#include <strings.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "config/config.h"
#include "config/detail.h"
#include "core/cidr.h"

namespace proxer::config::detail {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMinFrame = kKiB;
constexpr std::uint64_t kMaxFrame = kKiB * kKiB;  // proto's payload ceiling
constexpr std::uint64_t kMaxWindow = kKiB * kKiB * kKiB;
constexpr std::uint64_t kMinHeaderBytes = kKiB;
constexpr std::uint64_t kMaxHeaderBytes = kKiB * kKiB;
// Far beyond any sensible timeout, and keeps deadline arithmetic (now + d in ns) from overflowing.
constexpr Duration kMaxDuration = std::chrono::hours(24);
constexpr std::size_t kMaxAgentId = 64;

class Checker {
 public:
  void add(std::string path, std::string message, std::string related = {}) {
    issues_.push_back({std::move(path), std::move(message), std::move(related)});
  }

  // Address "host:port". Listeners may use port 0 (any free port).
  std::optional<std::pair<std::string, std::uint16_t>> address(const std::string& path,
                                                               const std::string& value,
                                                               bool listener) {
    std::string host, port;
    if (!split_host_port(value, host, port)) {
      add(path,
          "expected \"host:port\" (e.g. \"0.0.0.0:8080\", \"[::1]:8080\"), got " + quote(value));
      return std::nullopt;
    }
    bool ok = true;
    if (!valid_host(host)) {
      add(path, "invalid host " + quote(host) + " in " + quote(value));
      ok = false;
    }
    const auto number = parse_port(port, listener);
    if (!number) {
      add(path, std::string("port must be ") + (listener ? "0-65535" : "1-65535") + ", got " +
                    quote(port));
      ok = false;
    }
    if (!ok) return std::nullopt;
    return std::make_pair(host, *number);
  }

  void duration(const std::string& path, Duration d) {
    if (d.count() <= 0) {
      add(path, "must be greater than 0, got " + format_duration(d));
    } else if (d > kMaxDuration) {
      add(path, "must be at most " + format_duration(kMaxDuration) + ", got " + format_duration(d));
    }
  }

  void range(const std::string& path, std::uint64_t value, std::uint64_t min, std::uint64_t max,
             bool sizes) {
    const auto show = [&](std::uint64_t v) { return sizes ? format_size(v) : std::to_string(v); };
    if (value < min || value > max) {
      add(path, "must be between " + show(min) + " and " + show(max) + ", got " + show(value));
    }
  }

  void token(const std::string& path, const Secret& token) {
    if (auto why = token_error(token)) add(path, *why);
  }

  void readable_file(const std::string& path, const std::string& file) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) {
      add(path, "cannot read " + quote(file) + ": is a directory");
      return;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) add(path, "cannot read " + quote(file) + ": " + std::strerror(errno));
  }

  void log(const std::string& level) {
    static constexpr std::array<std::string_view, 6> kLevels{"trace", "debug", "info",
                                                             "warn",  "error", "off"};
    if (std::find(kLevels.begin(), kLevels.end(), level) == kLevels.end()) {
      add("log.level", "expected one of trace, debug, info, warn, error, off, got " + quote(level));
    }
  }

  std::vector<Issue> take() { return std::move(issues_); }

 private:
  std::vector<Issue> issues_;
};

// Lower-case DNS name: labels of [a-z0-9-], no label starting or ending with '-'.
std::optional<std::string> domain_error(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 253) return "must be at most 253 characters";
  std::size_t start = 0;
  while (start <= name.size()) {
    auto end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    const auto label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63) {
      return "invalid DNS name " + quote(name) + ": each label must have 1-63 characters";
    }
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return "invalid DNS name " + quote(name) +
               ": use lowercase letters, digits, '-' and '.' (e.g. \"tunnel.example.com\")";
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return "invalid DNS name " + quote(name) + ": a label cannot start or end with '-'";
    }
    start = end + 1;
  }
  return std::nullopt;
}

// "http(s)://host[:port][/]" without path, query or fragment.
std::optional<std::string> public_url_error(std::string_view url) {
  const auto shape =
      "expected \"http://host[:port]\" or \"https://host[:port]\", got " + quote(url);
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return shape;
  const auto scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") return shape;
  auto rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return "must be a base URL without path, query or user, got " + quote(url);
  }
  const bool bracketed = !rest.empty() && rest.front() == '[';
  const bool has_port = bracketed ? rest.find("]:") != std::string_view::npos
                                  : rest.find(':') != std::string_view::npos;
  std::string host, port;
  if (has_port) {
    if (!split_host_port(rest, host, port)) return shape;
    if (!parse_port(port, false)) return "port must be 1-65535, got " + quote(port);
  } else {
    host = bracketed && rest.size() >= 2 && rest.back() == ']' ? rest.substr(1, rest.size() - 2)
                                                               : rest;
  }
  if (!valid_host(host)) return "invalid host " + quote(host) + " in " + quote(url);
  return std::nullopt;
}

bool wildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

}  // namespace

namespace {

bool http_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char ch : s) {
    if (!(std::isalnum(ch) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(ch)) !=
                                  std::string_view::npos)) {
      return false;
    }
  }
  return true;
}

bool header_value_ok(std::string_view v) {
  return v.find_first_of("\r\n") == std::string_view::npos &&
         v.find('\0') == std::string_view::npos;
}

void check_header_list(Checker& c, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& list) {
  for (const auto& [name, value] : list) {
    if (!http_token(name)) c.add(path, "invalid header name " + quote(name));
    if (!header_value_ok(value)) c.add(path, "the value of " + quote(name) + " has a line break");
  }
}

// Headers that frame a message: the gateway sets them itself, and a configured change to them
// would desynchronise the message from its framing.
bool frames_message(const std::string& name) {
  return strcasecmp(name.c_str(), "content-length") == 0 ||
         strcasecmp(name.c_str(), "transfer-encoding") == 0 ||
         strcasecmp(name.c_str(), "connection") == 0;
}

void check_header_ops(Checker& c, const std::string& path, const HeaderOps& ops) {
  for (const auto& name : ops.remove) {
    if (!http_token(name)) c.add(path + ".remove", "invalid header name " + quote(name));
  }
  check_header_list(c, path + ".set", ops.set);
  check_header_list(c, path + ".add", ops.add);
  auto framing = [&](const std::string& key, const std::string& name) {
    if (frames_message(name)) {
      c.add(path + "." + key, quote(name) + " frames the message and cannot be changed");
    }
  };
  for (const auto& name : ops.remove) framing("remove", name);
  for (const auto& [name, value] : ops.set) framing("set", name);
  for (const auto& [name, value] : ops.add) framing("add", name);
}

void check_http(Checker& c, const HttpConfig& h) {
  if (h.escaped_slashes != "keep" && h.escaped_slashes != "reject" &&
      h.escaped_slashes != "decode") {
    c.add("http.escaped_slashes",
          "expected keep, reject or decode, got " + quote(h.escaped_slashes));
  }
  if (h.headers_with_underscores != "allow" && h.headers_with_underscores != "drop" &&
      h.headers_with_underscores != "reject") {
    c.add("http.headers_with_underscores",
          "expected allow, drop or reject, got " + quote(h.headers_with_underscores));
  }
  for (std::size_t i = 0; i < h.trusted_proxies.size(); ++i) {
    std::string why;
    if (!Cidr::parse(h.trusted_proxies[i], &why)) {
      c.add("http.trusted_proxies", "element " + std::to_string(i) + ": " + why);
    }
  }
  for (const auto& name : h.hide_response_headers) {
    if (!http_token(name)) {
      c.add("http.hide_response_headers", "invalid header name " + quote(name));
    } else if (frames_message(name)) {
      c.add("http.hide_response_headers",
            quote(name) + " frames the response and cannot be hidden");
    }
  }
}

bool path_ok(std::string_view p) {
  return !p.empty() && p.front() == '/' && p.find_first_of("?# \t\r\n") == std::string_view::npos;
}

// Connection pool, upstream TLS, health checks, outlier ejection, breaker of one cluster.

// A [health_check] table (a cluster's, or an agent tunnel's); `hp` ends with '.'.
void check_health(Checker& c, const std::string& hp, const HealthCheckConfig& h) {
  if (h.enabled() && !path_ok(h.path)) {
    c.add(hp + "path",
          "must start with '/' and contain no fragment or spaces, got " + quote(h.path));
  }
  if (h.method != "GET" && h.method != "HEAD") {
    c.add(hp + "method", "expected \"GET\" or \"HEAD\", got " + quote(h.method));
  }
  if (!h.host.empty() && !valid_host(h.host)) {
    c.add(hp + "host", "expected a host name, got " + quote(h.host));
  }
  c.duration(hp + "interval", h.interval);
  c.duration(hp + "timeout", h.timeout);
  c.range(hp + "healthy_threshold", h.healthy_threshold, 1, 1000, false);
  c.range(hp + "unhealthy_threshold", h.unhealthy_threshold, 1, 1000, false);
}

void check_cluster_policies(Checker& c, const std::string& prefix, const ClusterConfig& cl) {
  c.duration(prefix + "connect_timeout", cl.connect_timeout);
  c.duration(prefix + "tls_handshake_timeout", cl.tls_handshake_timeout);
  c.duration(prefix + "idle_timeout", cl.idle_timeout);
  c.range(prefix + "max_idle", cl.max_idle, 0, 100'000, false);
  if (!cl.ca_file.empty()) c.readable_file(prefix + "ca", cl.ca_file);
  if (!cl.ca_file.empty() && cl.insecure) {
    c.add(prefix + "insecure", "contradicts ca (insecure skips the verification ca is for)",
          prefix + "ca");
  }
  if (!cl.server_name.empty() && !valid_host(cl.server_name)) {
    c.add(prefix + "server_name", "expected a host name, got " + quote(cl.server_name));
  }
  check_health(c, prefix + "health_check.", cl.health_check);
  const auto& o = cl.outlier;
  const auto op = prefix + "outlier.";
  c.duration(op + "base_ejection_time", o.base_ejection_time);
  c.duration(op + "max_ejection_time", o.max_ejection_time);
  if (o.max_ejection_time < o.base_ejection_time) {
    c.add(op + "max_ejection_time",
          "must be at least base_ejection_time (" + format_duration(o.base_ejection_time) + ")",
          op + "base_ejection_time");
  }
  c.range(op + "max_ejected_percent", o.max_ejected_percent, 0, 100, false);
  const auto& b = cl.circuit_breaker;
  const auto bp = prefix + "circuit_breaker.";
  c.range(bp + "max_connections", b.max_connections, 1, 1'000'000, false);
  c.range(bp + "max_pending", b.max_pending, 1, 1'000'000, false);
  c.range(bp + "max_requests", b.max_requests, 1, 1'000'000, false);
  c.range(bp + "max_retries", b.max_retries, 0, 1'000'000, false);
  c.range(bp + "retry_budget_percent", b.retry_budget_percent, 0, 100, false);
  c.range(bp + "retry_budget_min", b.retry_budget_min, 0, 100'000, false);
}

void check_retry(Checker& c, const std::string& prefix, const RetryConfig& r) {
  c.range(prefix + "retries", r.retries, 0, 10, false);
  for (const auto& on : r.on) {
    unsigned code = 0;
    auto [p, ec] = std::from_chars(on.data(), on.data() + on.size(), code);
    const bool status = on.size() == 3 && ec == std::errc() && p == on.data() + on.size() &&
                        code >= 400 && code <= 599;
    if (!status && on != "connect_failure" && on != "reset" && on != "timeout" && on != "5xx") {
      c.add(prefix + "on",
            "expected \"connect_failure\", \"reset\", \"timeout\", \"5xx\" or a status "
            "400-599 like \"503\", got " +
                quote(on));
    }
  }
  if (r.per_try_timeout.count() < 0 || r.per_try_timeout > kMaxDuration) {
    c.add(prefix + "per_try_timeout", "must be between 0s (the default: the route's timeout) and " +
                                          format_duration(kMaxDuration));
  }
  c.duration(prefix + "backoff_base", r.backoff_base);
  c.duration(prefix + "backoff_max", r.backoff_max);
  if (r.backoff_max < r.backoff_base) {
    c.add(prefix + "backoff_max", "must be at least backoff_base", prefix + "backoff_base");
  }
}

void check_routes(Checker& c, const GatewayConfig& cfg) {
  std::set<std::string> cluster_names;
  static constexpr std::string_view kLb[] = {"round_robin", "weighted", "least_request",
                                             "random",      "ip_hash",  "ring_hash"};
  for (const auto& cl : cfg.clusters) {
    const std::string prefix = "clusters." + cl.name + ".";
    cluster_names.insert(cl.name);
    bool name_ok = !cl.name.empty();
    for (unsigned char ch : cl.name)
      name_ok = name_ok && (std::isalnum(ch) || ch == '-' || ch == '_');
    if (!name_ok) {
      c.add("clusters." + cl.name, "a cluster name is letters, digits, '-' and '_'");
    }
    const auto& d = cl.discovery;
    const auto dp = prefix + "discovery.";
    if (cl.endpoints.empty() && !d.enabled()) {
      c.add(prefix + "endpoints",
            "a cluster needs at least one endpoint (or a [clusters." + cl.name + ".discovery])");
    }
    if (!cl.endpoints.empty() && d.enabled()) {
      c.add(prefix + "endpoints", "contradicts discovery (the endpoints come from there)",
            dp + "type");
    }
    if (d.enabled()) {
      if (d.type == "dns") {
        if (d.name.empty() || !valid_host(d.name)) {
          c.add(dp + "name", "expected the DNS name to resolve, got " + quote(d.name));
        }
        static constexpr std::string_view kRecords[] = {"a", "aaaa", "a+aaaa", "srv"};
        if (std::ranges::find(kRecords, d.record) == std::end(kRecords)) {
          c.add(dp + "record",
                "expected \"a\", \"aaaa\", \"a+aaaa\" or \"srv\", got " + quote(d.record));
        } else if (d.record != "srv" && d.port == 0) {
          c.add(dp + "port", "required for " + d.record + " records: the targets' port");
        }
        if (!d.nameserver.empty()) {
          std::string host, port;
          if (!valid_host(d.nameserver) && !split_host_port(d.nameserver, host, port)) {
            c.add(dp + "nameserver", "expected \"ip\" or \"ip:port\", got " + quote(d.nameserver));
          }
        }
      } else if (d.type == "etcd") {
        if (!d.endpoint.starts_with("http://")) {
          c.add(dp + "endpoint",
                "expected \"http://host:port\" (etcd's JSON API), got " + quote(d.endpoint));
        }
        if (d.prefix.empty()) c.add(dp + "prefix", "required: the key prefix to watch");
      } else if (d.type == "file") {
        if (d.path.empty()) c.add(dp + "path", "required: the endpoints file");
      } else {
        c.add(dp + "type", "expected \"dns\", \"etcd\" or \"file\", got " + quote(d.type));
      }
      if (d.scheme != "http" && d.scheme != "https") {
        c.add(dp + "scheme", "expected \"http\" or \"https\", got " + quote(d.scheme));
      }
    }
    for (std::size_t i = 0; i < cl.endpoints.size(); ++i) {
      const auto path = prefix + "endpoints[" + std::to_string(i) + "]";
      auto ep = cl.endpoints[i];
      std::string why;
      if (!parse_endpoint(ep, &why)) {
        c.add(path + ".url", why);
      }
      if (ep.weight < 1 || ep.weight > 1000) {
        c.add(path + ".weight", "must be between 1 and 1000, got " + std::to_string(ep.weight));
      }
    }
    if (std::ranges::find(kLb, cl.lb) == std::end(kLb)) {
      c.add(prefix + "lb",
            "expected round_robin, weighted, least_request, random, ip_hash or ring_hash, got " +
                quote(cl.lb));
    }
    check_cluster_policies(c, prefix, cl);
    const bool key_ok = cl.hash_key == "client_ip" ||
                        (cl.hash_key.starts_with("header:") && http_token(cl.hash_key.substr(7))) ||
                        (cl.hash_key.starts_with("cookie:") && http_token(cl.hash_key.substr(7)));
    if (!key_ok) {
      c.add(
          prefix + "hash_key",
          "expected \"client_ip\", \"header:NAME\" or \"cookie:NAME\", got " + quote(cl.hash_key));
    }
  }
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const auto& r = cfg.routes[i];
    const std::string prefix = "routes[" + std::to_string(i) + "].";
    if (r.cluster.empty()) {
      c.add(prefix + "cluster", "required: the cluster this route sends to");
    } else if (!cluster_names.contains(r.cluster)) {
      c.add(prefix + "cluster", "no cluster named " + quote(r.cluster) + " ([clusters." +
                                    r.cluster + "] is not defined)");
    }
    if (!r.host.empty()) {
      const auto host = r.host.starts_with("*.") ? r.host.substr(2) : r.host;
      if (!valid_host(host) || host.find(':') != std::string::npos) {
        c.add(prefix + "host",
              "expected a host name like \"api.example.com\" or "
              "\"*.example.com\" (no port), got " +
                  quote(r.host));
      }
    }
    if (!r.path_prefix.empty() && !path_ok(r.path_prefix)) {
      c.add(prefix + "path_prefix",
            "must start with '/' and contain no query, fragment or spaces, got " +
                quote(r.path_prefix));
    }
    if (!r.prefix_rewrite.empty() && !path_ok(r.prefix_rewrite)) {
      c.add(prefix + "prefix_rewrite",
            "must start with '/' and contain no query, fragment or spaces, got " +
                quote(r.prefix_rewrite));
    }
    if (!r.prefix_rewrite.empty() && r.strip_prefix) {
      c.add(prefix + "strip_prefix", "contradicts prefix_rewrite (which replaces the prefix)",
            prefix + "prefix_rewrite");
    }
    for (const auto& m : r.methods) {
      bool upper = http_token(m);
      for (unsigned char ch : m) upper = upper && !std::islower(ch);
      if (!upper) c.add(prefix + "methods", "expected upper-case method names, got " + quote(m));
    }
    check_header_list(c, prefix + "headers", r.headers);
    check_header_ops(c, prefix + "request_headers", r.request_headers);
    check_header_ops(c, prefix + "response_headers", r.response_headers);
    if (r.timeout.count() < 0 || r.timeout > kMaxDuration) {
      c.add(prefix + "timeout",
            "must be between 0s (the default) and " + format_duration(kMaxDuration));
    }
    check_retry(c, prefix + "retry.", r.retry);
  }
}

}  // namespace

std::vector<Issue> check_gateway(const GatewayConfig& cfg) {
  Checker c;
  // Listeners, and that no two of them claim the same port.
  const std::array<std::pair<const char*, const std::string*>, 3> listeners{
      {{"listen", &cfg.listen},
       {"agent_listen", &cfg.agent_listen},
       {"admin_listen", &cfg.admin_listen}}};
  std::vector<std::pair<const char*, std::pair<std::string, std::uint16_t>>> bound;
  for (const auto& [key, value] : listeners) {
    auto addr = c.address(key, *value, true);
    if (!addr) continue;
    for (const auto& [other_key, other] : bound) {
      const bool same_host =
          addr->first == other.first || wildcard(addr->first) || wildcard(other.first);
      if (addr->second != 0 && addr->second == other.second && same_host) {
        c.add(key,
              "uses the same port as " + std::string(other_key) + " (" +
                  std::to_string(addr->second) + ")",
              other_key);
      }
    }
    bound.emplace_back(key, *addr);
  }
  if (auto why = domain_error(cfg.domain)) c.add("domain", *why);
  if (!cfg.public_url.empty()) {
    if (auto why = public_url_error(cfg.public_url)) c.add("public_url", *why);
  }
  c.token("token", cfg.token);

  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
    if (cfg.tls_cert.empty()) {
      c.add("tls.cert", "required when tls.key is set (set both or neither)", "tls.key");
    } else {
      c.add("tls.key", "required when tls.cert is set (set both or neither)", "tls.cert");
    }
  }
  if (!cfg.tls_cert.empty()) c.readable_file("tls.cert", cfg.tls_cert);
  if (!cfg.tls_key.empty()) c.readable_file("tls.key", cfg.tls_key);

  c.duration("timeouts.request", cfg.request_timeout);
  c.duration("timeouts.header", cfg.header_timeout);
  c.duration("timeouts.idle", cfg.idle_timeout);
  c.duration("timeouts.shutdown_grace", cfg.shutdown_grace);
  c.duration("timeouts.forward", cfg.forward_timeout);
  c.duration("session.heartbeat_interval", cfg.heartbeat_interval);
  c.duration("session.ttl", cfg.session_ttl);
  if (cfg.heartbeat_interval.count() > 0 && cfg.heartbeat_interval >= cfg.session_ttl) {
    c.add("session.heartbeat_interval",
          "must be shorter than session.ttl (" + format_duration(cfg.heartbeat_interval) +
              " >= " + format_duration(cfg.session_ttl) + "), or live sessions would expire",
          "session.ttl");
  }

  c.range("session.window", cfg.window, kMinFrame, kMaxWindow, true);
  c.range("session.max_frame", cfg.max_frame, kMinFrame, kMaxFrame, true);
  if (cfg.max_frame > cfg.window) {
    c.add("session.max_frame",
          "must be at most session.window (" + format_size(cfg.max_frame) + " > " +
              format_size(cfg.window) + ")",
          "session.window");
  }
  if (cfg.max_streams_per_session == 0) c.add("session.max_streams", "must be at least 1");

  c.range("limits.max_header_bytes", cfg.max_header_bytes, kMinHeaderBytes, kMaxHeaderBytes, true);
  if (cfg.max_connections == 0) c.add("limits.max_connections", "must be at least 1");
  c.duration("pool.idle_timeout", cfg.pool_idle_timeout);
  if (!cfg.tcp_port_range.empty()) {
    std::string why;
    if (!parse_port_range(cfg.tcp_port_range, &why)) c.add("tcp.port_range", why);
  }
  if (!cfg.tcp_bind.empty() && !ip_literal(cfg.tcp_bind)) {
    c.add("tcp.bind",
          "expected an IP address (e.g. \"0.0.0.0\", \"::\"), got " + quote(cfg.tcp_bind));
  }
  c.duration("tcp.idle_timeout", cfg.tcp_idle_timeout);
  c.log(cfg.log_level);
  check_http(c, cfg.http);
  check_routes(c, cfg);
  return c.take();
}

std::vector<Issue> check_agent(AgentConfig& cfg, Completeness completeness) {
  Checker c;
  const bool required = completeness == Completeness::Required;

  cfg.gateway_scheme.clear();
  cfg.gateway_host.clear();
  cfg.gateway_port.clear();
  cfg.gateway_path.clear();
  std::string scheme;  // known even when the rest of the address is bad, for the TLS checks
  static constexpr std::string_view kTransports[] = {"auto", "tcp",  "tls",  "ws",
                                                     "wss",  "http", "https"};
  const bool transport_ok = cfg.transport.empty() ||
                            std::ranges::find(kTransports, cfg.transport) != std::end(kTransports);
  if (!transport_ok) {
    c.add("transport",
          "expected auto, tcp, tls, ws, wss, http or https, got " + quote(cfg.transport));
  }
  if (cfg.gateway.empty()) {
    if (required) c.add("gateway", "required, e.g. \"gateway.example.com:443\"");
  } else {
    std::string rest;
    bool named = false;  // the gateway names its scheme
    if (const auto sep = cfg.gateway.find("://"); sep == std::string::npos) {
      scheme = cfg.transport.empty() || !transport_ok ? "auto" : cfg.transport;
      rest = cfg.gateway;
    } else {
      named = true;
      scheme = cfg.gateway.substr(0, sep);
      rest = cfg.gateway.substr(sep + 3);
    }
    if (named && !cfg.transport.empty() && transport_ok && cfg.transport != scheme) {
      c.add("transport",
            cfg.transport == "auto"
                ? "auto picks the carrier itself: give the gateway as host[:port], without a "
                  "scheme (got " +
                      quote(cfg.gateway) + ")"
                : "contradicts the scheme of gateway " + quote(cfg.gateway));
    }
    const bool ws = scheme == "ws" || scheme == "wss";
    const bool poll = scheme == "http" || scheme == "https";
    const bool automatic = scheme == "auto" && !named;
    std::string path;
    if (ws || poll || automatic) {
      // ws://host[:port][/path]: the port defaults to 80/443, the path to /ws.
      // http://host[:port][/prefix]: long-poll endpoints at {prefix}/api/agent/...
      // auto: host[:port], port 443.
      const auto slash = rest.find('/');
      path = slash == std::string::npos ? (ws ? "/ws" : "") : rest.substr(slash);
      if (poll && !path.empty() && path.back() == '/') path.pop_back();
      if (!automatic) rest = rest.substr(0, slash);
      std::string h, p;
      const bool plain = scheme == "ws" || scheme == "http";
      if (!rest.empty() && rest.find('/') == std::string::npos && !split_host_port(rest, h, p)) {
        rest += plain ? ":80" : ":443";
      }
    }
    if (scheme != "tcp" && scheme != "tls" && !ws && !poll && !automatic) {
      c.add("gateway", "unknown scheme " + quote(scheme) +
                           " (use tcp://, tls://, ws://, wss://, http:// or https://, or "
                           "host:port alone for the automatic choice)");
      scheme.clear();
    } else if ((ws || poll) && path.find_first_of("?# \t") != std::string::npos) {
      c.add("gateway",
            "the path must not contain a query, fragment or spaces, got " + quote(cfg.gateway));
    } else if (rest.find_first_of("/?#@") != std::string::npos) {
      c.add("gateway", automatic ? "expected \"host[:port]\" (or a URL naming the carrier), got " +
                                       quote(cfg.gateway)
                                 : "expected \"" + scheme + "://host:port\" without a path, got " +
                                       quote(cfg.gateway));
    } else if (auto addr = c.address("gateway", rest, false)) {
      cfg.gateway_scheme = scheme;
      cfg.gateway_path = path;
      std::string host, port;
      split_host_port(rest, host, port);
      cfg.gateway_host = std::move(host);
      cfg.gateway_port = std::move(port);
    }
  }
  // TLS-only settings on a plain-TCP gateway are most likely a mistake that would leave the user
  // believing the connection is verified.
  if (scheme == "tcp" || scheme == "ws" || scheme == "http") {
    const std::string why = "only used with a tls://, wss:// or https:// gateway";
    if (!cfg.ca_file.empty()) c.add("ca", why, "gateway");
    if (cfg.insecure) c.add("insecure", why, "gateway");
    if (!cfg.server_name.empty()) c.add("server_name", why, "gateway");
  }
  if (cfg.insecure && !cfg.ca_file.empty()) {
    c.add("insecure", "contradicts ca: a CA bundle is set but verification is disabled", "ca");
  }
  if (!cfg.ca_file.empty()) c.readable_file("ca", cfg.ca_file);
  if (!cfg.server_name.empty() && !valid_host(cfg.server_name)) {
    c.add("server_name", "invalid host name " + quote(cfg.server_name));
  }
  c.token("token", cfg.token);

  cfg.proxy_host.clear();
  cfg.proxy_port.clear();
  cfg.proxy_credentials = Secret();
  if (!cfg.proxy.empty()) {
    // The URL may hold a password: messages show it with the credentials cut out.
    const std::string& url = cfg.proxy.reveal();
    std::string rest = url;
    std::string shown = url;
    if (const auto at = url.rfind('@'); at != std::string::npos) {
      const auto sep = url.find("://");
      shown =
          (sep == std::string::npos ? "" : url.substr(0, sep + 3)) + "***@" + url.substr(at + 1);
    }
    if (url.rfind("http://", 0) != 0) {
      c.add("proxy",
            "expected \"http://[user:password@]host[:port]\" (an HTTP proxy that allows "
            "CONNECT), got " +
                quote(shown));
    } else {
      rest = url.substr(7);
      if (!rest.empty() && rest.back() == '/') rest.pop_back();
      std::string creds;
      if (const auto at = rest.rfind('@'); at != std::string::npos) {
        creds = percent_decode(rest.substr(0, at));
        rest = rest.substr(at + 1);
      }
      std::string host, port;
      if (!split_host_port(rest, host, port)) {
        host = rest.size() > 1 && rest.front() == '[' && rest.back() == ']'
                   ? rest.substr(1, rest.size() - 2)
                   : rest;
        port = "80";
      }
      if (rest.find_first_of("/?#") != std::string::npos || !valid_host(host) ||
          !parse_port(port, false)) {
        c.add("proxy", "expected \"http://[user:password@]host[:port]\", got " + quote(shown));
      } else {
        cfg.proxy_host = host;
        cfg.proxy_port = port;
        cfg.proxy_credentials = Secret(creds);
      }
    }
  }

  if (!cfg.id.empty()) {
    const bool ok =
        cfg.id.size() <= kMaxAgentId && std::all_of(cfg.id.begin(), cfg.id.end(), [](char ch) {
          return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_' || ch == '.';
        });
    if (!ok) {
      c.add("id",
            "invalid agent id " + quote(cfg.id) + ": use 1-64 letters, digits, '-', '_' and '.'");
    }
  }

  if (cfg.tunnels.empty() && required) {
    c.add("tunnels", "at least one tunnel is required ([[tunnels]] or --tunnel)");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < cfg.tunnels.size(); ++i) {
    auto& t = cfg.tunnels[i];
    const auto prefix = "tunnels[" + std::to_string(i) + "].";
    t.host.clear();
    t.port.clear();
    t.tcp = false;
    if (auto why = tunnel_name_error(t.name)) {
      c.add(prefix + "name", *why);
    } else if (!names.insert(t.name).second) {
      c.add(prefix + "name", "duplicate tunnel name " + quote(t.name));
    }
    if (t.url.empty()) {
      c.add(prefix + "url", "required, e.g. \"http://127.0.0.1:3000\"");
    } else {
      std::string why;
      if (!parse_target(t.url, t, &why)) c.add(prefix + "url", why);
    }
    c.token(prefix + "token", t.token);
    if (t.tcp && !t.token.empty()) {
      c.add(prefix + "token",
            "per-tunnel tokens protect HTTP tunnels only; a TCP tunnel cannot check one");
    }
    if (t.remote_port != 0 && !t.tcp && !t.url.empty()) {
      c.add(prefix + "remote_port", "only TCP tunnels (tcp://) have a public port");
    }
    if (!t.proxy_protocol.empty()) {
      if (t.proxy_protocol != "v1" && t.proxy_protocol != "v2") {
        c.add(prefix + "proxy_protocol",
              "expected \"v1\" or \"v2\" (or leave it out), got " + quote(t.proxy_protocol));
      } else if (!t.tcp && !t.url.empty()) {
        c.add(prefix + "proxy_protocol", "only TCP tunnels (tcp://) send a PROXY protocol header");
      }
    }
    if (t.health_check) {
      const auto hp = prefix + "health_check.";
      check_health(c, hp, *t.health_check);
      if (t.tcp && t.health_check->enabled()) {
        c.add(hp + "path",
              "a TCP tunnel's check is a connect check: leave path out (it is for HTTP tunnels)");
      }
      if (t.health_check->timeout > t.health_check->interval) {
        c.add(hp + "timeout",
              "must be at most interval (" + format_duration(t.health_check->interval) + ")",
              hp + "interval");
      }
    }
  }

  c.duration("timeouts.connect", cfg.connect_timeout);
  c.duration("timeouts.local_connect", cfg.local_connect_timeout);
  c.duration("reconnect.min", cfg.reconnect_min);
  c.duration("reconnect.max", cfg.reconnect_max);
  c.duration("reconnect.climb", cfg.climb_interval);
  c.duration("timeouts.drain", cfg.drain_timeout);
  if (cfg.reconnect_min > cfg.reconnect_max) {
    c.add("reconnect.min",
          "must be at most reconnect.max (" + format_duration(cfg.reconnect_min) + " > " +
              format_duration(cfg.reconnect_max) + ")",
          "reconnect.max");
  }
  c.log(cfg.log_level);
  return c.take();
}

std::vector<std::string> to_strings(const std::vector<Issue>& issues) {
  std::vector<std::string> out;
  out.reserve(issues.size());
  for (const auto& issue : issues) out.push_back(issue.path + ": " + issue.message);
  return out;
}

}  // namespace proxer::config::detail

namespace proxer::config {

std::vector<std::string> validate(const GatewayConfig& cfg) {
  return detail::to_strings(detail::check_gateway(cfg));
}

std::vector<std::string> validate(AgentConfig& cfg) {
  return detail::to_strings(detail::check_agent(cfg, detail::Completeness::Required));
}

}  // namespace proxer::config
