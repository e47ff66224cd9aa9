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

class Gateway {
 public:
  Gateway(net::any_io_executor ex, config::GatewayConfig cfg);
  ~Gateway();

  // Binds all listeners. Returns a message naming the address on failure ("" on success).
  std::string bind();
  void start();
  // Graceful stop: stop accepting, GOAWAY to agents, let in-flight requests finish up to the
  // grace period, then close everything. `done` runs when finished.
  void shutdown(std::function<void()> done);

  std::uint16_t public_port() const { return public_.port(); }
  std::uint16_t agent_port() const;
  std::uint16_t admin_port() const { return admin_.port(); }
  Context& context() { return *ctx_; }

 private:
  awaitable<void> agent_accept_loop();
  awaitable<void> agent_handshake(tcp::socket sock);
  awaitable<void> drain(std::function<void()> done);
  awaitable<void> housekeeping();

  net::any_io_executor ex_;
  std::unique_ptr<Context> ctx_;
  PublicServer public_;
  AdminServer admin_;
  tcp::acceptor agent_acceptor_;
  std::shared_ptr<transport::ssl::context> tls_;
  bool stopping_ = false;
  net::steady_timer housekeeping_timer_;
};

}  // namespace proxer::gateway
