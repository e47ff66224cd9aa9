#include "gateway/gateway.h"

#include <algorithm>
#include <boost/asio/read.hpp>

#include "core/deadline.h"
#include "core/log.h"
#include "gateway/agent_conn.h"
#include "gateway/agent_http.h"
#include "gateway/discovered.h"
#include "gateway/health_checker.h"
#include "gateway/poll_carrier.h"
#include "gateway/tcp_tunnels.h"

namespace proxer::gateway {

namespace {
// TLS, then the first bytes (and the WebSocket upgrade) of a new agent connection.
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("gateway");  // NOLINT: immutable after first use
  return l;
}

bool is_loopback(const std::string& host_port) {
  std::string host, port;
  if (!transport::split_host_port(host_port, host, port)) return false;
  error_code ec;
  auto a = net::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}
}  // namespace

Gateway::Gateway(net::any_io_executor ex, config::GatewayConfig cfg)
    : ex_(ex),
      ctx_(std::make_unique<Context>(std::move(cfg), ex)),
      public_(ex, *ctx_),
      admin_(ex, *ctx_),
      agent_acceptor_(ex),
      housekeeping_timer_(ex) {}

Gateway::~Gateway() {
  stop_health_checks();
}

std::uint16_t Gateway::agent_port() const {
  error_code ec;
  return agent_acceptor_.local_endpoint(ec).port();
}

