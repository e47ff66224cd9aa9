#include "agent/agent.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket/error.hpp>

#include "agent/poll_client.h"
#include "core/backoff.h"
#include "core/deadline.h"
#include "core/log.h"
#include "proto/proxy_header.h"
#include "transport/stream.h"
#include "tunnel/pump.h"

namespace proxer::agent {

using proto::FrameType;

namespace {
constexpr const char* kVersion = "0.1.0";

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("agent");  // NOLINT: immutable after first use
  return l;
}
}  // namespace

std::string_view to_string(State s) {
  switch (s) {
    case State::Connecting:
      return "connecting";
    case State::Authenticating:
      return "authenticating";
    case State::Connected:
      return "connected";
    case State::Disconnected:
      return "disconnected";
    case State::Stopped:
      return "stopped";
  }
  return "?";
}

Agent::Agent(net::any_io_executor ex, config::AgentConfig cfg)
    : ex_(ex), cfg_(std::move(cfg)), event_(ex), sleep_timer_(ex), climb_timer_(ex) {
  for (std::size_t i = 0; i < cfg_.tunnels.size(); ++i) {
    if (const auto& hc = cfg_.tunnels[i].health_check) {
      checks_.push_back(Check{i, proxy::HealthTracker(*hc), {}});
      check_timers_.push_back(std::make_shared<net::steady_timer>(ex));
    }
  }
  const auto& scheme = cfg_.gateway_scheme;
  if (scheme == "auto") {
    ladder_ = {{"tls", ""}, {"wss", "/ws"}, {"https", ""}};
  } else {
    ladder_ = {{scheme, cfg_.gateway_path}};
  }
  if (scheme == "auto" || scheme == "tls" || scheme == "wss" || scheme == "https") {
    tls_ = transport::make_client_tls_context(cfg_.ca_file, cfg_.insecure);
  }
  if (!cfg_.proxy_host.empty()) {
    transport::HttpProxy p{cfg_.proxy_host, cfg_.proxy_port, {}};
    if (!cfg_.proxy_credentials.empty()) {
      const auto& creds = cfg_.proxy_credentials.reveal();
      std::string b64(4 * ((creds.size() + 2) / 3), '\0');
      const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                    reinterpret_cast<const unsigned char*>(creds.data()),
                                    static_cast<int>(creds.size()));
      b64.resize(static_cast<std::size_t>(n));
      p.authorization = "Basic " + b64;
    }
    proxy_ = std::move(p);
  }
}

void Agent::set_state(State s) {
  if (s == state_) return;
  state_ = s;
}

std::string Agent::carrier() const {
  return current_ && !current_->closed ? current_->session->carrier() : "";
}

void Agent::start() {
  auto self = shared_from_this();
  if (proxy_) {
    logger()->info("leaving through the HTTP proxy {}:{}{}", proxy_->host, proxy_->port,
                   proxy_->authorization.empty() ? "" : " (with credentials)");
  }
  if (ladder_.size() > 1) {
    logger()->info("transport auto: tls, then wss, then https long-poll to {}:{}",
                   cfg_.gateway_host, cfg_.gateway_port);
  }
  net::co_spawn(
      ex_, [self]() { return self->run(); }, DetachedTask{"agent"});
  for (std::size_t c = 0; c < checks_.size(); ++c) {
    net::co_spawn(
        ex_, [self, c]() { return self->check_loop(c); }, DetachedTask{"agent health check"});
  }
}

void Agent::stop(std::function<void()> done) {
  stopping_ = true;
  sleep_timer_.cancel();
  climb_timer_.cancel();
  for (auto& t : check_timers_) t->cancel();
  event_.notify();
  bool any = false;
  for (const auto& link : std::vector<std::shared_ptr<Link>>(links_)) {
    if (link->closed) continue;
    any = true;
    link->session->go_away(proto::ErrorCode::Shutdown, "agent stopping");
    link->session->close(proto::ErrorCode::Shutdown, "agent stopping");
  }
  if (!any) {
    set_state(State::Stopped);
    done();
    return;
  }
  auto timer = std::make_shared<net::steady_timer>(ex_, std::chrono::milliseconds(100));
  timer->async_wait([timer, done = std::move(done), self = shared_from_this()](error_code) {
    self->set_state(State::Stopped);
    done();
  });
}

