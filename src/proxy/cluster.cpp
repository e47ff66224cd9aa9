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
      balancer_(parse_lb(cfg_.lb).value_or(Lb::RoundRobin), balancer_endpoints(cfg_), seed),
      outlier_(cfg_.outlier, cfg_.endpoints.size()),
      breaker_(cfg_.circuit_breaker) {
  endpoints_.reserve(cfg_.endpoints.size());
  for (const auto& e : cfg_.endpoints) {
    endpoints_.emplace_back(e, cfg_.health_check);
    config::parse_endpoint(endpoints_.back().cfg, nullptr);
  }
}

}  // namespace proxer::proxy
