// TOML -> config structs. Reading is strict (unknown keys and wrong types are errors) and never
// stops at the first problem: every error is collected, positioned and reported together.
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "config/config.h"
#include "config/detail.h"

namespace proxer::config {
namespace {

using detail::quote;

// A config file is small; refusing anything larger keeps the read bounded.
constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

struct Located {
  toml::source_position where;  // line 0 = unknown
  std::string text;
};

// Describes a TOML value for "got ..." in an error. Secrets are described by type only, so a
// token that was, say, written without quotes never reaches a message.
std::string describe(const toml::node& node, bool secret) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return secret ? "a string" : quote(node.as_string()->get());
    case toml::node_type::integer:
      return secret ? "an integer" : std::to_string(node.as_integer()->get());
    case toml::node_type::boolean:
      return secret ? "a boolean" : (node.as_boolean()->get() ? "true" : "false");
    case toml::node_type::floating_point:
      if (secret) return "a float";
      break;
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      if (secret) return "a date/time";
      break;
    case toml::node_type::none:
      return "nothing";
  }
  std::ostringstream out;
  node.visit([&](const auto& value) { out << value; });
  return out.str();
}

// Collects errors of one load, remembers where each key was, and resolves unknown-key
// suggestions once every known key has been seen.
class Context {
 public:
  explicit Context(std::string_view source) : source_(source) {}

  void error(const std::string& path, const toml::source_region& where, const std::string& msg) {
    failed_.insert(path);
    errors_.push_back({where.begin, path + ": " + msg});
  }

  void saw(const std::string& path, const toml::source_region& where) {
    positions_[path] = where.begin;
  }

  // A key the schema defines at `section` ("" = top level); used for cross-section suggestions.
  void define(const std::string& section, std::string_view key) {
    defined_.insert(section.empty() ? std::string(key) : section + "." + std::string(key));
  }

  void unknown(std::string prefix, std::string key, std::vector<std::string> siblings,
               const toml::source_region& where) {
    auto path = prefix.empty() ? key : prefix + "." + key;
    unknown_.push_back(
        {std::move(path), std::move(prefix), std::move(key), std::move(siblings), where.begin});
  }

  // Reports the unknown keys. Runs once every key is defined (for cross-section suggestions)
  // and before add(): the key a typo stands for was not set, so "X is required" would be noise.
  void resolve_unknown() {
    for (auto& u : unknown_) {
      std::string message = "unknown key '" + u.path + "'";
      if (const auto [display, path] = suggestion(u); !display.empty()) {
        message += " (did you mean '" + display + "'?)";
        if (positions_.count(path) == 0) failed_.insert(path);  // a set key is still checked
      }
      errors_.push_back({u.where, std::move(message)});
    }
    unknown_.clear();
  }

  // Validation findings, positioned at their key when the file set it; findings about a key
  // that already failed to load are dropped (they would describe the default, not the file).
  void add(const std::vector<detail::Issue>& issues) {
    for (const auto& issue : issues) {
      if (covered(issue.path) || (!issue.related.empty() && covered(issue.related))) continue;
      auto where = position(issue.path);
      if (where.line == 0 && !issue.related.empty()) where = position(issue.related);
      errors_.push_back({where, issue.path + ": " + issue.message});
    }
  }

  std::vector<std::string> finish() {
    resolve_unknown();
    // File order reads best; errors without a position (defaults, cross-key rules) go last.
    std::stable_sort(errors_.begin(), errors_.end(), [](const Located& a, const Located& b) {
      const auto key = [](const Located& l) {
        return std::make_pair(
            l.where.line == 0 ? std::numeric_limits<std::uint32_t>::max() : l.where.line,
            l.where.column);
      };
      return key(a) < key(b);
    });
    std::vector<std::string> out;
    out.reserve(errors_.size());
    for (const auto& e : errors_) {
      std::string prefix(source_);
      if (e.where.line != 0) {
        prefix += ":" + std::to_string(e.where.line) + ":" + std::to_string(e.where.column);
      }
      out.push_back(prefix + ": " + e.text);
    }
    return out;
  }

 private:
  struct Unknown {
    std::string path;
    std::string prefix;  // path of the table holding the key
    std::string key;
    std::vector<std::string> siblings;
    toml::source_position where;
  };

