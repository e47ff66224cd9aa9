#include "gateway/health_checker.h"

#include <algorithm>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

#include "core/log.h"
#include "gateway/context.h"
#include "http/response_head.h"
#include "http/rules.h"
#include "proxy/health.h"

namespace proxer::gateway {

using namespace net::experimental::awaitable_operators;

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxHead = 16 * 1024;  // a larger response head fails the check

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("health");  // NOLINT: immutable after first use
  return l;
}

// The Host header of a check: the configured one, a tunnel's name, or the endpoint's host with
// its port unless it is the scheme's default.
std::string host_header(const config::HealthCheckConfig& hc, const config::EndpointConfig& ep) {
  if (!hc.host.empty()) return hc.host;
  if (ep.tunnel) return ep.tunnel_name;
  if (ep.port != (ep.tls ? "443" : "80")) return transport::join_host_port(ep.host, ep.port);
  return ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
}

// Why a connection to a direct endpoint could not be made, in a few words.
std::string connect_reason(const ConnectResult& r) {
  if (r.stage == ConnectResult::Stage::Tls) {
    return r.ec == net::error::timed_out ? "TLS handshake timeout"
                                         : "TLS handshake failed: " + r.ec.message();
  }
  if (r.ec == net::error::timed_out) return "connect timeout";
  if (r.ec == net::error::connection_refused) return "connection refused";
  return "cannot connect: " + r.ec.message();
}

// Why no response head arrived (a tunnel stream's reset code tells what the agent saw).
std::string read_reason(const error_code& ec, const tunnel::Stream* s) {
  if (s && ec == net::error::connection_reset) {
    switch (s->reset_code()) {
      case proto::ErrorCode::ConnectRefused:
        return "the local service refused the connection";
      case proto::ErrorCode::ConnectTimeout:
        return "the local service did not accept the connection in time";
      default:
        return "the stream was reset";
    }
  }
  if (s && ec == net::error::connection_aborted) return "the agent disconnected";
  if (ec == net::error::eof) return "closed without a response";
  return "no response: " + ec.message();
}
}  // namespace

HealthChecker::HealthChecker(Context& ctx, std::shared_ptr<UpstreamCluster> cluster)
    : ctx_(ctx),
      cluster_(std::move(cluster)),
      hc_(cluster_->cfg().health_check),
      ex_(ctx.executor),
      rng_(std::random_device{}()) {
  auto& eps = cluster_->policy().endpoints();
  for (std::size_t i = 0; i < eps.size(); ++i) {
    auto e = std::make_unique<Endpoint>(ex_, eps[i].cfg, cluster_->pool(i));
    e->request = hc_.method + " " + hc_.path + " HTTP/1.1\r\nHost: " + host_header(hc_, e->cfg) +
                 "\r\nUser-Agent: proxer-health-check\r\nConnection: close\r\n\r\n";
    endpoints_.push_back(std::move(e));
  }
}

HealthChecker::~HealthChecker() {
  stop();
}

bool HealthChecker::current() const {
  const auto& eps = cluster_->policy().endpoints();
  if (!(cluster_->cfg().health_check == hc_) || eps.size() != endpoints_.size()) return false;
  for (std::size_t i = 0; i < eps.size(); ++i) {
    if (eps[i].cfg.url != endpoints_[i]->cfg.url) return false;
  }
  return true;
}

void HealthChecker::start() {
  if (started_ || stopped_) return;
  started_ = true;
  logger()->info("cluster '{}': health checks of {} endpoint(s): {} {} every {}, timeout {}",
                 cluster_->name(), endpoints_.size(), hc_.method, hc_.path,
                 config::format_duration(hc_.interval), config::format_duration(hc_.timeout));
  const auto span = std::max<std::int64_t>(hc_.interval.count(), 1);
  std::uniform_int_distribution<std::int64_t> jitter(0, span - 1);
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    net::co_spawn(ex_, run(shared_from_this(), i, std::chrono::milliseconds(jitter(rng_))),
                  DetachedTask{"health check"});
  }
}

void HealthChecker::stop() {
  if (stopped_) return;
  stopped_ = true;
  auto cancel = [](Probe& p) {
    p.timer.cancel();  // the wait between checks, or a probe's deadline (which ends the probe)
    if (p.up) p.up.abort();
  };
  for (auto& e : endpoints_) {
    cancel(e->main);
    for (auto& m : e->round) cancel(m->probe);
  }
}

