#pragma once
// The built-in demo site of `proxer up`: a tiny HTTP server on loopback that serves the embedded
// pages under web/static/demo/ and a JSON echo of the request at /api/echo. The agent reaches
// it like any local service, so the demo exercises the real tunnel path.
#include "core/asio.h"

namespace proxer::app {

class DemoSite {
 public:
  explicit DemoSite(net::any_io_executor ex);
  // Binds 127.0.0.1 on a free port; returns the port (0 on failure).
  std::uint16_t listen();
  void start();
  void stop();

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket sock);
  net::any_io_executor ex_;
  tcp::acceptor acceptor_;
};

}  // namespace proxer::app