  bool covered(const std::string& path) const {
    for (const auto& f : failed_) {
      if (path == f) return true;
      if (path.size() > f.size() && path.compare(0, f.size(), f) == 0 &&
          (path[f.size()] == '.' || path[f.size()] == '[')) {
        return true;
      }
    }
    return false;
  }

  toml::source_position position(const std::string& path) const {
    const auto it = positions_.find(path);
    return it == positions_.end() ? toml::source_position{} : it->second;
  }

  // Typos get the closest key of the same table; a key put in the wrong section gets the full
  // path of where it belongs. Returns {text to show, full path}, both empty without a match.
  std::pair<std::string, std::string> suggestion(const Unknown& u) const {
    const auto limit = u.key.size() <= 4 ? 1u : 2u;
    std::string best;
    std::size_t best_distance = limit + 1;
    for (const auto& s : u.siblings) {
      const auto d = detail::edit_distance(u.key, s);
      if (d < best_distance) {
        best = s;
        best_distance = d;
      }
    }
    if (!best.empty()) return {best, u.prefix.empty() ? best : u.prefix + "." + best};
    for (const auto& path : defined_) {
      const auto dot = path.rfind('.');
      const auto leaf = dot == std::string::npos ? path : path.substr(dot + 1);
      if (leaf == u.key && path != u.path) return {path, path};
    }
    return {};
  }

  std::string_view source_;
  std::vector<Located> errors_;
  std::vector<Unknown> unknown_;
  std::set<std::string> failed_;
  std::set<std::string> defined_;
  std::map<std::string, toml::source_position> positions_;
};

// Reads the keys of one table. Every accessor declares its key as known, so finish() can report
// the rest as unknown. A Reader over a missing table (nullptr) still declares its keys, which
// feeds the cross-section suggestions.
class Reader {
 public:
  Reader(Context& ctx, const toml::table* table, std::string prefix, bool schema = true)
      : ctx_(ctx), table_(table), prefix_(std::move(prefix)), schema_(schema) {}

  void string(std::string_view key, std::string& out, std::string_view example = {}) {
    const auto* node = get(key);
    if (!node) return;
    if (const auto* s = node->as_string()) {
      out = s->get();
      return;
    }
    std::string expected = "expected a string";
    if (!example.empty()) expected += " like " + quote(example);
    fail(key, *node, expected + ", got " + describe(*node, false));
  }

  void secret(std::string_view key, Secret& out) {
    const auto* node = get(key);
    if (!node) return;
    if (const auto* s = node->as_string()) {
      out = Secret(s->get());
      return;
    }
    fail(key, *node, "expected a string, got " + describe(*node, true));
  }

  void boolean(std::string_view key, bool& out) {
    const auto* node = get(key);
    if (!node) return;
    if (const auto* b = node->as_boolean()) {
      out = b->get();
      return;
    }
    fail(key, *node, "expected true or false, got " + describe(*node, false));
  }

  void duration(std::string_view key, Duration& out) {
    const auto* node = get(key);
    if (!node) return;
    if (const auto* s = node->as_string()) {
      std::string error;
      if (auto d = parse_duration(s->get(), &error)) {
        out = *d;
      } else {
        fail(key, *node, error);
      }
      return;
    }
    std::string message = "expected a duration like \"30s\", got " + describe(*node, false);
    if (node->is_number()) message += " (durations are strings with a unit: ms, s, m or h)";
    fail(key, *node, message);
  }

  // A size: a string with a unit ("16KiB") or an integer number of bytes.
  template <typename T>
  void size(std::string_view key, T& out) {
    const auto* node = get(key);
    if (!node) return;
    std::uint64_t bytes = 0;
    if (const auto* s = node->as_string()) {
      std::string error;
      const auto parsed = parse_size(s->get(), &error);
      if (!parsed) return fail(key, *node, error);
      bytes = *parsed;
    } else if (const auto* i = node->as_integer()) {
      if (i->get() < 0)
        return fail(key, *node, "must not be negative, got " + describe(*node, false));
      bytes = static_cast<std::uint64_t>(i->get());
    } else {
      return fail(
          key, *node,
          "expected a size like \"16KiB\" or a number of bytes, got " + describe(*node, false));
    }
    if (bytes > std::numeric_limits<T>::max()) {
      return fail(key, *node,
                  "must be at most " + format_size(std::numeric_limits<T>::max()) + ", got " +
                      format_size(bytes));
    }
    out = static_cast<T>(bytes);
  }

