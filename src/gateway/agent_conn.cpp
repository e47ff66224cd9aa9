#include "gateway/agent_conn.h"

#include <openssl/rand.h>

#include "core/log.h"
#include "gateway/tcp_tunnels.h"

namespace proxer::gateway {

using proto::FrameType;

namespace {
constexpr auto kAuthTimeout = std::chrono::seconds(10);

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("gateway");  // NOLINT: immutable after first use
  return l;
}

std::string random_id() {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

}  // namespace

AgentConn::AgentConn(Context& ctx, std::shared_ptr<tunnel::Session> session, std::string session_id)
    : ctx_(ctx),
      session_(std::move(session)),
      session_id_(std::move(session_id)),
      auth_timer_(session_->get_executor()) {}

std::string AgentConn::new_id() {
  return random_id();
}

void AgentConn::start_session(Context& ctx, transport::Stream io, std::string session_id) {
  const auto& cfg = ctx.cfg;
  if (auto* s = io.tcp_socket()) {
    error_code ec;
    s->set_option(tcp::no_delay(true), ec);
  }
  tunnel::SessionOptions opts;
  opts.opener = true;
  opts.max_payload = cfg.max_frame;
  opts.window = cfg.window;
  opts.max_streams = cfg.max_streams_per_session;
  opts.idle_timeout = cfg.session_ttl;
  opts.name = "gateway";
  auto session = std::make_shared<tunnel::Session>(std::move(io), opts);
  if (ctx.draining) {
    session->close(proto::ErrorCode::Shutdown, "gateway shutting down");
    return;
  }
  auto conn = std::make_shared<AgentConn>(ctx, session, std::move(session_id));
  conn->start();
}

void AgentConn::start() {
  session_->start(shared_from_this());
  auth_timer_.expires_after(kAuthTimeout);
  std::weak_ptr<AgentConn> weak = shared_from_this();
  auth_timer_.async_wait([weak](error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->authed_) return;
    logger()->warn("agent at {}: no authentication within {}s, closing",
                   self->session_->remote_address(), kAuthTimeout.count());
    self->session_->close(proto::ErrorCode::AuthFailed, "authentication timeout");
  });
}

void AgentConn::on_control(tunnel::Session&, const proto::FrameHeader& h, proto::Bytes payload) {
  switch (h.type) {
    case FrameType::AuthRequest:
      on_auth(payload);
      return;
    case FrameType::RegisterTunnel:
      on_register(payload);
      return;
    case FrameType::UnregisterTunnel:
      on_unregister(payload);
      return;
    case FrameType::TunnelHealth:
      on_health(payload);
      return;
    case FrameType::GoAway:
      logger()->info("agent '{}' is going away", agent_id_);
      return;
    default:
      session_->close(proto::ErrorCode::ProtocolError,
                      std::string("unexpected ") + std::string(proto::to_string(h.type)));
  }
}

void AgentConn::on_auth(proto::Bytes payload) {
  if (authed_) {
    session_->close(proto::ErrorCode::ProtocolError, "AUTH_REQUEST after authentication");
    return;
  }
  std::string err;
  auto req = proto::decode_auth_request(payload, &err);
  proto::AuthResponse resp;
  if (!req) {
    resp.error = "malformed AUTH_REQUEST: " + err;
  } else if (!ctx_.cfg.token.empty() && !ctx_.cfg.token.matches(req->token)) {
    resp.error = "invalid agent token";
  }
  if (!resp.error.empty()) {
    ++ctx_.stats.auth_failures;
    logger()->warn("agent at {} ({}) refused: {}", session_->remote_address(),
                   req ? req->agent_id : std::string("?"), resp.error);
    resp.ok = false;
    session_->send_control(FrameType::AuthResponse, 0, proto::encode(resp));
    session_->close(proto::ErrorCode::AuthFailed, resp.error);
    return;
  }
  authed_ = true;
  auth_timer_.cancel();
  agent_id_ = req->agent_id;
  if (session_id_.empty()) session_id_ = random_id();
  if (auto old = ctx_.registry.agent(agent_id_); old && old.get() != this) {
    if (req->handover) {
      // A carrier switch (make-before-break): the old session keeps its tunnels until this
      // one registers them, then the agent drains and closes it.
      logger()->info("agent '{}' is moving from {} to {} (session {} drains)", agent_id_,
                     old->session()->carrier(), session_->carrier(), old->session_id());
    } else {
      // The same agent reconnecting replaces its stale session (the old one may not know yet).
      logger()->info("agent '{}' reconnected from {}: replacing its previous session", agent_id_,
                     session_->remote_address());
      for (const auto& name : old->tunnels()) ctx_.registry.remove(name, old->session().get());
      old->session()->close(proto::ErrorCode::Replaced, "replaced by a newer session");
    }
  }
  ctx_.registry.set_agent(agent_id_, shared_from_this());
  ++ctx_.stats.agent_sessions_total;
  resp.ok = true;
  resp.session_id = session_id_;
  resp.account_id = "default";
  resp.heartbeat_interval_ms = static_cast<std::uint32_t>(ctx_.cfg.heartbeat_interval.count());
  resp.max_payload = ctx_.cfg.max_frame;
  resp.window = ctx_.cfg.window;
  resp.features = {std::string(proto::kFeatureTunnelHealth)};
  session_->set_max_payload(ctx_.cfg.max_frame);
  session_->set_window(ctx_.cfg.window);
  // The gateway heartbeats too: it measures RTT (shown in the admin API) and keeps NAT state
  // fresh in both directions. Silence for session_ttl drops the session.
  session_->set_heartbeat(ctx_.cfg.heartbeat_interval, ctx_.cfg.session_ttl);
  session_->send_control(FrameType::AuthResponse, 0, proto::encode(resp));
  logger()->info("agent '{}' connected from {} over {} (session {})", agent_id_,
                 session_->remote_address(), session_->carrier(), session_id_);
}