awaitable<void> HealthChecker::run(std::shared_ptr<HealthChecker> self, std::size_t i,
                                   std::chrono::milliseconds first_delay) {
  // `self` keeps this checker (and through it the cluster) alive while the coroutine runs.
  auto& e = *self->endpoints_[i];
  auto next = Clock::now() + first_delay;
  while (!stopped_) {  // (stop() may come before this coroutine first runs)
    e.main.timer.expires_at(next);
    co_await e.main.timer.async_wait(use_nothrow);
    if (stopped_) co_return;
    next = Clock::now() + hc_.interval;
    if (pooled(i)) {
      co_await check_members(i);
      continue;
    }
    auto op = probe(i);
    auto o = co_await with_deadline(e.main, std::move(op));
    if (stopped_) co_return;  // from here on the cluster is not ours to touch
    record(i, o);
  }
}

awaitable<HealthChecker::Outcome> HealthChecker::with_deadline(Probe& p, awaitable<Outcome> op) {
  // One deadline for connect, TLS and the response head: whichever ends first wins, and the
  // operator cancels the other (expire() also aborts the probe's connection or stream).
  p.timer.expires_after(hc_.timeout);
  auto expire_op = expire(p);
  auto result = co_await (std::move(op) || std::move(expire_op));
  p.up.discard();  // never reused: the connection is closed, the stream reset
  if (result.index() == 0) co_return std::get<0>(std::move(result));
  Outcome o;
  o.reason = "timeout (no response head within " + config::format_duration(hc_.timeout) + ")";
  co_return o;
}

awaitable<void> HealthChecker::expire(Probe& p) {
  if (!stopped_) {
    auto [ec] = co_await p.timer.async_wait(use_nothrow);
    if (ec && !stopped_) co_return;  // the probe finished first and cancelled this wait
  }
  // The deadline passed, or stop(): a read or write in progress ends now.
  if (p.up) p.up.abort();
}

const TunnelPool* HealthChecker::pooled(std::size_t i) const {
  const auto& cfg = endpoints_[i]->cfg;
  if (!cfg.tunnel) return nullptr;
  const auto* p = ctx_.registry.pool(cfg.tunnel_name);
  return p && is_pool(*p) ? p : nullptr;
}

awaitable<void> HealthChecker::check_members(std::size_t i) {
  auto& e = *endpoints_[i];
  e.round.clear();
  if (const auto* p = pooled(i)) {
    for (const auto& m : p->members) {
      // A member whose session is closing is leaving the pool: it is not judged on its way out.
      if (!m->session || m->session->closed() || m->session->going_away()) continue;
      e.round.push_back(std::make_shared<MemberProbe>(ex_, m));
    }
  }
  std::vector<Outcome> outcomes;
  if (!e.round.empty()) {
    using Op = decltype(net::co_spawn(ex_, std::declval<awaitable<Outcome>>(), net::deferred));
    std::vector<Op> ops;
    ops.reserve(e.round.size());
    for (const auto& m : e.round) {
      ops.push_back(net::co_spawn(ex_, check_member(m, i), net::deferred));
    }
    // Each probe ends by its own deadline (or at once on stop()), so waiting for all is bounded.
    auto group = net::experimental::make_parallel_group(std::move(ops));
    const net::experimental::wait_for_all all;
    auto [order, errors, results] = co_await group.async_wait(all, net::use_awaitable);
    for (const auto& ex : errors) {
      if (ex) log_coroutine_exception(ex, "health check of a pool member");  // a bug
    }
    outcomes = std::move(results);
  }
  if (stopped_) co_return;  // from here on the cluster is not ours to touch
  record_members(i, outcomes);
  e.round.clear();
}

awaitable<HealthChecker::Outcome> HealthChecker::check_member(std::shared_ptr<MemberProbe> m,
                                                              std::size_t i) {
  // `m` stays alive while its probe runs; the checker itself is kept by run()'s `self`, which
  // waits for this.
  auto op = probe_tunnel(m->probe, m->member, i);
  co_return co_await with_deadline(m->probe, std::move(op));
}