  // A count: a non-negative integer.
  template <typename T>
  void count(std::string_view key, T& out) {
    const auto* node = get(key);
    if (!node) return;
    const auto* i = node->as_integer();
    if (!i) return fail(key, *node, "expected an integer, got " + describe(*node, false));
    if (i->get() < 0)
      return fail(key, *node, "must not be negative, got " + describe(*node, false));
    if (static_cast<std::uint64_t>(i->get()) > std::numeric_limits<T>::max()) {
      return fail(key, *node,
                  "must be at most " + std::to_string(std::numeric_limits<T>::max()) + ", got " +
                      describe(*node, false));
    }
    out = static_cast<T>(i->get());
  }

  void log_format(std::string_view key, bool& json) {
    const auto* node = get(key);
    if (!node) return;
    if (const auto* s = node->as_string(); s && (s->get() == "text" || s->get() == "json")) {
      json = s->get() == "json";
      return;
    }
    fail(key, *node, "expected \"text\" or \"json\", got " + describe(*node, false));
  }

  // An array of strings ("methods = [\"GET\", \"HEAD\"]").
  void strings(std::string_view key, std::vector<std::string>& out) {
    const auto* node = get(key);
    if (!node) return;
    const auto* array = node->as_array();
    if (!array)
      return fail(key, *node, "expected an array of strings, got " + describe(*node, false));
    std::vector<std::string> values;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const auto* s = array->get(i)->as_string();
      if (!s) {
        return fail(key, *node,
                    "expected an array of strings, element " + std::to_string(i) + " is " +
                        describe(*array->get(i), false));
      }
      values.push_back(s->get());
    }
    out = std::move(values);
  }

  // HTTP status ranges: an integer (200) or a string "200" / "200-399", or an array of those.
  void status_ranges(std::string_view key, std::vector<std::pair<unsigned, unsigned>>& out) {
    const auto* node = get(key);
    if (!node) return;
    std::vector<std::pair<unsigned, unsigned>> ranges;
    auto one = [&](const toml::node& n) -> bool {
      unsigned lo = 0, hi = 0;
      if (const auto* i = n.as_integer()) {
        if (i->get() < 100 || i->get() > 599) return false;
        lo = hi = static_cast<unsigned>(i->get());
      } else if (const auto* s = n.as_string()) {
        const std::string& text = s->get();
        const auto dash = text.find('-');
        auto num = [](std::string_view v, unsigned& o) {
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), o);
          return ec == std::errc() && p == v.data() + v.size() && o >= 100 && o <= 599;
        };
        const std::string_view t(text);
        const bool parsed = dash == std::string::npos
                                ? num(t, lo)
                                : num(t.substr(0, dash), lo) && num(t.substr(dash + 1), hi);
        if (!parsed) return false;
        if (dash == std::string::npos) hi = lo;
        if (hi < lo) return false;
      } else {
        return false;
      }
      ranges.emplace_back(lo, hi);
      return true;
    };
    bool ok = true;
    if (const auto* array = node->as_array()) {
      for (std::size_t i = 0; i < array->size() && ok; ++i) ok = one(*array->get(i));
      ok = ok && !ranges.empty();
    } else {
      ok = one(*node);
    }
    if (!ok) {
      return fail(key, *node,
                  "expected HTTP statuses like 200, \"200-399\" or [200, \"301-302\"], got " +
                      describe(*node, false));
    }
    out = std::move(ranges);
  }

  // A table of string values ("set = { \"X-From\" = \"proxer\" }"), in file order.
  void string_map(std::string_view key, std::vector<std::pair<std::string, std::string>>& out) {
    const auto* node = get(key);
    if (!node) return;
    const auto* table = node->as_table();
    if (!table) {
      return fail(key, *node,
                  "expected a table of strings like { \"X-Name\" = \"value\" }, got " +
                      describe(*node, false));
    }
    std::vector<std::pair<std::string, std::string>> values;
    for (const auto& [k, v] : *table) {
      const auto* s = v.as_string();
      if (!s) {
        return fail(
            key, *node,
            "expected string values, \"" + std::string(k.str()) + "\" is " + describe(v, false));
      }
      values.emplace_back(std::string(k.str()), s->get());
    }
    std::sort(values.begin(), values.end(), [&](const auto& a, const auto& b) {
      const auto pa = table->get(a.first)->source().begin;
      const auto pb = table->get(b.first)->source().begin;
      return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
    });
    out = std::move(values);
  }

  // A table of tables keyed by name ("[clusters.api]"); calls read(Reader&, name) for each, in
  // name order.
  template <typename Fn>
  void named_tables(std::string_view key, Fn read) {
    const auto* node = get(key);
    if (!node) return;
    const auto* table = node->as_table();
    if (!table) {
      return fail(key, *node,
                  "expected tables ([" + path(key) + ".NAME]), got " + describe(*node, false));
    }
    for (const auto& [k, v] : *table) {
      const std::string name(k.str());
      const auto element_path = path(key) + "." + name;
      ctx_.saw(element_path, v.source());
      Reader reader(ctx_, v.as_table(), element_path, false);
      if (!v.is_table()) {
        ctx_.error(element_path, v.source(),
                   "expected a table ([" + element_path + "]), got " + describe(v, false));
        continue;
      }
      read(reader, name);
    }
  }

  // A sub-table ("[timeouts]"). Absent or of the wrong type, the Reader reads nothing.
  Reader section(std::string_view key) {
    const auto* node = get(key);
    const toml::table* table = nullptr;
    if (node) {
      table = node->as_table();
      if (!table)
        fail(key, *node, "expected a table ([" + path(key) + "]), got " + describe(*node, false));
    }
    return Reader(ctx_, table, path(key), schema_);
  }

  // An array of tables ("[[tunnels]]"); calls read(Reader&, index) for each element. With
  // `read_string`, elements may also be plain strings (a short form: read_string(value, index)).
  template <typename Fn>
  void tables(std::string_view key, Fn read) {
    tables(key, read, nullptr);
  }
  template <typename Fn, typename StringFn>
  void tables(std::string_view key, Fn read, StringFn read_string) {
    const auto* node = get(key);
    if (!node) return;
    const auto* array = node->as_array();
    if (!array) {
      return fail(
          key, *node,
          "expected an array of tables ([[" + path(key) + "]]), got " + describe(*node, false));
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const auto& element = *array->get(i);
      const auto element_path = path(key) + "[" + std::to_string(i) + "]";
      ctx_.saw(element_path, element.source());
      if constexpr (!std::is_same_v<StringFn, std::nullptr_t>) {
        if (const auto* str = element.as_string()) {
          read_string(str->get(), i);
          continue;
        }
      }
      Reader reader(ctx_, element.as_table(), element_path, false);
      if (!element.is_table()) {
        ctx_.error(element_path, element.source(),
                   "expected a table ([[" + path(key) + "]]), got " + describe(element, false));
      }
      read(reader, i);
    }
  }

  // Whether the table exists in the input (a section() that is absent reads nothing).
  bool present() const { return table_ != nullptr; }

  // A key this table does not take but a user may well write here: one that moved to another
  // table, or a key's old name. When present, an error with `message` (which says what to write
  // instead) replaces "unknown key". Never offered as a suggestion.
  void moved(std::string_view key, const std::string& message) {
    moved_.emplace_back(key);
    if (!table_) return;
    if (const auto* node = table_->get(key)) fail(key, *node, message);
  }

  void finish() {
    if (!table_) return;
    for (const auto& [key, node] : *table_) {
      const std::string name(key.str());
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      if (std::find(moved_.begin(), moved_.end(), name) != moved_.end()) continue;
      ctx_.unknown(prefix_, name, known_, key.source());
    }
  }

 private:
  std::string path(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  const toml::node* get(std::string_view key) {
    known_.emplace_back(key);
    if (schema_) ctx_.define(prefix_, key);
    if (!table_) return nullptr;
    const auto* node = table_->get(key);
    if (node) ctx_.saw(path(key), node->source());
    return node;
  }

  void fail(std::string_view key, const toml::node& node, const std::string& message) {
    ctx_.error(path(key), node.source(), message);
  }

  Context& ctx_;
  const toml::table* table_;
  std::string prefix_;
  bool schema_;  // false inside arrays: their keys are not offered as cross-section suggestions
  std::vector<std::string> known_;
  std::vector<std::string> moved_;  // reported by moved(), not as unknown
};

