#pragma once
// Public TCP ports of TCP tunnels. Each registered TCP tunnel name gets one listener on a port from
// `tcp.port_range` (shared by the members of a pool: each connection goes to the next usable
// member, in turn); every connection accepted there becomes a stream to that agent (OPEN_STREAM
// carries the client's and the listener's addresses, for the agent's PROXY protocol header) and
// is piped both ways byte for byte. The gateway never looks inside.
#include <memory>
#include <string>

#include "core/asio.h"
#include "gateway/context.h"

namespace proxer::gateway {

class TcpListener : public std::enable_shared_from_this<TcpListener> {
 public:
  TcpListener(Context& ctx, std::string name, tcp::acceptor acceptor);
  void start();
  // Closes the port at once (it can be bound again right away). Connections already piped carry
  // on until either side closes or the session ends.
  void stop();
  std::uint16_t port() const { return port_; }
  std::size_t connections() const { return connections_; }

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket sock);

  Context& ctx_;
  std::string name_;  // the tunnel: its members are looked up per connection
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::string server_addr_;
  std::size_t connections_ = 0;
};

// Binds a public port for TCP tunnel `t`: `requested` if not 0 (it must lie in the range), else
// the first free port of the range, starting from a point derived from the tunnel name so that a
// reconnecting agent usually gets its old port back. Returns nullptr and sets *error (for the
// agent) when TCP tunnels are off, the port is outside the range or busy, or the range is full.
std::shared_ptr<TcpListener> open_tcp_listener(Context& ctx, const std::shared_ptr<Tunnel>& t,
                                               std::uint16_t requested, std::string* error);

}  // namespace proxer::gateway
