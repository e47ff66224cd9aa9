#pragma once
// Active health checks of one cluster ([clusters.NAME.health_check]): the I/O half. One coroutine
// per endpoint sends a probe every `interval` (the first after a random delay in [0, interval),
// so endpoints are not probed in lockstep) and feeds its outcome to the endpoint's
// proxy::HealthTracker, whose verdict the router's pick() reads.
//
//   - direct endpoint: a new connection from its DirectPool (never a pooled one, never given
//     back), `METHOD path HTTP/1.1` with `Connection: close`, the response head read and its
//     status parsed; one deadline (`timeout`) covers connect, TLS and the response head;
//   - tunnel endpoint: fails at once when the tunnel has no live agent session; else a stream
//     opened on the session carries the same request, and is reset after the response head.
//
// A transition is logged once (warn with the last failure's reason when an endpoint becomes
// unhealthy, info when it is healthy again) and counted by the tracker. Runs on the gateway's
// executor; stop() cancels every timer and probe at once, and after it no coroutine touches the
// cluster or the context again.
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/asio.h"
#include "gateway/upstream.h"
#include "gateway/upstreams.h"

namespace proxer::gateway {

struct Context;

// Counters of one cluster's checker (the transitions are also in each endpoint's tracker).
struct HealthCheckStats {
  std::uint64_t checks = 0;            // probes finished (passed or failed)
  std::uint64_t failed = 0;            // probes that failed
  std::uint64_t became_unhealthy = 0;  // transitions of any endpoint
  std::uint64_t became_healthy = 0;
};

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  // `cluster` must have health checks enabled; `ctx` must outlive the checker's start() to stop().
  HealthChecker(Context& ctx, std::shared_ptr<UpstreamCluster> cluster);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts one coroutine per endpoint. Once only.
  void start();
  // Cancels every check now (timers, connections, streams). Idempotent.
  void stop();

  const std::shared_ptr<UpstreamCluster>& cluster() const { return cluster_; }
  // Whether the cluster still has the endpoints and health_check settings this checker was built
  // for (endpoints can change in place, e.g. by discovery): if not, replace the checker.
  bool current() const;
  const HealthCheckStats& stats() const { return stats_; }
  bool stopped() const { return stopped_; }

 private:
  // One endpoint's probing state. The timer serves both as the wait between checks and as a
  // probe's deadline, so cancelling it is all stop() has to do to wake a coroutine.
  // The endpoint's configuration and pool are copied at construction, so a probe reads only
  // this; the cluster itself is touched only to record an outcome (never after stop()).
  struct Endpoint {
    Endpoint(const net::any_io_executor& ex, config::EndpointConfig c,
             std::shared_ptr<DirectPool> p)
        : timer(ex), cfg(std::move(c)), pool(std::move(p)) {}
    net::steady_timer timer;
    config::EndpointConfig cfg;
    std::shared_ptr<DirectPool> pool;  // nullptr for a tunnel endpoint
    std::string request;               // the probe's request bytes
    Upstream up;                       // the probe's connection or stream while it runs
  };
  struct Outcome {
    bool passed = false;
    std::string reason;  // why it failed ("status 503", "connection refused", ...)
  };

  awaitable<void> run(std::shared_ptr<HealthChecker> self, std::size_t i,
                      std::chrono::milliseconds first_delay);
  awaitable<Outcome> probe(std::size_t i);
  awaitable<Outcome> exchange(std::size_t i);
  awaitable<void> expire(std::size_t i);
  void record(std::size_t i, const Outcome& o);

  Context& ctx_;
  std::shared_ptr<UpstreamCluster> cluster_;
  config::HealthCheckConfig hc_;
  net::any_io_executor ex_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::mt19937_64 rng_;
  HealthCheckStats stats_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace proxer::gateway
