#pragma once
// Clusters whose endpoints come from service discovery ([clusters.NAME.discovery]): one provider
// (src/discovery) per such cluster; each update rebuilds that cluster with the discovered
// endpoints and swaps it into the route table, carrying over the health verdicts, counters and
// idle connections of endpoints that stay. Runs on the gateway's executor.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "discovery/provider.h"
#include "gateway/context.h"

namespace proxer::gateway {

class DiscoveredClusters {
 public:
  // `on_swap` runs after a cluster was replaced in ctx.routes (the gateway restarts the health
  // checks of the new cluster object).
  DiscoveredClusters(Context& ctx, std::function<void()> on_swap);
  ~DiscoveredClusters();
  DiscoveredClusters(const DiscoveredClusters&) = delete;
  DiscoveredClusters& operator=(const DiscoveredClusters&) = delete;

  // Makes the providers match the discovery clusters of `cfg` (keeps those whose discovery
  // settings are unchanged, starts new ones, stops the rest) and fills those clusters' endpoints
  // in `cfg` with what was discovered so far, so a reload keeps them. Throws
  // std::invalid_argument naming the cluster when a provider cannot be built.
  void sync(config::GatewayConfig& cfg);
  void stop();

 private:
  struct Entry {
    config::DiscoveryConfig cfg;
    std::unique_ptr<discovery::Provider> provider;
    std::vector<config::EndpointConfig> endpoints;  // last discovered
    bool started = false;
  };
  void update(const std::string& cluster, const std::vector<discovery::Target>& targets);

  Context& ctx_;
  std::function<void()> on_swap_;
  std::map<std::string, Entry> entries_;
};

}  // namespace proxer::gateway
