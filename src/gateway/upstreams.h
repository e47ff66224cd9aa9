#pragma once
// The configured routes and their clusters at run time, as one table the gateway swaps whole on
// reload: a request holds the table it started with, so it finishes on the configuration it was
// routed by. Per cluster: the policy state of the proxy layer (balancer, in-flight counts) and,
// per direct endpoint, its connection pool and counters.
#include <memory>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/asio.h"
#include "gateway/direct_pool.h"
#include "gateway/registry.h"
#include "proxy/cluster.h"
#include "proxy/retry.h"
#include "proxy/router.h"

namespace proxer::gateway {

class UpstreamCluster {
 public:
  // Throws std::runtime_error when the upstream TLS context cannot be built (bad CA file).
  UpstreamCluster(net::any_io_executor ex, const config::ClusterConfig& cfg, std::uint64_t seed);
  const config::ClusterConfig& cfg() const { return policy_.cfg(); }
  const std::string& name() const { return policy_.name(); }
  proxy::Cluster& policy() { return policy_; }
  // The pool of endpoint `i` (parallel to policy().endpoints()); nullptr for a tunnel endpoint.
  const std::shared_ptr<DirectPool>& pool(std::size_t i) const { return pools_[i]; }
  // Takes over, for each endpoint whose URL `old` has too, its health verdicts (a pooled tunnel
  // endpoint's per member too), outlier state
  // (an ejected endpoint stays ejected), counters and pooled connections (a re-discovered
  // cluster keeps what it knew).
  void adopt(UpstreamCluster& old);
  // Counters of endpoint `i` when it is direct (a tunnel endpoint counts in its tunnel's).
  TunnelStats& stats(std::size_t i) { return stats_[i]; }

 private:
  proxy::Cluster policy_;
  std::vector<std::shared_ptr<DirectPool>> pools_;
  std::vector<TunnelStats> stats_;
};

// Whether tunnel endpoint `i` of `c` has a member that can take a request: an HTTP member that
// is usable and that the cluster's active checks of the endpoint do not exclude.
bool tunnel_endpoint_up(const Registry& registry, UpstreamCluster& c, std::size_t i);
// The member of tunnel endpoint `i` of `c` that takes a request the balancer of `c` sent to it:
// the cluster's policy (lb) applied among the members tunnel_endpoint_up() counts, with the
// request's hash key `key` (proxy/member.h). nullptr when there is none.
std::shared_ptr<Tunnel> pick_tunnel_member(Registry& registry, UpstreamCluster& c, std::size_t i,
                                           std::uint64_t key);

struct RouteTable {
  proxy::Router router;
  std::vector<std::shared_ptr<UpstreamCluster>> clusters;
  // Each route's retry policy, parsed once (parallel to router.routes()).
  std::vector<proxy::RetryPolicy> retry;
  // `route` is one of router.routes() (what match() returned).
  const proxy::RetryPolicy& retry_policy(const config::RouteConfig& route) const {
    return retry[static_cast<std::size_t>(&route - router.routes().data())];
  }
  std::shared_ptr<UpstreamCluster> cluster(std::string_view name) const {
    for (const auto& c : clusters) {
      if (c->name() == name) return c;
    }
    return nullptr;
  }
};

// Builds the table of `cfg` (routes and clusters). A cluster whose configuration is unchanged
// from `previous` is taken over whole (balancer position, health verdicts, ejections, pooled
// connections); a changed one starts afresh. Throws std::runtime_error naming the cluster when
// one cannot be built.
std::shared_ptr<RouteTable> build_route_table(net::any_io_executor ex,
                                              const config::GatewayConfig& cfg, std::uint64_t seed,
                                              const RouteTable* previous = nullptr);

}  // namespace proxer::gateway
