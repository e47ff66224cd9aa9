#pragma once
// A cluster at run time: its configuration, its balancer, and the policy state the forwarder
// consults and feeds: requests in flight per endpoint (least_request reads them), active health
// verdicts, passive outlier ejection, the circuit breaker, and the retry budget with its counters.
// Single-threaded: owned by the gateway's executor. Not movable (the breaker hands out tokens
// that point at it): keep it where it was built.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/balancer.h"
#include "proxy/breaker.h"
#include "proxy/health.h"
#include "proxy/member_health.h"
#include "proxy/outlier.h"
#include "proxy/retry.h"

namespace proxer::proxy {

struct EndpointState {
  EndpointState(const config::EndpointConfig& c, const config::HealthCheckConfig& hc)
      : cfg(c), health(hc), members(hc) {}
  config::EndpointConfig cfg;  // parsed (parse_endpoint)
  std::uint32_t active = 0;    // requests in flight
  HealthTracker health;        // active checks' verdict (healthy while checks are off)
  // A tunnel endpoint whose tunnel is a pool: the active checks' verdict on each member (empty
  // otherwise). The endpoint's `health` is then derived: healthy while a usable member passes.
  MemberHealth members;
  // Attempts sent to this endpoint, and how they failed (Cluster::record counts them).
  std::uint64_t requests = 0;
  std::uint64_t connect_failures = 0;  // no response head: refused, reset, timed out
  std::uint64_t responses_5xx = 0;
};

// Counters of a cluster, for the admin API and metrics.
struct ClusterStats {
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  std::uint64_t no_endpoint = 0;         // 503: no endpoint could take a request
  std::uint64_t circuit_open = 0;        // 503: a breaker limit refused a request
  std::uint64_t retry_budget_spent = 0;  // retries not made because the budget was used up
  std::uint64_t timeouts = 0;            // 504
  std::uint64_t upstream_errors = 0;     // 502 answered by the gateway
};

class Cluster {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  Cluster(config::ClusterConfig cfg, std::uint64_t seed);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const config::ClusterConfig& cfg() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  std::vector<EndpointState>& endpoints() { return endpoints_; }
  Balancer& balancer() { return balancer_; }
  OutlierDetector& outlier() { return outlier_; }
  CircuitBreaker& breaker() { return breaker_; }
  // From circuit_breaker.retry_budget_*; a config change (a reload) builds a new Cluster.
  const RetryBudget& retry_budget() const { return retry_budget_; }
  // Whether the budget allows one more retry now, on this cluster's counters.
  bool retry_budget_allows() const { return retry_budget_.allow(active_requests, active_retries); }
  ClusterStats& stats() { return stats_; }

  // Whether endpoint `i` may get traffic now as far as health is concerned: not ejected by the
  // outlier detector, and healthy by the active checks (when configured).
  bool in_rotation(std::size_t i, TimePoint now) {
    return endpoints_[i].health.healthy() && !outlier_.ejected(i, now);
  }

  // The result of one attempt on endpoint `i`: counted in the endpoint's counters and fed to
  // the outlier detector. True when this ejected the endpoint.
  bool record(std::size_t i, OutlierDetector::Result result, TimePoint now);

  std::uint64_t active_requests = 0;  // requests in flight (the retry budget's base)
  std::uint64_t active_retries = 0;   // retries in flight

 private:
  config::ClusterConfig cfg_;
  std::vector<EndpointState> endpoints_;
  Balancer balancer_;
  OutlierDetector outlier_;
  CircuitBreaker breaker_;
  RetryBudget retry_budget_;
  ClusterStats stats_;
};

// Counts a request in flight on an endpoint for as long as it lives.
class InFlight {
 public:
  explicit InFlight(EndpointState& ep) : ep_(&ep) { ++ep_->active; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() { --ep_->active; }

 private:
  EndpointState* ep_;
};

}  // namespace proxer::proxy
