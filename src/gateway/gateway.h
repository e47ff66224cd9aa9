#pragma once
// The gateway process: public listener, agent listener (TCP or TLS), admin listener. Owns the
// shared Context. Runs on one executor.
#include <memory>
#include <vector>

#include "core/asio.h"
#include "gateway/admin_server.h"
#include "gateway/context.h"
#include "gateway/public_server.h"
#include "transport/stream.h"

namespace proxer::gateway {

class HealthChecker;
class DiscoveredClusters;

class Gateway {
 public:
  Gateway(net::any_io_executor ex, config::GatewayConfig cfg);
  ~Gateway();

  // Which listeners bind() opens: all three for `proxer gateway`; the embedded engine
  // (src/embed) opens only the ones its configuration sets and feeds requests through
  // public_server().adopt().
  struct Listeners {
    bool public_http = true;
    bool agent = true;
    bool admin = true;
  };
  // Binds the listeners. Returns a message naming the address on failure ("" on success).
  std::string bind(Listeners which);
  std::string bind() { return bind(Listeners{}); }
  void start();
  // Graceful stop: stop accepting, GOAWAY to agents, let in-flight requests finish up to the
  // grace period, then close everything. `done` runs when finished.
  void shutdown(std::function<void()> done);

  std::uint16_t public_port() const { return public_.port(); }
  std::uint16_t agent_port() const;
  std::uint16_t admin_port() const { return admin_.port(); }
  Context& context() { return *ctx_; }
  PublicServer& public_server() { return public_; }

  // Active health checks (gateway/health_checker.h) of the clusters in ctx_->routes that enable
  // them: keeps the checkers of clusters still in the table, stops the others, starts new ones.
  // start() calls it; call it again after swapping ctx_->routes. Does nothing once stopping.
  void restart_health_checks();

  // Hot reload (gateway/reload.cpp): applies the [[routes]] and [clusters] of `next`, which the
  // caller loaded and validated, by swapping in a new route table; requests in flight finish on
  // the table they started with. Returns an error when the table cannot be built (the old one
  // keeps serving). Other keys that differ are logged as needing a restart.
  std::string reload(const config::GatewayConfig& next);

 private:
  awaitable<void> agent_accept_loop();
  awaitable<void> agent_handshake(tcp::socket sock);
  awaitable<void> drain(std::function<void()> done);
  awaitable<void> housekeeping();
  void stop_health_checks();

  net::any_io_executor ex_;
  std::unique_ptr<Context> ctx_;
  PublicServer public_;
  AdminServer admin_;
  tcp::acceptor agent_acceptor_;
  std::shared_ptr<transport::ssl::context> tls_;
  Listeners listeners_;
  bool stopping_ = false;
  net::steady_timer housekeeping_timer_;
  std::vector<std::shared_ptr<HealthChecker>> health_;
  // Providers of the clusters with [clusters.NAME.discovery] (gateway/discovered.h).
  std::unique_ptr<DiscoveredClusters> discovered_;
};

}  // namespace proxer::gateway