awaitable<void> Agent::run() {
  auto self = shared_from_this();
  Backoff backoff(cfg_.reconnect_min, cfg_.reconnect_max);
  std::size_t preferred = 0;  // the carrier that worked last is tried first
  while (!stopping_) {
    set_state(State::Connecting);
    std::vector<std::size_t> order{preferred};
    for (std::size_t r = 0; r < ladder_.size(); ++r) {
      if (r != preferred) order.push_back(r);
    }
    std::shared_ptr<Link> link;
    std::string failures;
    auth_refused_ = false;
    for (std::size_t i = 0; i < order.size() && !stopping_; ++i) {
      std::string why;
      link = co_await establish(order[i], false, &why);
      if (link) break;
      if (ladder_.size() == 1) {
        failures = why;
      } else {
        failures += (failures.empty() ? "" : "; ") + ladder_[order[i]].scheme + ": " + why;
        if (!auth_refused_ && i + 1 < order.size()) {
          logger()->info("cannot connect over {} ({}); trying {}", ladder_[order[i]].scheme, why,
                         ladder_[order[i + 1]].scheme);
        }
      }
      if (auth_refused_) break;  // the gateway was reached: another carrier changes nothing
    }
    if (stopping_) {
      if (link) link->session->close(proto::ErrorCode::Shutdown, "agent stopping");
      break;
    }
    std::string reason;
    if (link) {
      current_ = link;
      preferred = link->rung;
      const auto generation = ++generation_;
      set_state(State::Connected);
      send_registrations(link);
      if (link->rung > 0) {
        net::co_spawn(ex_, climb(generation), DetachedTask{"agent climb"});
      }
      // current_ may change meanwhile: a climb moves it to a better carrier.
      while (!stopping_ && !current_->closed) co_await event_.wait();
      if (stopping_) break;
      reason = "disconnected from the gateway: " + current_->closed_reason;
      if (current_->registered > 0) backoff.reset();  // it worked: the next try is quick
    } else {
      reason = failures;
    }
    set_state(State::Disconnected);
    const auto delay = backoff.next();
    logger()->warn("{}; reconnecting in {} ms", reason, delay.count());
    sleep_timer_.expires_after(delay);
    co_await sleep_timer_.async_wait(use_nothrow);
  }
  set_state(State::Stopped);
}

awaitable<std::optional<transport::Stream>> Agent::dial(const Rung& rung, std::string* why) {
  const std::string where = cfg_.gateway_host + ":" + cfg_.gateway_port;
  const auto& scheme = rung.scheme;
  if (scheme == "http" || scheme == "https") {
    PollTarget target;
    target.https = scheme == "https";
    target.host = cfg_.gateway_host;
    target.port = cfg_.gateway_port;
    target.path_prefix = rung.path;
    target.server_name = config::tls_server_name(cfg_);
    target.tls = tls_;
    target.proxy = proxy_;
    target.timeout = cfg_.connect_timeout;
    std::vector<std::string> names;
    for (const auto& t : cfg_.tunnels) names.push_back(t.name);
    co_return co_await open_poll_session(ex_, target, cfg_.id, cfg_.token.reveal(), names, why);
  }
  std::pair<error_code, tcp::socket> connected{error_code{}, tcp::socket(ex_)};
  if (proxy_) {
    std::string text;
    connected = co_await transport::connect_via_proxy(
        ex_, *proxy_, cfg_.gateway_host, cfg_.gateway_port, cfg_.connect_timeout, &text);
    if (connected.first) {
      *why = "cannot reach the gateway at " + where + " through the proxy " + proxy_->host + ":" +
             proxy_->port + ": " + text;
      co_return std::nullopt;
    }
  } else {
    connected = co_await transport::connect_tcp(ex_, cfg_.gateway_host, cfg_.gateway_port,
                                                cfg_.connect_timeout);
  }
  auto& [ec, sock] = connected;
  if (ec) {
    *why = "cannot connect to the gateway at " + where + ": " + ec.message();
    co_return std::nullopt;
  }

  std::variant<tcp::socket, transport::TlsStream> next(std::move(sock));
  if (scheme == "tls" || scheme == "wss") {
    auto [hec, tls] = co_await transport::tls_client_handshake(
        std::move(std::get<tcp::socket>(next)), *tls_, config::tls_server_name(cfg_),
        cfg_.connect_timeout);
    if (hec) {
      *why = "TLS handshake with the gateway at " + where + " failed: " + hec.message();
      if (hec.category() == net::error::get_ssl_category()) {
        *why += " (certificate verify failed? use --ca FILE for a private CA)";
      }
      co_return std::nullopt;
    }
    next.emplace<transport::TlsStream>(std::move(tls));
  }
  if (scheme == "ws" || scheme == "wss") {
    // Host header: the port only when it is not the scheme's default.
    std::string host = cfg_.gateway_host.find(':') != std::string::npos
                           ? "[" + cfg_.gateway_host + "]"
                           : cfg_.gateway_host;
    if (cfg_.gateway_port != (scheme == "ws" ? "80" : "443")) host += ":" + cfg_.gateway_port;
    auto [wec, ws] = co_await transport::ws_client_handshake(std::move(next), host, rung.path,
                                                             cfg_.connect_timeout);
    if (wec) {
      *why = "WebSocket handshake with " + scheme + "://" + host + rung.path +
             " failed: " + wec.message() +
             (wec == boost::beast::websocket::error::upgrade_declined
                  ? " (is the path right? the gateway serves /ws)"
                  : "");
      co_return std::nullopt;
    }
    co_return std::move(*ws);
  }
  if (auto* tls = std::get_if<transport::TlsStream>(&next)) {
    co_return transport::Stream(std::move(*tls));
  }
  co_return transport::Stream(std::move(std::get<tcp::socket>(next)));
}