awaitable<HealthChecker::Outcome> HealthChecker::probe(std::size_t i) {
  auto& e = *endpoints_[i];
  Outcome o;
  if (stopped_) co_return o;
  if (e.cfg.tunnel) {
    // Not a pool: its one member.
    auto t = ctx_.registry.pick(e.cfg.tunnel_name, proxy::Lb::RoundRobin);
    if (!t) {
      o.reason = "tunnel '" + e.cfg.tunnel_name +
                 "' has no connected agent (with a healthy local service)";
      co_return o;
    }
    co_return co_await probe_tunnel(e.main, t, i);
  }
  // A new connection, never a pooled one: the check must not hide a stale pool, and its
  // connection never goes back to the pool.
  const auto pool = e.pool;
  auto r = co_await pool->connect();
  if (stopped_) co_return o;
  if (r.ec) {
    o.reason = connect_reason(r);
    co_return o;
  }
  e.main.up = Upstream(std::move(r.conn));
  co_return co_await exchange(e.main, e.request);
}

awaitable<HealthChecker::Outcome> HealthChecker::probe_tunnel(Probe& p,
                                                              const std::shared_ptr<Tunnel>& t,
                                                              std::size_t i) {
  const auto& e = *endpoints_[i];
  Outcome o;
  if (stopped_) co_return o;
  if (t->type != proto::TunnelType::Http) {
    o.reason = "tunnel '" + e.cfg.tunnel_name + "' is not an HTTP tunnel";
    co_return o;
  }
  if (!t->session || t->session->closed()) {
    o.reason = "the agent disconnected";
    co_return o;
  }
  // "health-check" is no address: a PROXY protocol header says UNKNOWN / LOCAL.
  const proto::OpenStream open{e.cfg.tunnel_name, "health-check", {}};
  auto s = t->session->open_stream(open);
  if (!s) {
    o.reason = "the agent serving tunnel '" + e.cfg.tunnel_name + "' takes no more streams";
    co_return o;
  }
  p.up = Upstream(std::move(s));
  co_return co_await exchange(p, e.request);
}

awaitable<HealthChecker::Outcome> HealthChecker::exchange(Probe& p, const std::string& request) {
  Outcome o;
  if (auto ec = co_await p.up.write(net::buffer(request))) {
    o.reason = stopped_ ? "stopped" : read_reason(ec, p.up.stream());
    co_return o;
  }
  for (;;) {
    std::size_t head_len = 0;
    for (;;) {
      const auto data = p.up.peek_all();
      if (auto end = http::find_head_end(data); end != std::string_view::npos) {
        head_len = end;
        break;
      }
      if (data.size() > kMaxHead) {
        o.reason = "response head larger than " + std::to_string(kMaxHead / 1024) + " KiB";
        co_return o;
      }
      if (auto ec = co_await p.up.wait_more(data.size())) {
        o.reason = stopped_ ? "stopped" : read_reason(ec, p.up.stream());
        co_return o;
      }
    }
    const auto head = p.up.peek_all().substr(0, head_len);
    // The relay's own rules (so "HTTP/1.1 200" without a reason passes, as the agent's check
    // and the relay accept it).
    http::ResponseHead parsed;
    if (auto bad = http::parse_response_head(head, parsed)) {
      o.reason = "malformed response head: " + *bad;
      co_return o;
    }
    const unsigned status = parsed.status;
    p.up.consume(head_len);
    if (status >= 100 && status < 200 && status != 101) continue;  // interim: the real one follows
    if (!proxy::status_expected(status, hc_)) {
      o.reason = "status " + std::to_string(status);
      co_return o;
    }
    o.passed = true;
    co_return o;
  }
}

