#pragma once
// A cluster at run time: its configuration, its balancer, and what it tracks per endpoint
// (requests in flight, counters). Single-threaded: owned by the gateway's executor.
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/balancer.h"

namespace proxer::proxy {

struct EndpointState {
  config::EndpointConfig cfg;  // parsed (parse_endpoint)
  std::uint32_t active = 0;    // requests in flight
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;  // proxer-generated errors and 5xx answers
};

class Cluster {
 public:
  Cluster(config::ClusterConfig cfg, std::uint64_t seed);
  const config::ClusterConfig& cfg() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  std::vector<EndpointState>& endpoints() { return endpoints_; }
  Balancer& balancer() { return balancer_; }
  std::uint64_t no_endpoint = 0;  // requests answered 503: no endpoint could take them

 private:
  config::ClusterConfig cfg_;
  std::vector<EndpointState> endpoints_;
  Balancer balancer_;
};

// Counts a request in flight on an endpoint for as long as it lives.
class InFlight {
 public:
  explicit InFlight(EndpointState& ep) : ep_(&ep) {
    ++ep_->active;
    ++ep_->requests;
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() { --ep_->active; }

 private:
  EndpointState* ep_;
};

// Clusters by name (as configured) and the routes that lead to them.
std::vector<std::unique_ptr<Cluster>> build_clusters(const std::vector<config::ClusterConfig>& cfg,
                                                     std::uint64_t seed);

}  // namespace proxer::proxy