awaitable<std::shared_ptr<Agent::Link>> Agent::establish(std::size_t r, bool handover,
                                                         std::string* why) {
  const std::string where = cfg_.gateway_host + ":" + cfg_.gateway_port;
  logger()->debug("connecting to {} over {}", where, ladder_[r].scheme);
  auto io = co_await dial(ladder_[r], why);
  if (!io) co_return nullptr;
  if (stopping_) {
    io->close();
    *why = "stopping";
    co_return nullptr;
  }
  tunnel::SessionOptions opts;
  opts.opener = false;
  opts.name = "agent";
  opts.idle_timeout = cfg_.connect_timeout * 3;  // until AUTH_RESPONSE sets the real one
  auto link = std::make_shared<Link>();
  link->session = std::make_shared<tunnel::Session>(std::move(*io), opts);
  link->rung = r;
  link->handover = handover;
  links_.push_back(link);
  auto session = link->session;
  session->start(shared_from_this());

  if (!handover) set_state(State::Authenticating);
  proto::AuthRequest req;
  req.token = cfg_.token.reveal();
  req.agent_id = cfg_.id;
  req.version = kVersion;
  req.capabilities = {"http"};
  req.carrier = session->carrier();
  req.handover = handover;
  session->send_control(FrameType::AuthRequest, 0, proto::encode(req));

  // Wait for AUTH_RESPONSE, bounded by the connect timeout.
  {
    Deadline deadline(ex_, cfg_.connect_timeout, [session] {
      session->close(proto::ErrorCode::AuthFailed, "no AUTH_RESPONSE in time");
    });
    while (!link->auth && !link->closed) co_await event_.wait();
  }
  if (!link->auth) {
    *why = "session with the gateway at " + where +
           " ended during authentication: " + link->closed_reason;
    co_return nullptr;
  }
  if (!link->auth->ok) {
    logger()->error("authentication refused by the gateway at {}: {}", where, link->auth->error);
    auth_refused_ = true;
    if (on_auth_failed_) on_auth_failed_(link->auth->error);
    session->close(proto::ErrorCode::None, "auth refused");
    while (!link->closed) co_await event_.wait();
    *why = "authentication failed";
    co_return nullptr;
  }
  const auto hb =
      std::chrono::milliseconds(std::max<std::uint32_t>(link->auth->heartbeat_interval_ms, 100));
  session->set_max_payload(link->auth->max_payload);
  session->set_window(link->auth->window);
  session->set_heartbeat(hb, hb * 3);
  if (!handover) {
    logger()->info("connected to {} over {} (session {})", where, session->carrier(),
                   link->auth->session_id);
  }
  co_return link;
}

