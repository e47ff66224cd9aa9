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
//     opened on the session carries the same request, and is reset after the response head;
//   - tunnel endpoint whose tunnel is a pool (its members registered with pool = true): every
//     member whose session is up is probed on each interval, at once, each with its own
//     deadline; each outcome goes to the member's tracker (EndpointState::members, per cluster
//     endpoint and member), and the endpoint's verdict is set from them: healthy while a usable
//     member passes. A member that fails gets no requests through this endpoint.
//
// A transition of an endpoint or of a member is logged once (warn with the last failure's reason
// when it becomes unhealthy, info when it is healthy again) and counted by the tracker. Runs on
// the gateway's executor; stop() cancels every timer and probe at once, and after it no
// coroutine touches the cluster or the context again.
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
  std::uint64_t member_became_unhealthy = 0;  // transitions of any member of a pooled tunnel
  std::uint64_t member_became_healthy = 0;
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
  // One probe in flight: its deadline and its connection or stream. Cancelling the timer is all
  // stop() has to do to end the probe (expire() then aborts `up`).
  struct Probe {
    explicit Probe(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    Upstream up;
  };
  // One member of a pooled tunnel in the current round.
  struct MemberProbe {
    MemberProbe(const net::any_io_executor& ex, std::shared_ptr<Tunnel> t)
        : probe(ex), member(std::move(t)) {}
    Probe probe;
    std::shared_ptr<Tunnel> member;
  };
  // One endpoint's probing state. Its probe's timer serves both as the wait between checks and
  // as the probe's deadline. The endpoint's configuration and pool are copied at construction,
  // so a probe reads only this; the cluster itself is touched only to record an outcome (never
  // after stop()).
  struct Endpoint {
    Endpoint(const net::any_io_executor& ex, config::EndpointConfig c,
             std::shared_ptr<DirectPool> p)
        : main(ex), cfg(std::move(c)), pool(std::move(p)) {}
    Probe main;
    config::EndpointConfig cfg;
    std::shared_ptr<DirectPool> pool;                 // nullptr for a tunnel endpoint
    std::string request;                              // the probe's request bytes
    std::vector<std::shared_ptr<MemberProbe>> round;  // a pool's members being probed now
  };
  struct Outcome {
    bool passed = false;
    std::string reason;  // why it failed ("status 503", "connection refused", ...)
  };

  awaitable<void> run(std::shared_ptr<HealthChecker> self, std::size_t i,
                      std::chrono::milliseconds first_delay);
  // The members of endpoint i's tunnel when it is a pool (some member set pool = true), else
  // nullptr: then the endpoint is probed as one.
  const TunnelPool* pooled(std::size_t i) const;
  // Probes every member of endpoint i's pool at once and records the outcomes.
  awaitable<void> check_members(std::size_t i);
  awaitable<Outcome> check_member(std::shared_ptr<MemberProbe> m, std::size_t i);
  // Runs `op` (a probe that uses `p`) against p's deadline (`timeout` from now).
  awaitable<Outcome> with_deadline(Probe& p, awaitable<Outcome> op);
  awaitable<Outcome> probe(std::size_t i);
  awaitable<Outcome> probe_tunnel(Probe& p, const std::shared_ptr<Tunnel>& t, std::size_t i);
  awaitable<Outcome> exchange(Probe& p, const std::string& request);
  awaitable<void> expire(Probe& p);
  void record(std::size_t i, const Outcome& o);
  // The outcomes of a round of endpoint i's members (parallel to endpoints_[i]->round).
  void record_members(std::size_t i, const std::vector<Outcome>& outcomes);

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