std::vector<std::string> AgentConn::urls_for(const std::string& name) const {
  return http_urls(ctx_, name);
}

std::vector<std::string> AgentConn::http_urls(const Context& ctx, const std::string& name) {
  std::vector<std::string> urls;
  // http://name.domain[:port]/ and {public_url}/t/name/
  const std::string& base = ctx.public_url;
  auto scheme_end = base.find("://");
  if (scheme_end != std::string::npos) {
    std::string scheme = base.substr(0, scheme_end);
    std::string rest = base.substr(scheme_end + 3);
    urls.push_back(scheme + "://" + name + "." + rest + "/");
  }
  urls.push_back(base + "/t/" + name + "/");
  return urls;
}

std::string AgentConn::tcp_url_for(std::uint16_t port) const {
  return "tcp://" + ctx_.cfg.domain + ":" + std::to_string(port);
}

void AgentConn::on_register(proto::Bytes payload) {
  proto::RegisterResult result;
  std::string err;
  auto spec = proto::decode_tunnel_spec(payload, &err);
  if (!authed_) {
    session_->close(proto::ErrorCode::ProtocolError, "REGISTER_TUNNEL before authentication");
    return;
  }
  if (!spec) {
    std::string name;
    result.name = "?";
    result.error = err;
  } else {
    result.name = spec->name;
    auto t = std::make_shared<Tunnel>();
    t->name = spec->name;
    t->type = spec->type;
    t->local_target = spec->local_target;
    t->token = Secret(spec->token);
    t->agent_id = agent_id_;
    t->pool = spec->pool;
    t->agent = weak_from_this();
    t->session = session_;
    t->connected_since = std::chrono::system_clock::now();
    bool ready = true;
    if (spec->type == proto::TunnelType::Tcp && !spec->token.empty()) {
      ready = false;
      result.error = "per-tunnel tokens protect HTTP tunnels only; a TCP tunnel cannot carry one";
    } else if (spec->type == proto::TunnelType::Tcp) {
      // The name's previous holder (this agent's stale session, or an earlier registration on
      // this one) gives its port up first, so the tunnel can get the same port again.
      ready = ctx_.registry.can_add(*t, &result.error);
      if (ready) {
        if (auto shared = ctx_.registry.shared_listener(*t)) {
          // Joining a TCP pool: its one public port serves every member.
          if (spec->remote_port != 0 && spec->remote_port != shared->port()) {
            ready = false;
            result.error = "tunnel '" + t->name + "' is pooled on port " +
                           std::to_string(shared->port()) + ", not " +
                           std::to_string(spec->remote_port);
          } else {
            t->tcp = std::move(shared);
          }
        } else {
          if (const auto* pool = ctx_.registry.pool(t->name)) {
            for (const auto& old : pool->members) {
              if (old->tcp) old->tcp->stop();  // only this agent's stale members are left
            }
          }
          t->tcp = open_tcp_listener(ctx_, t, spec->remote_port, &result.error);
          ready = t->tcp != nullptr;
        }
        if (ready) t->public_port = t->tcp->port();
      }
    }
    if (ready) {
      if (ctx_.registry.add(t, &result.error)) {
        result.ok = true;
        result.urls =
            t->tcp ? std::vector<std::string>{tcp_url_for(t->public_port)} : urls_for(spec->name);
        if (std::find(tunnels_.begin(), tunnels_.end(), spec->name) == tunnels_.end()) {
          tunnels_.push_back(spec->name);
        }
        const auto* pool = ctx_.registry.pool(spec->name);
        const auto members = pool ? pool->members.size() : 1;
        const std::string pooled =
            members > 1 ? " (pool: " + std::to_string(members) + " members)" : "";
        if (t->tcp) {
          logger()->info("TCP tunnel '{}' registered by agent '{}' on port {}{}", spec->name,
                         agent_id_, t->public_port, pooled);
        } else {
          logger()->info("tunnel '{}' registered by agent '{}'{}{}", spec->name, agent_id_,
                         t->token.empty() ? "" : " (token required)", pooled);
        }
      }
    }
  }
  if (!result.ok) {
    logger()->warn("agent '{}': tunnel '{}' refused: {}", agent_id_, result.name, result.error);
  }
  session_->send_control(FrameType::RegisterTunnel, proto::flags::kAck, proto::encode(result));
}

