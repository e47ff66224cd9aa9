#include "gateway/health_checker.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "core/log.h"
#include "gateway/context.h"
#include "http/rules.h"
#include "proxy/health.h"

namespace proxer::gateway {

using namespace net::experimental::awaitable_operators;
namespace bhttp = boost::beast::http;

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
  for (auto& e : endpoints_) {
    e->timer.cancel();  // the wait between checks, or a probe's deadline (which ends the probe)
    if (e->up) e->up.abort();
  }
}

awaitable<void> HealthChecker::run(std::shared_ptr<HealthChecker> self, std::size_t i,
                                   std::chrono::milliseconds first_delay) {
  // `self` keeps this checker (and through it the cluster) alive while the coroutine runs.
  auto& e = *self->endpoints_[i];
  auto next = Clock::now() + first_delay;
  while (!stopped_) {  // (stop() may come before this coroutine first runs)
    e.timer.expires_at(next);
    co_await e.timer.async_wait(use_nothrow);
    if (stopped_) co_return;
    next = Clock::now() + hc_.interval;
    // One deadline for connect, TLS and the response head: whichever ends first wins, and the
    // operator cancels the other (expire() also aborts the probe's connection or stream).
    e.timer.expires_after(hc_.timeout);
    auto probe_op = probe(i);
    auto expire_op = expire(i);
    auto result = co_await (std::move(probe_op) || std::move(expire_op));
    e.up.discard();           // never reused: the connection is closed, the stream reset
    if (stopped_) co_return;  // from here on the cluster is not ours to touch
    if (result.index() == 0) {
      record(i, std::get<0>(result));
    } else {
      Outcome o;
      o.reason = "timeout (no response head within " + config::format_duration(hc_.timeout) + ")";
      record(i, o);
    }
  }
}

awaitable<void> HealthChecker::expire(std::size_t i) {
  auto& e = *endpoints_[i];
  if (!stopped_) {
    auto [ec] = co_await e.timer.async_wait(use_nothrow);
    if (ec && !stopped_) co_return;  // the probe finished first and cancelled this wait
  }
  // The deadline passed, or stop(): a read or write in progress ends now.
  if (e.up) e.up.abort();
}

awaitable<HealthChecker::Outcome> HealthChecker::probe(std::size_t i) {
  auto& e = *endpoints_[i];
  Outcome o;
  if (stopped_) co_return o;
  if (e.cfg.tunnel) {
    // A pooled tunnel: each check goes to the next usable member (per-member health is the
    // agents' own checks, TUNNEL_HEALTH).
    auto t = ctx_.registry.pick(e.cfg.tunnel_name, proxy::Lb::RoundRobin);
    if (!t) {
      o.reason = "tunnel '" + e.cfg.tunnel_name +
                 "' has no connected agent (with a healthy local service)";
      co_return o;
    }
    if (t->type != proto::TunnelType::Http) {
      o.reason = "tunnel '" + e.cfg.tunnel_name + "' is not an HTTP tunnel";
      co_return o;
    }
    // "health-check" is no address: a PROXY protocol header says UNKNOWN / LOCAL.
    const proto::OpenStream open{e.cfg.tunnel_name, "health-check", {}};
    auto s = t->session->open_stream(open);
    if (!s) {
      o.reason = "the agent serving tunnel '" + e.cfg.tunnel_name + "' takes no more streams";
      co_return o;
    }
    e.up = Upstream(std::move(s));
  } else {
    // A new connection, never a pooled one: the check must not hide a stale pool, and its
    // connection never goes back to the pool.
    const auto pool = e.pool;
    auto r = co_await pool->connect();
    if (stopped_) co_return o;
    if (r.ec) {
      o.reason = connect_reason(r);
      co_return o;
    }
    e.up = Upstream(std::move(r.conn));
  }
  co_return co_await exchange(i);
}

awaitable<HealthChecker::Outcome> HealthChecker::exchange(std::size_t i) {
  auto& e = *endpoints_[i];
  Outcome o;
  if (auto ec = co_await e.up.write(net::buffer(e.request))) {
    o.reason = stopped_ ? "stopped" : read_reason(ec, e.up.stream());
    co_return o;
  }
  for (;;) {
    std::size_t head_len = 0;
    for (;;) {
      const auto data = e.up.peek_all();
      if (auto end = http::find_head_end(data); end != std::string_view::npos) {
        head_len = end;
        break;
      }
      if (data.size() > kMaxHead) {
        o.reason = "response head larger than " + std::to_string(kMaxHead / 1024) + " KiB";
        co_return o;
      }
      if (auto ec = co_await e.up.wait_more(data.size())) {
        o.reason = stopped_ ? "stopped" : read_reason(ec, e.up.stream());
        co_return o;
      }
    }
    const auto head = e.up.peek_all().substr(0, head_len);
    bhttp::response_parser<bhttp::empty_body> p;
    p.header_limit(static_cast<std::uint32_t>(kMaxHead) + 1);
    p.eager(false);
    error_code pec;
    p.put(net::buffer(head.data(), head.size()), pec);
    if (pec || !p.is_header_done()) {
      o.reason = "malformed response head" + (pec ? ": " + pec.message() : std::string());
      co_return o;
    }
    const unsigned status = p.get().result_int();
    e.up.consume(head_len);
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

}  // namespace proxer::gateway