void Agent::send_registrations(const std::shared_ptr<Link>& link) {
  for (const auto& t : cfg_.tunnels) {
    proto::TunnelSpec spec;
    spec.name = t.name;
    spec.type = t.tcp ? proto::TunnelType::Tcp : proto::TunnelType::Http;
    spec.local_target = t.host + ":" + t.port;
    spec.token = t.token.reveal();
    spec.remote_port = t.remote_port;
    spec.pool = t.pool;
    link->session->send_control(FrameType::RegisterTunnel, 0, proto::encode(spec));
  }
  // The gateway takes a new registration for healthy: correct it where the agent knows better
  // (the gateway reads frames in order, so this follows the registration).
  for (const auto& c : checks_) {
    if (!c.tracker.healthy()) report_health(link, c);
  }
}

bool Agent::tunnel_healthy(std::string_view name) const {
  for (const auto& c : checks_) {
    if (cfg_.tunnels[c.tunnel].name == name) return c.tracker.healthy();
  }
  return true;
}

void Agent::report_health(const std::shared_ptr<Link>& link, const Check& c) {
  if (!link || link->closed || !link->auth || !link->auth->ok) return;
  const auto& f = link->auth->features;
  if (std::find(f.begin(), f.end(), proto::kFeatureTunnelHealth) == f.end()) {
    if (!warned_no_health_feature_) {
      warned_no_health_feature_ = true;
      logger()->warn(
          "the gateway does not take health reports (an older version): it keeps sending to "
          "this agent whatever its health checks say");
    }
    return;
  }
  proto::TunnelHealth h;
  h.name = cfg_.tunnels[c.tunnel].name;
  h.healthy = c.tracker.healthy();
  h.reason = h.healthy ? std::string() : c.reason;
  link->session->send_control(FrameType::TunnelHealth, 0, proto::encode(h));
}

awaitable<void> Agent::check_loop(std::size_t c) {
  auto self = shared_from_this();
  const auto& t = cfg_.tunnels[checks_[c].tunnel];
  const auto timer = check_timers_[c];
  while (!stopping_) {
    const auto failed = co_await probe(t);
    if (stopping_) co_return;
    auto& check = checks_[c];
    if (failed) check.reason = *failed;
    const auto transition = check.tracker.record(!failed);
    const std::string where = transport::join_host_port(t.host, t.port);
    if (transition == proxy::HealthTracker::Transition::BecameUnhealthy) {
      logger()->warn(
          "tunnel '{}': local target {} is unhealthy ({}); asking the gateway to stop "
          "sending to this agent",
          t.name, where, check.reason);
      report_health(current_, check);
    } else if (transition == proxy::HealthTracker::Transition::BecameHealthy) {
      logger()->info("tunnel '{}': local target {} is healthy again", t.name, where);
      report_health(current_, check);
    } else if (failed) {
      logger()->debug("tunnel '{}': health check failed: {}", t.name, *failed);
    }
    timer->expires_after(t.health_check->interval);
    co_await timer->async_wait(use_nothrow);
  }
}

