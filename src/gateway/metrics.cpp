#include "gateway/metrics.h"

#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace proxer::gateway {

namespace json = boost::json;

namespace {

using Resource = proxy::CircuitBreaker::Resource;
using TimePoint = std::chrono::steady_clock::time_point;

constexpr std::pair<Resource, std::string_view> kResources[] = {
    {Resource::Connections, "connections"},
    {Resource::Pending, "pending"},
    {Resource::Requests, "requests"},
    {Resource::Retries, "retries"},
};

// The clusters of the current table, in name order (the table keeps config order, which is
// already by name; sorted again so the output never depends on it).
std::vector<UpstreamCluster*> clusters_of(const Context& ctx) {
  std::vector<UpstreamCluster*> out;
  for (const auto& c : ctx.routes->clusters) out.push_back(c.get());
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->name() < b->name(); });
  return out;
}

// The `endpoint` label of each endpoint: its URL, with "#index" added when an earlier endpoint
// of the cluster has the same URL (label sets must be unique).
std::vector<std::string> endpoint_labels(proxy::Cluster& c) {
  std::vector<std::string> out;
  const auto& eps = c.endpoints();
  for (std::size_t i = 0; i < eps.size(); ++i) {
    bool earlier = false;
    for (std::size_t j = 0; j < i && !earlier; ++j) earlier = eps[j].cfg.url == eps[i].cfg.url;
    out.push_back(earlier ? eps[i].cfg.url + "#" + std::to_string(i) : eps[i].cfg.url);
  }
  return out;
}

// Writes the text exposition format: a family's HELP and TYPE lines, then its samples.
class Prom {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  void sample(std::string_view name, const Labels& labels, std::uint64_t value) {
    out_.append(name);
    if (!labels.empty()) {
      out_.push_back('{');
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_.push_back(',');
        first = false;
        out_.append(k).append("=\"");
        escape(v);
        out_.push_back('"');
      }
      out_.push_back('}');
    }
    out_.push_back(' ');
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
    out_.append(buf, end);
    out_.push_back('\n');
  }
  std::string take() { return std::move(out_); }

 private:
  void escape(std::string_view v) {
    for (char c : v) {
      if (c == '\\') {
        out_.append("\\\\");
      } else if (c == '"') {
        out_.append("\\\"");
      } else if (c == '\n') {
        out_.append("\\n");
      } else {
        out_.push_back(c);
      }
    }
  }

  std::string out_;
};

// One family over every cluster: value(cluster) per cluster.
void per_cluster(Prom& p, const std::vector<UpstreamCluster*>& clusters, std::string_view name,
                 std::string_view type, std::string_view help,
                 const std::function<std::uint64_t(proxy::Cluster&)>& value) {
  p.family(name, type, help);
  for (auto* c : clusters) p.sample(name, {{"cluster", c->name()}}, value(c->policy()));
}

// One family over every endpoint of every cluster.
void per_endpoint(Prom& p, const std::vector<UpstreamCluster*>& clusters,
                  const std::vector<std::vector<std::string>>& labels, std::string_view name,
                  std::string_view type, std::string_view help,
                  const std::function<std::uint64_t(proxy::Cluster&, std::size_t)>& value) {
  p.family(name, type, help);
  for (std::size_t k = 0; k < clusters.size(); ++k) {
    auto& policy = clusters[k]->policy();
    for (std::size_t i = 0; i < policy.endpoints().size(); ++i) {
      p.sample(name, {{"cluster", clusters[k]->name()}, {"endpoint", labels[k][i]}},
               value(policy, i));
    }
  }
}

// The pool of tunnel endpoint `e` when its tunnel is a pool (its members then have verdicts of
// their own), else nullptr.
const TunnelPool* pool_of(const Context& ctx, const proxy::EndpointState& e) {
  if (!e.cfg.tunnel) return nullptr;
  const auto* p = ctx.registry.pool(e.cfg.tunnel_name);
  return p && is_pool(*p) ? p : nullptr;
}

// Calls fn(k, i, endpoint, member) for each member of every pooled tunnel endpoint (endpoint i
// of clusters[k]).
template <typename Fn>
void for_each_pool_member(const Context& ctx, const std::vector<UpstreamCluster*>& clusters,
                          Fn&& fn) {
  for (std::size_t k = 0; k < clusters.size(); ++k) {
    const auto& eps = clusters[k]->policy().endpoints();
    for (std::size_t i = 0; i < eps.size(); ++i) {
      if (const auto* pool = pool_of(ctx, eps[i])) {
        for (const auto& m : pool->members) fn(k, i, eps[i], *m);
      }
    }
  }
}