std::string Gateway::bind(Listeners which) {
  const auto& cfg = ctx_->cfg;
  listeners_ = which;
  auto describe = [](const char* what, const std::string& addr, error_code ec) {
    std::string msg = std::string("cannot listen on ") + addr + " (" + what + "): " + ec.message();
    if (ec == net::error::address_in_use) msg += " — is another process using this port?";
    return msg;
  };
  if (which.public_http) {
    if (auto ec = public_.listen(cfg.listen)) return describe("public listener", cfg.listen, ec);
  }
  if (which.agent) {
    if (auto ec = transport::listen_tcp(agent_acceptor_, cfg.agent_listen)) {
      return describe("agent listener", cfg.agent_listen, ec);
    }
  }
  if (which.admin) {
    if (auto ec = admin_.listen(cfg.admin_listen)) {
      return describe("admin listener", cfg.admin_listen, ec);
    }
  }
  if (!cfg.tls_cert.empty()) {
    try {
      tls_ = transport::make_server_tls_context(cfg.tls_cert, cfg.tls_key);
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  ctx_->public_port = public_.port();
  ctx_->public_url = cfg.public_url;
  if (ctx_->public_url.empty()) {
    ctx_->public_url = "http://" + cfg.domain;
    // Without a public listener of its own (embedded) the port is the host program's business.
    if (which.public_http && ctx_->public_port != 80) {
      ctx_->public_url += ":" + std::to_string(ctx_->public_port);
    }
  }
  return {};
}

void Gateway::start() {
  const auto& cfg = ctx_->cfg;
  if (listeners_.public_http) public_.start();
  if (listeners_.admin) admin_.start();
  if (listeners_.agent) net::co_spawn(ex_, agent_accept_loop(), DetachedTask{"agent accept loop"});
  net::co_spawn(ex_, housekeeping(), DetachedTask{"housekeeping"});
  restart_health_checks();
  discovered_ = std::make_unique<DiscoveredClusters>(*ctx_, [this] { restart_health_checks(); });
  try {
    auto cfg_copy = ctx_->cfg;
    discovered_->sync(cfg_copy);
  } catch (const std::exception& e) {
    logger()->error("service discovery: {}", e.what());
  }
  if (listeners_.public_http) {
    logger()->info("public HTTP on {} (tunnels at http://{{name}}.{}:{}/ and /t/{{name}}/)",
                   cfg.listen, cfg.domain, public_.port());
  }
  if (listeners_.agent) {
    logger()->info("agents on {} ({})", cfg.agent_listen, tls_ ? "TLS" : "plain TCP");
  }
  if (listeners_.admin) logger()->info("admin on {}", cfg.admin_listen);
  if (!listeners_.agent) return;
  if (!tls_ && !is_loopback(cfg.agent_listen)) {
    logger()->warn(
        "agents connect to {} without TLS: tokens and traffic cross the network in clear text; "
        "set --tls-cert/--tls-key",
        cfg.agent_listen);
  }
  if (cfg.token.empty()) {
    logger()->warn("no agent token configured: any agent may register tunnels (set --token)");
  }
}

awaitable<void> Gateway::agent_accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await agent_acceptor_.async_accept(use_nothrow);
    if (!agent_acceptor_.is_open()) co_return;
    if (ec) {
      net::steady_timer t(ex_, std::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    // The handshake runs in its own coroutine: a slow agent never stalls the accept loop.
    net::co_spawn(ex_, agent_handshake(std::move(sock)), DetachedTask{"agent handshake"});
  }
}

awaitable<void> Gateway::agent_handshake(tcp::socket sock) {
  error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  const auto remote = sock.remote_endpoint(ec);
  const auto deadline = std::chrono::duration_cast<std::chrono::milliseconds>(kHandshakeTimeout);
  std::variant<tcp::socket, transport::TlsStream> next(std::move(sock));
  if (tls_) {
    auto [hec, tls] = co_await transport::tls_server_handshake(
        std::move(std::get<tcp::socket>(next)), *tls_, deadline);
    if (hec) {
      logger()->info("TLS handshake with {} failed: {}", remote.address().to_string(),
                     hec.message());
      co_return;
    }
    next.emplace<transport::TlsStream>(std::move(tls));
  }
  // The first four bytes tell the carrier: the start of the protocol preface ("PRXR", checked
  // whole by the session) or else HTTP: a WebSocket upgrade or the long-poll endpoints.
  std::string first(4, '\0');
  {
    tcp::socket* lowest = std::visit(
        [](auto& s) -> tcp::socket* { return &boost::beast::get_lowest_layer(s); }, next);
    Deadline sniff(ex_, deadline, [lowest] {
      error_code ignored;
      lowest->cancel(ignored);
    });
    auto [rec, n] = co_await std::visit(
        [&](auto& s) { return net::async_read(s, net::buffer(first), use_nothrow); }, next);
    sniff.done();
    if (rec) {
      logger()->debug("agent connection from {} ended before its first bytes: {}",
                      remote.address().to_string(), rec.message());
      co_return;
    }
  }
  if (first != proto::kPreface.substr(0, 4)) {
    // Not the preface: HTTP (a WebSocket upgrade or the long-poll endpoints).
    co_await serve_agent_http(*ctx_, std::move(next), std::move(first),
                              remote.address().to_string() + ":" + std::to_string(remote.port()),
                              deadline);
    co_return;
  }
  std::optional<transport::Stream> io;
  if (auto* tls = std::get_if<transport::TlsStream>(&next)) {
    io.emplace(std::move(*tls));
  } else {
    io.emplace(std::move(std::get<tcp::socket>(next)));
  }
  io->unread(std::move(first));
  AgentConn::start_session(*ctx_, std::move(*io));
}

awaitable<void> Gateway::housekeeping() {
  // Pooled streams hold a connection to the local service open; release the ones idle past
  // pool.idle_timeout (and any whose local side closed) once a second.
  while (!stopping_) {
    housekeeping_timer_.expires_after(std::chrono::seconds(1));
    co_await housekeeping_timer_.async_wait(use_nothrow);
    if (stopping_) co_return;
    for (auto& t : ctx_->registry.all()) expire_idle_streams(*t, ctx_->cfg.pool_idle_timeout);
    expire_poll_sessions(*ctx_, ctx_->cfg.session_ttl);
  }
}

void Gateway::restart_health_checks() {
  if (stopping_) return;
  std::vector<std::shared_ptr<HealthChecker>> next;
  static const std::vector<std::shared_ptr<UpstreamCluster>> none;
  for (const auto& c : ctx_->routes ? ctx_->routes->clusters : none) {
    if (!c->cfg().health_check.enabled()) continue;
    auto kept = std::find_if(health_.begin(), health_.end(),
                             [&](const auto& h) { return h && h->cluster() == c && h->current(); });
    if (kept != health_.end()) {
      next.push_back(std::move(*kept));  // the same cluster: its checks go on undisturbed
      continue;
    }
    auto h = std::make_shared<HealthChecker>(*ctx_, c);
    h->start();
    next.push_back(std::move(h));
  }
  stop_health_checks();  // the checkers of clusters that left the table
  health_ = std::move(next);
}

void Gateway::stop_health_checks() {
  for (auto& h : health_) {
    if (h) h->stop();
  }
  health_.clear();
}

void Gateway::shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  if (discovered_) discovered_->stop();
  housekeeping_timer_.cancel();
  stop_health_checks();
  ctx_->draining = true;
  error_code ec;
  agent_acceptor_.close(ec);
  for (auto& t : ctx_->registry.all()) {
    if (t->tcp) t->tcp->stop();  // no new TCP tunnel connections; open ones end with the session
  }
  public_.drain();
  for (auto& a : ctx_->registry.agents()) {
    a->session()->go_away(proto::ErrorCode::Shutdown, "gateway shutting down");
  }
  logger()->info("draining: {} connection(s), {} request(s) in flight", public_.connections(),
                 ctx_->stats.requests_active);
  net::co_spawn(ex_, drain(std::move(done)), DetachedTask{"drain"});
}

awaitable<void> Gateway::drain(std::function<void()> done) {
  const auto deadline = std::chrono::steady_clock::now() + ctx_->cfg.shutdown_grace;
  net::steady_timer t(ex_);
  while (ctx_->stats.requests_active > 0 && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(use_nothrow);
    public_.drain();  // connections that became idle since
  }
  if (ctx_->stats.requests_active > 0) {
    logger()->warn("grace period over: {} request(s) still in flight are cut",
                   ctx_->stats.requests_active);
  }
  public_.close_all();
  admin_.stop();
  // Idle pooled upstream connections go too, with their sweep timers: nothing of the gateway is
  // left waiting on the loop (the embedded engine lets its loop run out of work).
  for (const auto& c : ctx_->routes->clusters) {
    for (std::size_t i = 0; i < c->policy().endpoints().size(); ++i) {
      if (const auto& pool = c->pool(i)) pool->close_idle();
    }
  }
  for (auto& a : ctx_->registry.agents()) {
    a->session()->close(proto::ErrorCode::Shutdown, "gateway stopped");
  }
  // Let the ERROR/GOAWAY frames and final responses flush.
  t.expires_after(std::chrono::milliseconds(50));
  co_await t.async_wait(use_nothrow);
  logger()->info("stopped");
  done();
}

}  // namespace proxer::gateway
