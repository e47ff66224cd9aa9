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
      breaker_(cfg_.circuit_breaker),
      retry_budget_(cfg_.circuit_breaker) {
  endpoints_.reserve(cfg_.endpoints.size());
  for (const auto& e : cfg_.endpoints) {
    endpoints_.emplace_back(e, cfg_.health_check);
    config::parse_endpoint(endpoints_.back().cfg, nullptr);
  }
}

bool Cluster::record(std::size_t i, OutlierDetector::Result result, TimePoint now) {
  if (i >= endpoints_.size()) return false;
  auto& e = endpoints_[i];
  ++e.requests;
  if (result == OutlierDetector::Result::ConnectFailure) ++e.connect_failures;
  if (result == OutlierDetector::Result::Http5xx) ++e.responses_5xx;
  return outlier_.record(i, result, now);
}

}  // namespace proxer::proxy