// Each member of a pooled tunnel endpoint: the cluster's checks' verdict on it next to its
// agent's.
json::array members_json(const TunnelPool& p, const proxy::EndpointState& e) {
  json::array out;
  for (const auto& m : p.members) {
    const auto* state = e.members.find(m->id);
    json::object o{
        {"agent_id", m->agent_id},
        {"healthy", !e.members.excluded(m->id)},
        {"checked", state != nullptr},
        {"agent_healthy", m->healthy},
        {"in_rotation", m->type == proto::TunnelType::Http && usable(*m, &e.members)},
        {"became_unhealthy", state ? state->health.became_unhealthy_total() : 0},
        {"became_healthy", state ? state->health.became_healthy_total() : 0},
    };
    if (state && !state->last_failure.empty()) o["last_failure"] = state->last_failure;
    if (!m->healthy && !m->health_reason.empty()) o["agent_health_reason"] = m->health_reason;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

std::string clusters_json(const Context& ctx, TimePoint now) {
  json::array clusters;
  std::vector<std::pair<std::string, std::string>> uses;  // cluster -> route
  for (const auto& r : ctx.routes->router.routes()) uses.emplace_back(r.cluster, r.name);
  for (auto* uc : clusters_of(ctx)) {
    auto& c = uc->policy();
    const auto& s = c.stats();
    json::array routes;
    for (const auto& [cluster, route] : uses) {
      if (cluster == c.name()) routes.emplace_back(route);
    }
    json::object breaker;
    for (const auto& [r, name] : kResources) {
      breaker[name] = json::object{{"active", c.breaker().active(r)},
                                   {"limit", c.breaker().limit(r)},
                                   {"open", c.breaker().open(r)},
                                   {"overflow", c.breaker().overflow(r)}};
    }
    breaker["retry_budget"] = json::object{{"percent", c.retry_budget().percent()},
                                           {"min", c.retry_budget().min()},
                                           {"allows_retry", c.retry_budget_allows()}};
    json::array endpoints;
    for (std::size_t i = 0; i < c.endpoints().size(); ++i) {
      const auto& e = c.endpoints()[i];
      json::object eo{
          {"url", e.cfg.url},
          {"weight", e.cfg.weight},
          {"healthy", e.health.healthy()},
          {"ejected", c.outlier().ejected(i, now)},
          {"in_rotation", c.in_rotation(i, now)},
          {"active_requests", e.active},
          {"requests", e.requests},
          {"failures", e.connect_failures + e.responses_5xx},
          {"connect_failures", e.connect_failures},
          {"responses_5xx", e.responses_5xx},
          {"ejections", c.outlier().ejections_total(i)},
          {"became_unhealthy", e.health.became_unhealthy_total()},
          {"became_healthy", e.health.became_healthy_total()},
      };
      if (const auto* p = pool_of(ctx, e)) eo["members"] = members_json(*p, e);
      endpoints.push_back(std::move(eo));
    }
    clusters.push_back(json::object{
        {"name", c.name()},
        {"lb", c.cfg().lb},
        {"routes", std::move(routes)},
        {"requests", s.requests},
        {"retries", s.retries},
        {"no_endpoint", s.no_endpoint},
        {"circuit_open", s.circuit_open},
        {"retry_budget_spent", s.retry_budget_spent},
        {"timeouts", s.timeouts},
        {"upstream_errors", s.upstream_errors},
        {"active_requests", c.active_requests},
        {"active_retries", c.active_retries},
        {"ejections", c.outlier().ejections_total()},
        {"ejections_refused", c.outlier().ejections_refused_total()},
        {"circuit_breaker", std::move(breaker)},
        {"endpoints", std::move(endpoints)},
    });
  }
  return json::serialize(json::object{{"clusters", std::move(clusters)}});
}

std::string prometheus_metrics(const Context& ctx, TimePoint now) {
  Prom p;
  const auto& g = ctx.stats;
  p.family("proxer_requests_total", "counter", "HTTP requests received on the public listener.");
  p.sample("proxer_requests_total", {}, g.requests_total);
  p.family("proxer_requests_active", "gauge", "Requests being forwarded now.");
  p.sample("proxer_requests_active", {}, g.requests_active);
  p.family("proxer_connections_active", "gauge", "Open public client connections.");
  p.sample("proxer_connections_active", {}, g.connections_active);
  p.family("proxer_agent_sessions_total", "counter", "Agent sessions authenticated.");
  p.sample("proxer_agent_sessions_total", {}, g.agent_sessions_total);
  p.family("proxer_agent_auth_failures_total", "counter", "Agent authentications refused.");
  p.sample("proxer_agent_auth_failures_total", {}, g.auth_failures);
  p.family("proxer_agents", "gauge", "Connected agents.");
  p.sample("proxer_agents", {}, ctx.registry.agents().size());
  p.family("proxer_tunnels", "gauge", "Registered tunnels.");
  p.sample("proxer_tunnels", {}, ctx.registry.size());

  const auto tunnels = ctx.registry.all();
  auto per_tunnel = [&](std::string_view name, std::string_view help, auto value) {
    p.family(name, "counter", help);
    for (const auto& t : tunnels) p.sample(name, {{"tunnel", t->name}}, value(t->stats));
  };
  per_tunnel("proxer_tunnel_requests_total", "Requests (TCP tunnels: connections) to the tunnel.",
             [](const TunnelStats& s) { return s.request_count; });
  per_tunnel("proxer_tunnel_errors_total",
             "Gateway error answers and 5xx responses of the tunnel's service.",
             [](const TunnelStats& s) { return s.error_count; });
  per_tunnel("proxer_tunnel_received_bytes_total", "Bytes from public clients (heads included).",
             [](const TunnelStats& s) { return s.bytes_in; });
  per_tunnel("proxer_tunnel_sent_bytes_total", "Bytes to public clients (heads included).",
             [](const TunnelStats& s) { return s.bytes_out; });

  const auto clusters = clusters_of(ctx);
  using C = proxy::Cluster;
  per_cluster(p, clusters, "proxer_cluster_requests_total", "counter",
              "Requests a route sent to the cluster.", [](C& c) { return c.stats().requests; });
  per_cluster(p, clusters, "proxer_cluster_retries_total", "counter", "Retries made.",
              [](C& c) { return c.stats().retries; });
  per_cluster(p, clusters, "proxer_cluster_retry_budget_exhausted_total", "counter",
              "Retries not made because the retry budget was used up.",
              [](C& c) { return c.stats().retry_budget_spent; });
  per_cluster(p, clusters, "proxer_cluster_no_endpoint_total", "counter",
              "Requests answered 503 because no endpoint could take them.",
              [](C& c) { return c.stats().no_endpoint; });
  per_cluster(p, clusters, "proxer_cluster_circuit_open_total", "counter",
              "Requests answered 503 because the max_requests breaker limit was reached.",
              [](C& c) { return c.stats().circuit_open; });
  per_cluster(p, clusters, "proxer_cluster_timeouts_total", "counter",
              "Requests answered 504 (no response head in time).",
              [](C& c) { return c.stats().timeouts; });
  per_cluster(p, clusters, "proxer_cluster_upstream_errors_total", "counter",
              "Requests answered 502 by the gateway.",
              [](C& c) { return c.stats().upstream_errors; });
  per_cluster(p, clusters, "proxer_cluster_active_requests", "gauge", "Requests in flight.",
              [](C& c) { return c.active_requests; });
  per_cluster(p, clusters, "proxer_cluster_active_retries", "gauge", "Retries in flight.",
              [](C& c) { return c.active_retries; });
  per_cluster(p, clusters, "proxer_cluster_ejections_refused_total", "counter",
              "Outlier ejections not made because of max_ejected_percent.",
              [](C& c) { return c.outlier().ejections_refused_total(); });

  auto per_resource = [&](std::string_view name, std::string_view type, std::string_view help,
                          auto value) {
    p.family(name, type, help);
    for (auto* uc : clusters) {
      for (const auto& [r, resource] : kResources) {
        p.sample(name, {{"cluster", uc->name()}, {"resource", resource}},
                 value(uc->policy().breaker(), r));
      }
    }
  };
  using B = proxy::CircuitBreaker;
  per_resource("proxer_cluster_breaker_active", "gauge",
               "Slots of a circuit-breaker resource in use.",
               [](B& b, Resource r) { return std::uint64_t{b.active(r)}; });
  per_resource("proxer_cluster_breaker_limit", "gauge", "Limit of a circuit-breaker resource.",
               [](B& b, Resource r) { return std::uint64_t{b.limit(r)}; });
  per_resource("proxer_cluster_breaker_overflow_total", "counter",
               "Acquisitions refused at a circuit-breaker limit.",
               [](B& b, Resource r) { return b.overflow(r); });

  std::vector<std::vector<std::string>> labels;
  for (auto* uc : clusters) labels.push_back(endpoint_labels(uc->policy()));
  per_endpoint(p, clusters, labels, "proxer_cluster_endpoint_healthy", "gauge",
               "1 while active health checks find the endpoint healthy (always 1 without checks).",
               [](C& c, std::size_t i) { return c.endpoints()[i].health.healthy() ? 1u : 0u; });
  per_endpoint(p, clusters, labels, "proxer_cluster_endpoint_ejected", "gauge",
               "1 while outlier detection keeps the endpoint out of rotation.",
               [now](C& c, std::size_t i) { return c.outlier().ejected(i, now) ? 1u : 0u; });
  per_endpoint(p, clusters, labels, "proxer_cluster_endpoint_active_requests", "gauge",
               "Requests in flight on the endpoint.",
               [](C& c, std::size_t i) { return std::uint64_t{c.endpoints()[i].active}; });
  per_endpoint(p, clusters, labels, "proxer_cluster_endpoint_requests_total", "counter",
               "Attempts sent to the endpoint (each retry counts on its own endpoint).",
               [](C& c, std::size_t i) { return c.endpoints()[i].requests; });
  p.family("proxer_cluster_endpoint_failures_total", "counter",
           "Failed attempts: kind=\"connect\" got no response head (refused, reset, timeout), "
           "kind=\"5xx\" a 5xx response.");
  for (std::size_t k = 0; k < clusters.size(); ++k) {
    auto& policy = clusters[k]->policy();
    for (std::size_t i = 0; i < policy.endpoints().size(); ++i) {
      const auto& e = policy.endpoints()[i];
      for (const auto& [kind, value] :
           {std::pair<std::string_view, std::uint64_t>{"connect", e.connect_failures},
            std::pair<std::string_view, std::uint64_t>{"5xx", e.responses_5xx}}) {
        p.sample("proxer_cluster_endpoint_failures_total",
                 {{"cluster", clusters[k]->name()}, {"endpoint", labels[k][i]}, {"kind", kind}},
                 value);
      }
    }
  }
  per_endpoint(p, clusters, labels, "proxer_cluster_endpoint_ejections_total", "counter",
               "Times outlier detection ejected the endpoint.",
               [](C& c, std::size_t i) { return c.outlier().ejections_total(i); });
  p.family("proxer_cluster_endpoint_health_transitions_total", "counter",
           "Verdict changes of the active health checks, by the verdict reached.");
  for (std::size_t k = 0; k < clusters.size(); ++k) {
    auto& policy = clusters[k]->policy();
    for (std::size_t i = 0; i < policy.endpoints().size(); ++i) {
      const auto& h = policy.endpoints()[i].health;
      for (const auto& [to, value] :
           {std::pair<std::string_view, std::uint64_t>{"healthy", h.became_healthy_total()},
            std::pair<std::string_view, std::uint64_t>{"unhealthy", h.became_unhealthy_total()}}) {
        p.sample("proxer_cluster_endpoint_health_transitions_total",
                 {{"cluster", clusters[k]->name()}, {"endpoint", labels[k][i]}, {"to", to}}, value);
      }
    }
  }
  // Pooled tunnel endpoints: each member, as the cluster's checks see it (`member`: agent id).
  p.family("proxer_cluster_endpoint_member_healthy", "gauge",
           "1 while the cluster's active health checks pass a member of a pooled tunnel "
           "endpoint (1 before its first check and without checks).");
  for_each_pool_member(
      ctx, clusters, [&](std::size_t k, std::size_t i, const auto& e, const Tunnel& m) {
        p.sample(
            "proxer_cluster_endpoint_member_healthy",
            {{"cluster", clusters[k]->name()}, {"endpoint", labels[k][i]}, {"member", m.agent_id}},
            e.members.excluded(m.id) ? 0u : 1u);
      });
  p.family("proxer_cluster_endpoint_member_health_transitions_total", "counter",
           "Verdict changes of the active health checks on a member of a pooled tunnel "
           "endpoint, by the verdict reached (a member that reconnects starts at 0).");
  for_each_pool_member(
      ctx, clusters, [&](std::size_t k, std::size_t i, const auto& e, const Tunnel& m) {
        const auto* state = e.members.find(m.id);
        const std::uint64_t up = state ? state->health.became_healthy_total() : 0;
        const std::uint64_t down = state ? state->health.became_unhealthy_total() : 0;
        for (const auto& [to, value] :
             {std::pair<std::string_view, std::uint64_t>{"healthy", up},
              std::pair<std::string_view, std::uint64_t>{"unhealthy", down}}) {
          p.sample("proxer_cluster_endpoint_member_health_transitions_total",
                   {{"cluster", clusters[k]->name()},
                    {"endpoint", labels[k][i]},
                    {"member", m.agent_id},
                    {"to", to}},
                   value);
        }
      });
  return p.take();
}

}  // namespace proxer::gateway
