#pragma once
// Admin listener (loopback by default): health, tunnel list with counters, dashboard.
#include "core/asio.h"
#include "gateway/context.h"

namespace proxer::gateway {

class AdminServer {
 public:
  AdminServer(net::any_io_executor ex, Context& ctx);
  error_code listen(const std::string& address);
  std::uint16_t port() const;
  void start();
  void stop();

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket sock);

  net::any_io_executor ex_;
  Context& ctx_;
  tcp::acceptor acceptor_;
};

// JSON bodies of the admin API (exposed for tests).
std::string health_json(const Context& ctx);
std::string tunnels_json(const Context& ctx);
std::string connections_json(const Context& ctx);

}  // namespace proxer::gateway
