#include "agent/agent.h"

#include <openssl/evp.h>

#include <boost/asio/write.hpp>
#include <boost/beast/websocket/error.hpp>

#include "agent/poll_client.h"
#include "core/backoff.h"
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
    : ex_(ex), cfg_(std::move(cfg)), event_(ex), sleep_timer_(ex) {
  if (cfg_.gateway_scheme == "tls" || cfg_.gateway_scheme == "wss" ||
      cfg_.gateway_scheme == "https") {
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

void Agent::start() {
  auto self = shared_from_this();
  if (proxy_) {
    logger()->info("leaving through the HTTP proxy {}:{}{}", proxy_->host, proxy_->port,
                   proxy_->authorization.empty() ? "" : " (with credentials)");
  }
  net::co_spawn(
      ex_, [self]() { return self->run(); }, DetachedTask{"agent"});
}

void Agent::stop(std::function<void()> done) {
  stopping_ = true;
  sleep_timer_.cancel();
  auto session = session_;
  if (!session || session->closed()) {
    set_state(State::Stopped);
    done();
    return;
  }
  session->go_away(proto::ErrorCode::Shutdown, "agent stopping");
  session->close(proto::ErrorCode::Shutdown, "agent stopping");
  auto timer = std::make_shared<net::steady_timer>(ex_, std::chrono::milliseconds(100));
  timer->async_wait([timer, done = std::move(done), self = shared_from_this()](error_code) {
    self->set_state(State::Stopped);
    done();
  });
}

awaitable<void> Agent::run() {
  auto self = shared_from_this();
  Backoff backoff(cfg_.reconnect_min, cfg_.reconnect_max);
  while (!stopping_) {
    const auto reason = co_await connect_once();
    if (stopping_) break;
    set_state(State::Disconnected);
    // A session that was up for a while resets the backoff: the next try is quick.
    const auto delay = backoff.next();
    logger()->warn("{}; reconnecting in {} ms", reason, delay.count());
    sleep_timer_.expires_after(delay);
    co_await sleep_timer_.async_wait(use_nothrow);
    if (registered_ > 0) {
      backoff.reset();
      registered_ = 0;
    }
  }
  set_state(State::Stopped);
}

awaitable<std::string> Agent::connect_once() {
  set_state(State::Connecting);
  const std::string where = cfg_.gateway_host + ":" + cfg_.gateway_port;
  logger()->debug("connecting to {}", cfg_.gateway);
  tunnel::SessionOptions opts;
  opts.opener = false;
  opts.name = "agent";
  opts.idle_timeout = cfg_.connect_timeout * 3;  // until AUTH_RESPONSE sets the real one
  if (cfg_.gateway_scheme == "http" || cfg_.gateway_scheme == "https") {
    PollTarget target;
    target.https = cfg_.gateway_scheme == "https";
    target.host = cfg_.gateway_host;
    target.port = cfg_.gateway_port;
    target.path_prefix = cfg_.gateway_path;
    target.server_name = cfg_.server_name.empty() ? cfg_.gateway_host : cfg_.server_name;
    target.tls = tls_;
    target.proxy = proxy_;
    target.timeout = cfg_.connect_timeout;
    std::vector<std::string> names;
    for (const auto& t : cfg_.tunnels) names.push_back(t.name);
    std::string why;
    auto io = co_await open_poll_session(ex_, target, cfg_.id, cfg_.token.reveal(), names, &why);
    if (!io) co_return why;
    session_ = std::make_shared<tunnel::Session>(std::move(*io), opts);
    co_return co_await run_session(where);
  }
  std::pair<error_code, tcp::socket> connected{error_code{}, tcp::socket(ex_)};
  if (proxy_) {
    std::string why;
    connected = co_await transport::connect_via_proxy(
        ex_, *proxy_, cfg_.gateway_host, cfg_.gateway_port, cfg_.connect_timeout, &why);
    if (connected.first) {
      co_return "cannot reach the gateway at " + where + " through the proxy " + proxy_->host +
          ":" + proxy_->port + ": " + why;
    }
  } else {
    connected = co_await transport::connect_tcp(ex_, cfg_.gateway_host, cfg_.gateway_port,
                                                cfg_.connect_timeout);
  }
  auto& [ec, sock] = connected;
  if (ec) co_return "cannot connect to the gateway at " + where + ": " + ec.message();

  std::variant<tcp::socket, transport::TlsStream> next(std::move(sock));
  if (tls_) {
    const auto& sni = cfg_.server_name.empty() ? cfg_.gateway_host : cfg_.server_name;
    auto [hec, tls] = co_await transport::tls_client_handshake(
        std::move(std::get<tcp::socket>(next)), *tls_, sni, cfg_.connect_timeout);
    if (hec) {
      std::string msg = "TLS handshake with the gateway at " + where + " failed: " + hec.message();
      if (hec.category() == net::error::get_ssl_category()) {
        msg += " (certificate verify failed? use --ca FILE for a private CA)";
      }
      co_return msg;
    }
    next.emplace<transport::TlsStream>(std::move(tls));
  }
  std::optional<transport::Stream> io;
  if (cfg_.gateway_scheme == "ws" || cfg_.gateway_scheme == "wss") {
    // Host header: the port only when it is not the scheme's default.
    std::string host = cfg_.gateway_host.find(':') != std::string::npos
                           ? "[" + cfg_.gateway_host + "]"
                           : cfg_.gateway_host;
    if (cfg_.gateway_port != (cfg_.gateway_scheme == "ws" ? "80" : "443")) {
      host += ":" + cfg_.gateway_port;
    }
    auto [wec, ws] = co_await transport::ws_client_handshake(
        std::move(next), host, cfg_.gateway_path, cfg_.connect_timeout);
    if (wec) {
      co_return "WebSocket handshake with " + cfg_.gateway + " failed: " + wec.message() +
          (wec == boost::beast::websocket::error::upgrade_declined
               ? " (is the path right? the gateway serves /ws)"
               : "");
    }
    io.emplace(std::move(*ws));
  } else if (auto* tls = std::get_if<transport::TlsStream>(&next)) {
    io.emplace(std::move(*tls));
  } else {
    io.emplace(std::move(std::get<tcp::socket>(next)));
  }
  session_ = std::make_shared<tunnel::Session>(std::move(*io), opts);
  co_return co_await run_session(where);
}

awaitable<std::string> Agent::run_session(const std::string& where) {
  auto session = session_;
  session_closed_ = false;
  auth_.reset();
  auth_refused_ = false;
  closed_reason_.clear();
  session->start(shared_from_this());

  set_state(State::Authenticating);
  proto::AuthRequest req;
  req.token = cfg_.token.reveal();
  req.agent_id = cfg_.id;
  req.version = kVersion;
  req.capabilities = {"http"};
  req.carrier = session->carrier();
  session->send_control(FrameType::AuthRequest, 0, proto::encode(req));

  // Wait for AUTH_RESPONSE, bounded by the connect timeout.
  net::steady_timer deadline(ex_, cfg_.connect_timeout);
  deadline.async_wait([session](error_code e) {
    if (!e) session->close(proto::ErrorCode::AuthFailed, "no AUTH_RESPONSE in time");
  });
  while (!auth_ && !session_closed_) co_await event_.wait();
  deadline.cancel();
  if (!auth_) {
    co_return "session with the gateway at " + where +
        " ended during authentication: " + closed_reason_;
  }
  if (!auth_->ok) {
    logger()->error("authentication refused by the gateway at {}: {}", where, auth_->error);
    if (on_auth_failed_) on_auth_failed_(auth_->error);
    session->close(proto::ErrorCode::None, "auth refused");
    while (!session_closed_) co_await event_.wait();
    co_return "authentication failed";
  }
  const auto hb =
      std::chrono::milliseconds(std::max<std::uint32_t>(auth_->heartbeat_interval_ms, 100));
  session->set_max_payload(auth_->max_payload);
  session->set_window(auth_->window);
  session->set_heartbeat(hb, hb * 3);
  set_state(State::Connected);
  logger()->info("connected to {} over {} (session {})", where, session->carrier(),
                 auth_->session_id);

  for (const auto& t : cfg_.tunnels) {
    proto::TunnelSpec spec;
    spec.name = t.name;
    spec.type = t.tcp ? proto::TunnelType::Tcp : proto::TunnelType::Http;
    spec.local_target = t.host + ":" + t.port;
    spec.token = t.token.reveal();
    spec.remote_port = t.remote_port;
    session->send_control(FrameType::RegisterTunnel, 0, proto::encode(spec));
  }

  while (!session_closed_) co_await event_.wait();
  co_return "disconnected from the gateway: " + closed_reason_;
}

void Agent::on_control(tunnel::Session& s, const proto::FrameHeader& h, proto::Bytes payload) {
  std::string err;
  switch (h.type) {
    case FrameType::AuthResponse: {
      auto resp = proto::decode_auth_response(payload, &err);
      if (!resp) {
        // A refusal may carry defaults that fail range checks; read ok/error leniently.
        proto::AuthResponse r;
        r.ok = false;
        r.error = "malformed AUTH_RESPONSE: " + err;
        auth_ = r;
      } else {
        auth_ = std::move(*resp);
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
      if (res->ok) {
        ++registered_;
        std::string urls;
        for (const auto& u : res->urls) urls += (urls.empty() ? "" : " ") + u;
        logger()->info("tunnel '{}' is live: {}", res->name, urls);
      } else {
        logger()->error("tunnel '{}' refused by the gateway: {}", res->name, res->error);
      }
      if (on_registered_) on_registered_(*res);
      return;
    }
    case FrameType::GoAway:
      logger()->info("the gateway is going away; will reconnect when it closes");
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

void Agent::on_closed(tunnel::Session&, const std::string& reason) {
  session_closed_ = true;
  closed_reason_ = reason;
  event_.notify();
}

}  // namespace proxer::agent