awaitable<std::optional<std::string>> Agent::probe(const config::TunnelConfig& t) {
  const auto& hc = *t.health_check;
  const auto started = std::chrono::steady_clock::now();
  std::optional<std::string> failed;
  auto [ec, sock] = co_await transport::connect_tcp(ex_, t.host, t.port, hc.timeout);
  if (ec) {
    failed = "cannot connect: " + ec.message();
    co_return failed;
  }
  if (!hc.enabled()) co_return failed;  // a connect check
  // One deadline for the whole check, connect included.
  const auto left = std::max<std::chrono::steady_clock::duration>(
      hc.timeout - (std::chrono::steady_clock::now() - started), std::chrono::milliseconds(1));
  Deadline deadline(ex_, left, [s = &sock] {  // init-capture: clang 14 cannot capture a binding
    error_code ignored;
    s->close(ignored);
  });
  const std::string host = hc.host.empty() ? transport::join_host_port(t.host, t.port) : hc.host;
  const std::string request = hc.method + " " + hc.path + " HTTP/1.1\r\nHost: " + host +
                              "\r\nUser-Agent: proxer-agent-health-check\r\n"
                              "Accept: */*\r\nConnection: close\r\n\r\n";
  auto [wec, written] = co_await net::async_write(sock, net::buffer(request), use_nothrow);
  if (wec) {
    failed = deadline.expired() ? "timed out sending the request" : "send: " + wec.message();
    co_return failed;
  }
  // The response head, bounded: judge_check_response decides as soon as it can, and at the
  // latest once proxy::kMaxCheckHead bytes are in (the body is never read).
  std::string received;
  std::array<char, 2048> chunk{};
  std::optional<proxy::CheckVerdict> verdict;
  error_code read_ec;
  while (!verdict && !read_ec) {
    auto [rec, n] = co_await sock.async_read_some(net::buffer(chunk), use_nothrow);
    read_ec = rec;
    received.append(chunk.data(), n);
    if (n > 0) verdict = proxy::judge_check_response(received, hc);
  }
  deadline.done();
  if (!verdict) {
    const char* what = received.empty() ? "response" : "complete response head";
    if (deadline.expired()) {
      failed = std::string("no ") + what + " within " + config::format_duration(hc.timeout);
    } else if (read_ec == net::error::eof) {
      failed = std::string("the connection closed before a ") + what;
    } else {
      failed = "read: " + read_ec.message();
    }
  } else if (!verdict->passed) {
    failed = verdict->status != 0
                 ? hc.method + " " + hc.path + " answered " + std::to_string(verdict->status)
                 : verdict->reason;
  }
  co_return failed;
}

awaitable<bool> Agent::wait_registered(const std::shared_ptr<Link>& link) {
  auto self = shared_from_this();
  Deadline deadline(ex_, cfg_.connect_timeout, [self] { self->event_.notify(); });
  while (link->replies < cfg_.tunnels.size() && !link->closed && !deadline.expired() &&
         !stopping_) {
    co_await event_.wait();
  }
  co_return link->replies >= cfg_.tunnels.size() && !link->closed;
}

awaitable<void> Agent::climb(std::uint64_t generation) {
  auto self = shared_from_this();
  for (;;) {
    climb_timer_.expires_after(cfg_.climb_interval);
    co_await climb_timer_.async_wait(use_nothrow);
    auto cur = current_;
    if (stopping_ || generation != generation_ || !cur || cur->closed || cur->rung == 0) {
      co_return;
    }
    for (std::size_t r = 0; r < cur->rung; ++r) {
      std::string why;
      auto link = co_await establish(r, true, &why);
      const bool moot = stopping_ || generation != generation_ || current_ != cur || cur->closed;
      if (!link) {
        if (moot) co_return;
        logger()->debug("{} is still unavailable: {}", ladder_[r].scheme, why);
        continue;
      }
      if (moot) {
        link->session->close(proto::ErrorCode::None, "no longer needed");
        co_return;
      }
      send_registrations(link);
      const bool ok = co_await wait_registered(link);
      if (stopping_ || generation != generation_ || current_ != cur || cur->closed) {
        link->session->close(proto::ErrorCode::None, "no longer needed");
        co_return;
      }
      if (!ok) {
        // Some tunnels may have moved already: put them all back on the current session.
        logger()->warn(
            "moving up to {} failed: the gateway did not confirm every tunnel in "
            "time; staying on {}",
            scheme_of(*link), scheme_of(*cur));
        link->session->close(proto::ErrorCode::None, "carrier switch abandoned");
        send_registrations(cur);
        break;
      }
      current_ = link;
      logger()->info("moved up from {} to {} (session {}); the {} session drains", scheme_of(*cur),
                     scheme_of(*link), link->auth->session_id, scheme_of(*cur));
      net::co_spawn(ex_, drain(cur), DetachedTask{"agent drain"});
      event_.notify();
      break;
    }
  }
}

awaitable<void> Agent::drain(std::shared_ptr<Link> old) {
  auto self = shared_from_this();
  old->session->go_away(proto::ErrorCode::None, "moving to another carrier");
  const auto until = std::chrono::steady_clock::now() + cfg_.drain_timeout;
  net::steady_timer t(ex_);
  while (!old->closed && !stopping_ && old->session->stream_count() > 0 &&
         std::chrono::steady_clock::now() < until) {
    t.expires_after(std::chrono::milliseconds(50));
    co_await t.async_wait(use_nothrow);
  }
  if (old->closed) co_return;
  const auto left = old->session->stream_count();
  if (left > 0) {
    logger()->info("closing the {} session with {} stream(s) still open (drain timeout)",
                   scheme_of(*old), left);
  } else {
    logger()->debug("the {} session drained; closing it", scheme_of(*old));
  }
  old->session->close(proto::ErrorCode::None, "moved to another carrier");
}

