#include "gateway/discovered.h"

#include <random>
#include <stdexcept>

#include "core/log.h"
#include "discovery/dns.h"
#include "discovery/etcd.h"
#include "discovery/file.h"

namespace proxer::gateway {

namespace {

std::unique_ptr<discovery::Provider> make_provider(net::any_io_executor ex,
                                                   const config::DiscoveryConfig& d) {
  if (d.type == "dns") {
    discovery::DnsOptions o;
    o.name = d.name;
    o.port = d.port;
    o.nameserver = d.nameserver;
    discovery::parse_dns_type(d.record, o.type);
    return std::make_unique<discovery::DnsProvider>(ex, std::move(o));
  }
  if (d.type == "etcd") {
    discovery::EtcdOptions o;
    o.endpoint = d.endpoint;
    o.prefix = d.prefix;
    return std::make_unique<discovery::EtcdProvider>(ex, std::move(o));
  }
  discovery::FileOptions o;
  o.path = d.path;
  return std::make_unique<discovery::FileProvider>(ex, std::move(o));
}

}  // namespace

DiscoveredClusters::DiscoveredClusters(Context& ctx, std::function<void()> on_swap)
    : ctx_(ctx), on_swap_(std::move(on_swap)) {}

DiscoveredClusters::~DiscoveredClusters() {
  stop();
}

void DiscoveredClusters::stop() {
  for (auto& [name, e] : entries_) {
    if (e.provider) e.provider->stop();
  }
  entries_.clear();
}

void DiscoveredClusters::sync(config::GatewayConfig& cfg) {
  std::map<std::string, Entry> next;
  for (auto& c : cfg.clusters) {
    if (!c.discovery.enabled()) continue;
    auto old = entries_.find(c.name);
    if (old != entries_.end() && old->second.cfg == c.discovery) {
      c.endpoints = old->second.endpoints;
      next.emplace(c.name, std::move(old->second));
      entries_.erase(old);
      continue;
    }
    Entry e;
    e.cfg = c.discovery;
    try {
      e.provider = make_provider(ctx_.executor, c.discovery);
    } catch (const std::exception& ex) {
      throw std::invalid_argument("clusters." + c.name + ".discovery: " + ex.what());
    }
    next.emplace(c.name, std::move(e));
  }
  stop();  // providers of clusters that left or changed
  entries_ = std::move(next);
  for (auto& [name, e] : entries_) {
    if (e.provider && !e.started) {
      e.started = true;
      e.provider->start([this, name = name](const std::vector<discovery::Target>& targets) {
        update(name, targets);
      });
    }
  }
}

void DiscoveredClusters::update(const std::string& cluster,
                                const std::vector<discovery::Target>& targets) {
  auto logger = log::get("gateway");
  auto it = entries_.find(cluster);
  if (it == entries_.end()) return;
  auto& entry = it->second;
  std::vector<config::EndpointConfig> eps;
  for (const auto& t : targets) {
    config::EndpointConfig ep;
    ep.url = entry.cfg.scheme + "://" + discovery::to_string(t);
    ep.weight = t.weight;
    std::string why;
    if (!config::parse_endpoint(ep, &why)) {
      logger->warn("cluster '{}': discovered endpoint {} skipped: {}", cluster, ep.url, why);
      continue;
    }
    eps.push_back(std::move(ep));
  }
  entry.endpoints = eps;
  auto table = ctx_.routes;
  auto old = table ? table->cluster(cluster) : nullptr;
  if (!old) return;
  auto cfg = old->cfg();
  cfg.endpoints = std::move(eps);
  auto fresh = std::make_shared<UpstreamCluster>(ctx_.executor, cfg, std::random_device{}());
  fresh->adopt(*old);
  auto next = std::make_shared<RouteTable>(*table);
  for (auto& c : next->clusters) {
    if (c == old) c = fresh;
  }
  ctx_.routes = std::move(next);
  std::string list;
  for (const auto& e : cfg.endpoints) list += (list.empty() ? "" : ", ") + e.url;
  logger->info("cluster '{}': {} endpoints discovered{}{}", cluster, cfg.endpoints.size(),
               list.empty() ? "" : ": ", list);
  if (on_swap_) on_swap_();
}

}  // namespace proxer::gateway