// The keys of a health check table: [clusters.NAME.health_check] and [tunnels.health_check].
// `example_host` is the example a type error on `host` shows.
void read_health_check(Reader& hc, HealthCheckConfig& h, const char* example_host) {
  hc.string("path", h.path, "/healthz");
  hc.string("method", h.method, "GET");
  hc.string("host", h.host, example_host);
  hc.duration("interval", h.interval);
  hc.duration("timeout", h.timeout);
  hc.status_ranges("expected_status", h.expected_status);
  hc.count("healthy_threshold", h.healthy_threshold);
  hc.count("unhealthy_threshold", h.unhealthy_threshold);
}

void read_gateway(Reader& r, GatewayConfig& c) {
  r.string("listen", c.listen, "0.0.0.0:8080");
  r.string("agent_listen", c.agent_listen, "0.0.0.0:8443");
  r.string("admin_listen", c.admin_listen, "127.0.0.1:9000");
  r.string("domain", c.domain, "tunnel.example.com");
  r.string("public_url", c.public_url, "https://tunnel.example.com");
  r.secret("token", c.token);
  {
    auto tls = r.section("tls");
    tls.string("cert", c.tls_cert);
    tls.string("key", c.tls_key);
    tls.finish();
  }
  {
    auto t = r.section("timeouts");
    t.duration("request", c.request_timeout);
    t.duration("header", c.header_timeout);
    t.duration("idle", c.idle_timeout);
    t.duration("shutdown_grace", c.shutdown_grace);
    t.duration("forward", c.forward_timeout);
    t.finish();
  }
  {
    auto s = r.section("session");
    s.duration("heartbeat_interval", c.heartbeat_interval);
    s.duration("ttl", c.session_ttl);
    s.size("window", c.window);
    s.size("max_frame", c.max_frame);
    s.count("max_streams", c.max_streams_per_session);
    s.finish();
  }
  {
    auto l = r.section("limits");
    l.size("max_header_bytes", c.max_header_bytes);
    l.size("max_body_bytes", c.max_body_bytes);
    l.count("max_connections", c.max_connections);
    l.finish();
  }
  {
    auto p = r.section("pool");
    p.count("idle_per_tunnel", c.pool_idle_per_tunnel);
    p.duration("idle_timeout", c.pool_idle_timeout);
    p.finish();
  }
  {
    auto t = r.section("tcp");
    t.string("port_range", c.tcp_port_range, "10000-10999");
    t.string("bind", c.tcp_bind, "0.0.0.0");
    t.duration("idle_timeout", c.tcp_idle_timeout);
    t.finish();
  }
  {
    auto l = r.section("log");
    l.string("level", c.log_level, "info");
    l.log_format("format", c.log_json);
    l.finish();
  }
  {
    auto rl = r.section("reload");
    rl.boolean("watch", c.reload_watch);
    rl.finish();
  }
  {
    auto h = r.section("http");
    h.boolean("normalize_path", c.http.normalize_path);
    h.boolean("merge_slashes", c.http.merge_slashes);
    h.string("escaped_slashes", c.http.escaped_slashes, "keep");
    h.string("headers_with_underscores", c.http.headers_with_underscores, "drop");
    h.strings("trusted_proxies", c.http.trusted_proxies);
    h.strings("hide_response_headers", c.http.hide_response_headers);
    h.finish();
  }
  r.tables("routes", [&](Reader& rt, std::size_t index) {
    RouteConfig route;
    rt.string("name", route.name);
    rt.string("host", route.host, "api.example.com");
    rt.string("path_prefix", route.path_prefix, "/api/");
    rt.strings("methods", route.methods);
    rt.string_map("headers", route.headers);
    rt.string("cluster", route.cluster, "api");
    rt.boolean("strip_prefix", route.strip_prefix);
    rt.string("prefix_rewrite", route.prefix_rewrite, "/v2/");
    rt.duration("timeout", route.timeout);
    rt.size("max_body_bytes", route.max_body_bytes);
    {
      auto rq = rt.section("request_headers");
      rq.strings("remove", route.request_headers.remove);
      rq.string_map("set", route.request_headers.set);
      rq.string_map("add", route.request_headers.add);
      rq.finish();
    }
    {
      auto rs = rt.section("response_headers");
      rs.strings("remove", route.response_headers.remove);
      rs.string_map("set", route.response_headers.set);
      rs.string_map("add", route.response_headers.add);
      rs.finish();
    }
    {
      auto ry = rt.section("retry");
      ry.count("retries", route.retry.retries);
      ry.strings("on", route.retry.on);
      ry.duration("per_try_timeout", route.retry.per_try_timeout);
      ry.duration("backoff_base", route.retry.backoff_base);
      ry.duration("backoff_max", route.retry.backoff_max);
      // The budget compares counters of the whole cluster, so it is set there (Envoy: the
      // cluster's circuit_breakers.retry_budget).
      const bool named =
          !route.cluster.empty() &&
          std::all_of(route.cluster.begin(), route.cluster.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
          });
      const std::string cluster = named ? route.cluster : "NAME";
      for (const char* key : {"budget_percent", "budget_min"}) {
        const std::string where = "clusters." + cluster + ".circuit_breaker.retry_" + key +
                                  " (the budget is shared by every route of a cluster)";
        ry.moved(key, "moved; set " + where);
        ry.moved(std::string("retry_") + key, "belongs to the cluster; set " + where);
      }
      ry.finish();
    }
    rt.finish();
    if (route.name.empty()) route.name = "route-" + std::to_string(index);
    c.routes.push_back(std::move(route));  // even when broken: keeps indexes equal to the file's
  });
  r.named_tables("clusters", [&](Reader& cl, const std::string& name) {
    ClusterConfig cluster;
    cluster.name = name;
    cl.tables(
        "endpoints",
        [&](Reader& e, std::size_t) {
          EndpointConfig ep;
          e.string("url", ep.url, "http://10.0.0.5:8080");
          e.count("weight", ep.weight);
          e.finish();
          cluster.endpoints.push_back(std::move(ep));
        },
        [&](const std::string& url, std::size_t) {
          cluster.endpoints.push_back(EndpointConfig{.url = url});
        });
    cl.string("lb", cluster.lb, "round_robin");
    cl.string("hash_key", cluster.hash_key, "client_ip");
    cl.duration("connect_timeout", cluster.connect_timeout);
    cl.duration("tls_handshake_timeout", cluster.tls_handshake_timeout);
    cl.count("max_idle", cluster.max_idle);
    cl.duration("idle_timeout", cluster.idle_timeout);
    cl.string("ca", cluster.ca_file, "/etc/ssl/certs/internal-ca.pem");
    cl.boolean("insecure", cluster.insecure);
    cl.string("server_name", cluster.server_name, "api.internal");
    {
      auto hc = cl.section("health_check");
      read_health_check(hc, cluster.health_check, "api.internal");
      hc.finish();
    }
    {
      auto od = cl.section("outlier");
      auto& o = cluster.outlier;
      od.count("consecutive_5xx", o.consecutive_5xx);
      od.count("consecutive_connect_failures", o.consecutive_connect_failures);
      od.duration("base_ejection_time", o.base_ejection_time);
      od.duration("max_ejection_time", o.max_ejection_time);
      od.count("max_ejected_percent", o.max_ejected_percent);
      od.finish();
    }
    {
      auto ds = cl.section("discovery");
      auto& d = cluster.discovery;
      ds.string("type", d.type, "dns");
      ds.string("name", d.name, "api.internal");
      ds.count("port", d.port);
      ds.string("record", d.record, "a");
      ds.string("nameserver", d.nameserver, "127.0.0.1:53");
      ds.string("endpoint", d.endpoint, "http://127.0.0.1:2379");
      ds.string("prefix", d.prefix, "/services/api/");
      ds.string("path", d.path, "/etc/proxer/api.endpoints");
      ds.string("scheme", d.scheme, "http");
      ds.finish();
    }
    {
      auto cb = cl.section("circuit_breaker");
      auto& b = cluster.circuit_breaker;
      cb.count("max_connections", b.max_connections);
      cb.count("max_pending", b.max_pending);
      cb.count("max_requests", b.max_requests);
      cb.count("max_retries", b.max_retries);
      cb.count("retry_budget_percent", b.retry_budget_percent);
      cb.count("retry_budget_min", b.retry_budget_min);
      for (const char* key : {"budget_percent", "budget_min"}) {  // the keys' old names
        cb.moved(key, std::string("is called retry_") + key + " here");
      }
      cb.finish();
    }
    cl.finish();
    c.clusters.push_back(std::move(cluster));
  });
}