void HealthChecker::record(std::size_t i, const Outcome& o) {
  ++stats_.checks;
  if (!o.passed) ++stats_.failed;
  auto& eps = cluster_->policy().endpoints();
  // The endpoint set changed under this checker: the verdict is not this endpoint's to give.
  if (i >= eps.size() || eps[i].cfg.url != endpoints_[i]->cfg.url) return;
  // Checked as one endpoint now (not a pool, or no member left): no member has a verdict.
  eps[i].members.clear();
  auto& tracker = eps[i].health;
  const auto& url = endpoints_[i]->cfg.url;
  switch (tracker.record(o.passed)) {
    case proxy::HealthTracker::Transition::BecameUnhealthy:
      ++stats_.became_unhealthy;
      logger()->warn(
          "cluster '{}': endpoint {} is unhealthy after {} failed check(s) in a row (last: {}); "
          "it gets no traffic until {} check(s) in a row pass",
          cluster_->name(), url, tracker.consecutive_failures(), o.reason, hc_.healthy_threshold);
      break;
    case proxy::HealthTracker::Transition::BecameHealthy:
      ++stats_.became_healthy;
      logger()->info("cluster '{}': endpoint {} is healthy again after {} passed check(s) in a row",
                     cluster_->name(), url, tracker.consecutive_passes());
      break;
    case proxy::HealthTracker::Transition::None:
      if (!o.passed) {
        logger()->debug("cluster '{}': health check of {} failed: {}", cluster_->name(), url,
                        o.reason);
      }
      break;
  }
}

void HealthChecker::record_members(std::size_t i, const std::vector<Outcome>& outcomes) {
  const auto& round = endpoints_[i]->round;
  for (const auto& o : outcomes) {
    ++stats_.checks;
    if (!o.passed) ++stats_.failed;
  }
  auto& eps = cluster_->policy().endpoints();
  if (i >= eps.size() || eps[i].cfg.url != endpoints_[i]->cfg.url) return;
  auto& ep = eps[i];
  const auto& url = endpoints_[i]->cfg.url;
  const auto& name = endpoints_[i]->cfg.tunnel_name;
  // The members now (some may have left during the round): the others' state goes.
  const auto* pool = ctx_.registry.pool(name);
  std::vector<std::uint64_t> present;
  if (pool) {
    for (const auto& m : pool->members) present.push_back(m->id);
  }
  ep.members.retain(present);
  using T = proxy::HealthTracker::Transition;
  for (std::size_t k = 0; k < round.size() && k < outcomes.size(); ++k) {
    const auto& t = *round[k]->member;
    const auto& o = outcomes[k];
    if (std::find(present.begin(), present.end(), t.id) == present.end()) continue;  // it left
    const auto transition = ep.members.record(t.id, t.agent_id, o.passed, o.reason);
    const auto* state = ep.members.find(t.id);
    if (transition == T::BecameUnhealthy) {
      ++stats_.member_became_unhealthy;
      logger()->warn(
          "cluster '{}': endpoint {}: member '{}' is unhealthy after {} failed check(s) in a row "
          "(last: {}); it gets no traffic from this cluster until {} check(s) in a row pass",
          cluster_->name(), url, t.agent_id, state->health.consecutive_failures(), o.reason,
          hc_.healthy_threshold);
    } else if (transition == T::BecameHealthy) {
      ++stats_.member_became_healthy;
      logger()->info(
          "cluster '{}': endpoint {}: member '{}' is healthy again after {} passed check(s) in a "
          "row",
          cluster_->name(), url, t.agent_id, state->health.consecutive_passes());
    } else if (!o.passed) {
      logger()->debug("cluster '{}': health check of {} member '{}' failed: {}", cluster_->name(),
                      url, t.agent_id, o.reason);
    }
  }
  // The endpoint: healthy while a member can take its requests.
  const std::size_t members = present.size();
  std::size_t in_rotation = 0;
  if (pool) {
    for (const auto& m : pool->members) {
      if (m->type == proto::TunnelType::Http && usable(*m, &ep.members)) ++in_rotation;
    }
  }
  switch (ep.health.set(in_rotation > 0)) {
    case T::BecameUnhealthy:
      ++stats_.became_unhealthy;
      logger()->warn(
          "cluster '{}': endpoint {} is unhealthy: none of its {} member(s) passes the checks and "
          "can take requests; it gets no traffic until one does",
          cluster_->name(), url, members);
      break;
    case T::BecameHealthy:
      ++stats_.became_healthy;
      logger()->info(
          "cluster '{}': endpoint {} is healthy again: {} of its {} member(s) in rotation",
          cluster_->name(), url, in_rotation, members);
      break;
    case T::None:
      break;
  }
}

}  // namespace proxer::gateway
