#pragma once
// A cluster at run time: its configuration, its balancer, and the requests in flight per
// endpoint (least_request reads them). Single-threaded: owned by the gateway's executor.
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/balancer.h"

namespace proxer::proxy {

struct EndpointState {
  config::EndpointConfig cfg;  // parsed (parse_endpoint)
  std::uint32_t active = 0;    // requests in flight
};

class Cluster {
 public:
  Cluster(config::ClusterConfig cfg, std::uint64_t seed);
  const config::ClusterConfig& cfg() const { return cfg_; }
  const std::string& name() const { return cfg_.name; }
  std::vector<EndpointState>& endpoints() { return endpoints_; }
  Balancer& balancer() { return balancer_; }

 private:
  config::ClusterConfig cfg_;
  std::vector<EndpointState> endpoints_;
  Balancer balancer_;
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

// One Cluster per configured cluster, in configuration order; seeds differ per cluster.
std::vector<std::unique_ptr<Cluster>> build_clusters(const std::vector<config::ClusterConfig>& cfg,
                                                     std::uint64_t seed);

}  // namespace proxer::proxy