void read_agent(Reader& r, AgentConfig& c) {
  r.string("gateway", c.gateway, "gateway.example.com:443");
  r.string("transport", c.transport, "auto");
  r.secret("token", c.token);
  r.string("id", c.id);
  r.string("ca", c.ca_file);
  r.boolean("insecure", c.insecure);
  r.string("server_name", c.server_name);
  r.secret("proxy", c.proxy);
  r.tables("tunnels", [&](Reader& t, std::size_t) {
    TunnelConfig tunnel;
    t.string("name", tunnel.name);
    t.string("url", tunnel.url, "http://127.0.0.1:3000");
    t.secret("token", tunnel.token);
    t.count("remote_port", tunnel.remote_port);
    t.string("proxy_protocol", tunnel.proxy_protocol, "v2");
    t.boolean("pool", tunnel.pool);
    {
      auto hc = t.section("health_check");
      HealthCheckConfig h;
      read_health_check(hc, h, "localhost");
      hc.finish();
      if (hc.present()) tunnel.health_check = std::move(h);
    }
    t.finish();
    c.tunnels.push_back(std::move(tunnel));  // even when broken: keeps indexes equal to the file's
  });
  {
    auto t = r.section("timeouts");
    t.duration("connect", c.connect_timeout);
    t.duration("local_connect", c.local_connect_timeout);
    t.duration("drain", c.drain_timeout);
    t.finish();
  }
  {
    auto re = r.section("reconnect");
    re.duration("min", c.reconnect_min);
    re.duration("max", c.reconnect_max);
    re.duration("climb", c.climb_interval);
    re.finish();
  }
  {
    auto l = r.section("log");
    l.string("level", c.log_level, "info");
    l.log_format("format", c.log_json);
    l.finish();
  }
}

