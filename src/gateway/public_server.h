#pragma once
// The public HTTP/1.1 listener: one coroutine per client connection, keep-alive, and the
// forwarding of each request through a tunnel stream (life of a request: docs/ARCHITECTURE.md).
#include <memory>
#include <string>
#include <unordered_set>

#include "core/asio.h"
#include "gateway/context.h"

namespace proxer::gateway {

class ClientConn;

// Who sends the requests of an adopted connection (a socket without a peer address of its own).
// The owner of the connection may change it between two requests (the embedded engine reuses
// its internal connections for requests of different clients); the connection reads it when a
// request begins, so a change must happen while the connection waits for the next request (its
// previous response read whole), before that request is written.
struct AdoptedClient {
  std::string ip = "unknown";    // X-Forwarded-For, Forwarded, the ip_hash key
  std::string addr = "unknown";  // "IP" or "IP:PORT": tunnel stream metadata, logs
};

class PublicServer {
 public:
  PublicServer(net::any_io_executor ex, Context& ctx);
  // Binds; returns the error (the caller names the address).
  error_code listen(const std::string& address);
  std::uint16_t port() const;
  void start();
  // Serves a connection that did not come from the listener: the embedded engine's internal
  // connection (src/embed), one end of an AF_UNIX socketpair held in a tcp::socket (only byte
  // stream operations are used on it). `client` stands in for the peer address such a socket
  // lacks, read anew for each request on it (keep-alive as for any client).
  void adopt(tcp::socket sock, std::shared_ptr<const AdoptedClient> client);
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
