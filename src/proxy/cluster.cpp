#include "proxy/cluster.h"

namespace proxer::proxy {

namespace {

std::vector<Balancer::Endpoint> balancer_endpoints(const config::ClusterConfig& cfg) {
  std::vector<Balancer::Endpoint> out;
  for (const auto& e : cfg.endpoints) out.push_back({e.url, e.weight});
  return out;
}

}  // namespace

Cluster::Cluster(config::ClusterConfig cfg, std::uint64_t seed)
    : cfg_(std::move(cfg)),
      balancer_(parse_lb(cfg_.lb).value_or(Lb::RoundRobin), balancer_endpoints(cfg_), seed) {
  for (const auto& e : cfg_.endpoints) {
    EndpointState s;
    s.cfg = e;
    config::parse_endpoint(s.cfg, nullptr);
    endpoints_.push_back(std::move(s));
  }
}

std::vector<std::unique_ptr<Cluster>> build_clusters(const std::vector<config::ClusterConfig>& cfg,
                                                     std::uint64_t seed) {
  std::vector<std::unique_ptr<Cluster>> out;
  for (const auto& c : cfg) out.push_back(std::make_unique<Cluster>(c, seed++));
  return out;
}

}  // namespace proxer::proxy