std::shared_ptr<Agent::Link> Agent::link_of(const tunnel::Session& s) const {
  for (const auto& l : links_) {
    if (l->session.get() == &s) return l;
  }
  return nullptr;
}

void Agent::forget(const std::shared_ptr<Link>& link) {
  std::erase(links_, link);
}

void Agent::on_control(tunnel::Session& s, const proto::FrameHeader& h, proto::Bytes payload) {
  auto link = link_of(s);
  if (!link) return;
  std::string err;
  switch (h.type) {
    case FrameType::AuthResponse: {
      auto resp = proto::decode_auth_response(payload, &err);
      if (!resp) {
        // A refusal may carry defaults that fail range checks; read ok/error leniently.
        proto::AuthResponse r;
        r.ok = false;
        r.error = "malformed AUTH_RESPONSE: " + err;
        link->auth = r;
      } else {
        link->auth = std::move(*resp);
      }
      event_.notify();
      return;
    }
    case FrameType::RegisterTunnel: {
      auto res = proto::decode_register_result(payload, &err);
      if (!res) {
        logger()->error("malformed REGISTER_TUNNEL reply: {}", err);
        return;
      }
      ++link->replies;
      if (res->ok) {
        ++link->registered;
        std::string urls;
        for (const auto& u : res->urls) urls += (urls.empty() ? "" : " ") + u;
        if (link->handover) {
          logger()->debug("tunnel '{}' moved to the {} session", res->name, scheme_of(*link));
        } else {
          logger()->info("tunnel '{}' is live: {}", res->name, urls);
        }
      } else {
        logger()->error("tunnel '{}' refused by the gateway: {}", res->name, res->error);
      }
      if (on_registered_ && (!link->handover || !res->ok)) on_registered_(*res);
      event_.notify();
      return;
    }
    case FrameType::GoAway:
      if (link == current_) {
        logger()->info("the gateway is going away; will reconnect when it closes");
      }
      return;
    default:
      s.close(proto::ErrorCode::ProtocolError,
              std::string("unexpected ") + std::string(proto::to_string(h.type)));
  }
}

void Agent::on_open(tunnel::Session&, std::shared_ptr<tunnel::Stream> stream,
                    proto::OpenStream open) {
  net::co_spawn(ex_, serve_stream(std::move(stream), std::move(open)),
                DetachedTask{"agent stream"});
}

awaitable<void> Agent::serve_stream(std::shared_ptr<tunnel::Stream> stream,
                                    proto::OpenStream open) {
  const config::TunnelConfig* t = nullptr;
  for (const auto& c : cfg_.tunnels) {
    if (c.name == open.tunnel) t = &c;
  }
  if (!t) {
    stream->reset(proto::ErrorCode::UnknownTunnel);
    co_return;
  }
  auto [ec, sock] =
      co_await transport::connect_tcp(ex_, t->host, t->port, cfg_.local_connect_timeout);
  if (ec) {
    logger()->debug("tunnel '{}': cannot reach {}:{}: {}", t->name, t->host, t->port, ec.message());
    stream->reset(ec == net::error::timed_out ? proto::ErrorCode::ConnectTimeout
                                              : proto::ErrorCode::ConnectRefused);
    co_return;
  }
  if (t->tcp && !t->proxy_protocol.empty()) {
    // The local target learns the public client's address before any of its bytes.
    const auto header =
        proto::proxy_header(t->proxy_protocol == "v1" ? 1 : 2, open.client_addr, open.server_addr);
    auto [wec, n] = co_await net::async_write(sock, net::buffer(header), use_nothrow);
    if (wec) {
      stream->reset(proto::ErrorCode::LocalReset);
      co_return;
    }
  }
  co_await tunnel::pump(std::move(stream), std::move(sock));
}

void Agent::on_closed(tunnel::Session& s, const std::string& reason) {
  auto link = link_of(s);
  if (!link) return;
  link->closed = true;
  link->closed_reason = reason;
  forget(link);
  event_.notify();
}

}  // namespace proxer::agent
