#pragma once
// State shared by the gateway's parts: immutable configuration, the registry, counters. Lives
// as long as the Gateway; every part runs on the gateway's single executor.
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "core/asio.h"
#include "gateway/registry.h"
#include "gateway/upstreams.h"
#include "proxy/safety.h"

namespace proxer::gateway {

struct GatewayStats {
  std::uint64_t agent_sessions_total = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t requests_total = 0;
  std::uint64_t requests_active = 0;
  std::uint64_t connections_active = 0;
};

struct PollSession;

struct Context {
  Context(config::GatewayConfig c, net::any_io_executor ex)
      : cfg(std::move(c)),
        safety(cfg.http),
        executor(ex),
        routes(build_route_table(ex, cfg, std::random_device{}())) {}
  const config::GatewayConfig cfg;
  const proxy::RequestSafety safety;  // cfg.http, parsed
  net::any_io_executor executor;      // the gateway's one loop
  std::string public_url;             // base URL printed to agents
  std::uint16_t public_port = 0;      // actual port of the public listener
  Registry registry;
  GatewayStats stats;
  bool draining = false;
  // Long-poll carrier sessions by id (gateway/poll_carrier.h).
  std::unordered_map<std::string, std::shared_ptr<PollSession>> poll_sessions;
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  // Configured routes and their clusters ([[routes]], [clusters.NAME]); replaced whole on
  // reload, while requests keep the table they were routed by.
  std::shared_ptr<RouteTable> routes;
};

}  // namespace proxer::gateway