template <typename Cfg, typename Read, typename Check>
Loaded<Cfg> load(std::string_view text, std::string_view source, Read read, Check check) {
  Loaded<Cfg> out;
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::string message(e.description());
    if (message.find("could not determine value type") != std::string::npos) {
      message += " (strings need quotes, e.g. \"30s\")";
    }
    out.errors.push_back(std::string(source) + ":" + std::to_string(where.line) + ":" +
                         std::to_string(where.column) + ": " + message);
    return out;
  }
  Context ctx(source);
  Cfg cfg;
  Reader reader(ctx, &root, "");
  read(reader, cfg);
  reader.finish();
  ctx.resolve_unknown();
  ctx.add(check(cfg));
  out.errors = ctx.finish();
  if (out.errors.empty()) out.value = std::move(cfg);
  return out;
}

std::optional<std::string> read_file(const std::string& path, std::string* error) {
  const auto fail = [&](const std::string& why) -> std::optional<std::string> {
    *error = path + ": cannot read config file: " + why;
    return std::nullopt;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail("is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::strerror(errno));
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return fail(std::strerror(errno));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) return fail("larger than " + format_size(kMaxConfigBytes));
  return text;
}

template <typename Cfg, typename LoadText>
Loaded<Cfg> load_file(const std::string& path, LoadText load_text) {
  std::string error;
  auto text = read_file(path, &error);
  if (!text) return Loaded<Cfg>{std::nullopt, {error}};
  return load_text(*text, path);
}

}  // namespace

Loaded<GatewayConfig> load_gateway_toml(std::string_view text, std::string_view source_name) {
  return load<GatewayConfig>(text, source_name, read_gateway,
                             [](const GatewayConfig& cfg) { return detail::check_gateway(cfg); });
}

Loaded<GatewayConfig> load_gateway_file(const std::string& path) {
  return load_file<GatewayConfig>(path, load_gateway_toml);
}

Loaded<AgentConfig> load_agent_toml(std::string_view text, std::string_view source_name) {
  return load<AgentConfig>(text, source_name, read_agent, [](AgentConfig& cfg) {
    return detail::check_agent(cfg, detail::Completeness::ValuesOnly);
  });
}

Loaded<AgentConfig> load_agent_file(const std::string& path) {
  return load_file<AgentConfig>(path, load_agent_toml);
}

}  // namespace proxer::config
