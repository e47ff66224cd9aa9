#include "gateway/upstreams.h"

#include <stdexcept>

#include "transport/stream.h"

namespace proxer::gateway {

UpstreamCluster::UpstreamCluster(net::any_io_executor ex, const config::ClusterConfig& cfg,
                                 std::uint64_t seed)
    : policy_(cfg, seed) {
  std::shared_ptr<transport::ssl::context> tls;
  for (const auto& ep : policy_.endpoints()) {
    if (ep.cfg.tunnel) {
      pools_.emplace_back();
      continue;
    }
    if (ep.cfg.tls && !tls) {
      try {
        tls = transport::make_client_tls_context(cfg.ca_file, cfg.insecure);
      } catch (const std::exception& e) {
        throw std::runtime_error("clusters." + cfg.name + ": " + e.what());
      }
    }
    DirectPool::Options o;
    o.host = ep.cfg.host;
    o.port = ep.cfg.port;
    o.tls = ep.cfg.tls;
    o.server_name = cfg.server_name.empty() ? ep.cfg.host : cfg.server_name;
    o.tls_context = ep.cfg.tls ? tls : nullptr;
    o.connect_timeout = cfg.connect_timeout;
    o.tls_timeout = cfg.tls_handshake_timeout;
    o.max_idle = cfg.max_idle;
    o.idle_timeout = cfg.idle_timeout;
    pools_.push_back(std::make_shared<DirectPool>(ex, std::move(o)));
  }
  stats_.resize(pools_.size());
}

void UpstreamCluster::adopt(UpstreamCluster& old) {
  auto& mine = policy_.endpoints();
  auto& theirs = old.policy_.endpoints();
  for (std::size_t i = 0; i < mine.size(); ++i) {
    for (std::size_t j = 0; j < theirs.size(); ++j) {
      if (theirs[j].cfg.url != mine[i].cfg.url) continue;
      mine[i].health = theirs[j].health;
      mine[i].members = theirs[j].members;
      mine[i].requests = theirs[j].requests;
      mine[i].connect_failures = theirs[j].connect_failures;
      mine[i].responses_5xx = theirs[j].responses_5xx;
      policy_.outlier().carry_over(i, old.policy_.outlier(), j);
      if (pools_[i] && old.pools_[j]) pools_[i] = old.pools_[j];
      stats_[i] = old.stats_[j];
      break;
    }
  }
}

std::shared_ptr<RouteTable> build_route_table(net::any_io_executor ex,
                                              const config::GatewayConfig& cfg, std::uint64_t seed,
                                              const RouteTable* previous) {
  auto table = std::make_shared<RouteTable>(RouteTable{proxy::Router(cfg.routes), {}, {}});
  for (const auto& r : cfg.routes) table->retry.emplace_back(r.retry);
  for (const auto& c : cfg.clusters) {
    auto old = previous ? previous->cluster(c.name) : nullptr;
    if (old && old->cfg() == c) {
      table->clusters.push_back(std::move(old));
    } else {
      table->clusters.push_back(std::make_shared<UpstreamCluster>(ex, c, seed++));
    }
  }
  return table;
}

}  // namespace proxer::gateway

namespace proxer::gateway {

bool tunnel_endpoint_up(const Registry& registry, UpstreamCluster& c, std::size_t i) {
  const auto& ep = c.policy().endpoints()[i];
  return registry.has_usable(ep.cfg.tunnel_name, proto::TunnelType::Http, &ep.members);
}

std::shared_ptr<Tunnel> pick_tunnel_member(Registry& registry, UpstreamCluster& c, std::size_t i,
                                           std::uint64_t key) {
  const auto lb = proxy::parse_lb(c.cfg().lb).value_or(proxy::Lb::RoundRobin);
  const auto& ep = c.policy().endpoints()[i];
  return registry.pick(ep.cfg.tunnel_name, lb, key, &ep.members);
}

}  // namespace proxer::gateway
