#pragma once
// The public HTTP/1.1 listener: one coroutine per client connection, keep-alive, and the
// forwarding of each request through a tunnel stream (life of a request: docs/ARCHITECTURE.md).
#include <memory>
#include <unordered_set>

#include "core/asio.h"
#include "gateway/context.h"

namespace proxer::gateway {

class ClientConn;

class PublicServer {
 public:
  PublicServer(net::any_io_executor ex, Context& ctx);
  // Binds; returns the error (the caller names the address).
  error_code listen(const std::string& address);
  std::uint16_t port() const;
  void start();
  // Serves a connection that did not come from the listener: the embedded engine's internal
  // connection (src/embed), one end of an AF_UNIX socketpair held in a tcp::socket (only byte
  // stream operations are used on it). `client_ip` and `client_addr` ("IP" or "IP:PORT") stand in
  // for the peer address such a socket lacks (X-Forwarded-For, Forwarded, ip_hash, tunnel
  // stream metadata).
  void adopt(tcp::socket sock, std::string client_ip, std::string client_addr);
  // Stops accepting and closes idle keep-alive connections; busy ones close after their
  // current response.
  void drain();
  std::size_t connections() const { return conns_.size(); }
  // Closes everything at once (end of the grace period).
  void close_all();

 private:
  friend class ClientConn;
  awaitable<void> accept_loop();

  net::any_io_executor ex_;
  Context& ctx_;
  tcp::acceptor acceptor_;
  std::unordered_set<ClientConn*> conns_;
};

}  // namespace proxer::gateway
