#pragma once
// What the admin listener exports about the gateway, its tunnels and its clusters: the JSON of
// GET /api/clusters and the Prometheus text of GET /metrics. Read-only views of the counters the
// forwarding path keeps (GatewayStats, TunnelStats, proxy::ClusterStats, the endpoints' health,
// outlier and in-flight state, the circuit breakers). docs/API.md lists every field and series.
#include <chrono>
#include <string>

#include "gateway/context.h"

namespace proxer::gateway {

// {"clusters": [...]} for the clusters of the current route table, in name order.
std::string clusters_json(const Context& ctx, std::chrono::steady_clock::time_point now);

// Prometheus text exposition format 0.0.4.
std::string prometheus_metrics(const Context& ctx, std::chrono::steady_clock::time_point now);

}  // namespace proxer::gateway