void AgentConn::on_unregister(proto::Bytes payload) {
  // Payload is JSON {"name": ...}; the tunnel-spec decoder reads and validates exactly that.
  std::string err;
  auto spec = proto::decode_tunnel_spec(payload, &err);
  if (!spec) {
    logger()->warn("agent '{}': malformed UNREGISTER_TUNNEL ignored: {}", agent_id_, err);
    return;
  }
  const std::string& name = spec->name;
  ctx_.registry.remove(name, session_.get());
  std::erase(tunnels_, name);
  logger()->info("tunnel '{}' unregistered by agent '{}'", name, agent_id_);
}

void AgentConn::on_health(proto::Bytes payload) {
  if (!authed_) {
    session_->close(proto::ErrorCode::ProtocolError, "TUNNEL_HEALTH before authentication");
    return;
  }
  std::string err;
  auto h = proto::decode_tunnel_health(payload, &err);
  if (!h) {
    logger()->warn("agent '{}': malformed TUNNEL_HEALTH ignored: {}", agent_id_, err);
    return;
  }
  auto m = ctx_.registry.member(h->name, session_.get());
  if (!m) {
    // A report for a tunnel this session does not serve (refused, or unregistered meanwhile).
    logger()->debug("agent '{}': TUNNEL_HEALTH for tunnel '{}' it does not serve ignored",
                    agent_id_, h->name);
    return;
  }
  if (m->healthy == h->healthy) return;  // no transition: nothing to log or count
  m->healthy = h->healthy;
  // The reason reaches logs and the admin API: printable ASCII only, bounded.
  m->health_reason.clear();
  for (char c : std::string_view(h->reason).substr(0, 256)) {
    m->health_reason.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  ++m->health_transitions;
  std::size_t in_rotation = 0, members = 0;
  if (const auto* pool = ctx_.registry.pool(h->name)) {
    members = pool->members.size();
    for (const auto& o : pool->members) in_rotation += usable(*o) ? 1 : 0;
  }
  if (h->healthy) {
    logger()->info(
        "tunnel '{}': agent '{}' reports its local target healthy again; back in rotation ({} of "
        "{} member(s) in rotation)",
        h->name, agent_id_, in_rotation, members);
  } else {
    // Its pooled streams lead to the broken target: new requests go to the other members.
    for (auto& s : m->idle) s.stream->reset(proto::ErrorCode::Cancelled);
    m->idle.clear();
    logger()->warn(
        "tunnel '{}': agent '{}' reports its local target unhealthy ({}); out of rotation ({} of "
        "{} member(s) in rotation)",
        h->name, agent_id_, m->health_reason.empty() ? "no reason given" : m->health_reason,
        in_rotation, members);
  }
}

void AgentConn::on_open(tunnel::Session&, std::shared_ptr<tunnel::Stream> stream,
                        proto::OpenStream) {
  // Agents do not open streams towards the gateway in protocol v1.
  stream->reset(proto::ErrorCode::ProtocolError);
}

void AgentConn::on_closed(tunnel::Session&, const std::string& reason) {
  auth_timer_.cancel();
  for (const auto& name : tunnels_) ctx_.registry.remove(name, session_.get());
  if (authed_) {
    ctx_.registry.remove_agent(agent_id_, this);
    logger()->info("agent '{}' disconnected: {}", agent_id_, reason);
  }
}

}  // namespace proxer::gateway
