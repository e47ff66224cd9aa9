#include "gateway/tcp_tunnels.h"

#include "core/log.h"
#include "tunnel/pump.h"

namespace proxer::gateway {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("tcp");  // NOLINT: immutable after first use
  return l;
}

std::string endpoint_string(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

// The address TCP tunnel ports listen on: tcp.bind, else the host of the public listener when it
// is an IP address, else every IPv4 address.
std::optional<net::ip::address> bind_address(const config::GatewayConfig& cfg) {
  error_code ec;
  if (!cfg.tcp_bind.empty()) {
    auto a = net::ip::make_address(cfg.tcp_bind, ec);
    if (ec) return std::nullopt;
    return a;
  }
  std::string host, port;
  if (config::split_host_port(cfg.listen, host, port)) {
    auto a = net::ip::make_address(host, ec);
    if (!ec) return a;
  }
  return net::ip::address_v4::any();
}

error_code try_bind(tcp::acceptor& acc, const tcp::endpoint& ep) {
  error_code ec;
  acc.open(ep.protocol(), ec);
  if (ec) return ec;
  acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acc.close(ignored);
  }
  return ec;
}

}  // namespace

TcpListener::TcpListener(Context& ctx, std::string name, tcp::acceptor acceptor)
    : ctx_(ctx), name_(std::move(name)), acceptor_(std::move(acceptor)) {
  error_code ec;
  const auto ep = acceptor_.local_endpoint(ec);
  port_ = ep.port();
  server_addr_ = endpoint_string(ep);
}

void TcpListener::start() {
  net::co_spawn(
      acceptor_.get_executor(), [self = shared_from_this()] { return self->accept_loop(); },
      DetachedTask{"tcp tunnel accept loop"});
}

void TcpListener::stop() {
  error_code ec;
  acceptor_.close(ec);
}

awaitable<void> TcpListener::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
    if (!acceptor_.is_open()) co_return;
    if (ec) {  // out of descriptors and the like: back off instead of spinning
      net::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    if (ctx_.draining) {
      error_code ignored;
      sock.close(ignored);
      continue;
    }
    net::co_spawn(acceptor_.get_executor(), serve(std::move(sock)),
                  DetachedTask{"tcp tunnel connection"});
  }
}

awaitable<void> TcpListener::serve(tcp::socket sock) {
  auto self = shared_from_this();
  error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  const auto remote = sock.remote_endpoint(ec);
  const std::string client = ec ? std::string() : endpoint_string(remote);
  // Each connection to the next usable member of the pool (the only one, without a pool).
  auto t = ctx_.registry.pick(name_, proxy::Lb::RoundRobin);
  if (!t) {
    if (auto any = ctx_.registry.find(name_)) {
      ++any->stats.request_count;
      ++any->stats.error_count;
    }
    logger()->info("tunnel '{}': no connected, healthy agent; connection from {} closed", name_,
                   client);
    co_return;  // the socket closes
  }
  ++t->stats.request_count;
  MemberLoad load(t);
  auto stream = t->session->open_stream({t->name, client, server_addr_});
  if (!stream) {
    ++t->stats.error_count;
    logger()->warn("tunnel '{}': the agent cannot take more streams; connection from {} closed",
                   t->name, client);
    co_return;
  }
  ++connections_;
  ++ctx_.stats.connections_active;
  auto result = co_await tunnel::pump(stream, std::move(sock), ctx_.cfg.tcp_idle_timeout);
  --ctx_.stats.connections_active;
  --connections_;
  t->stats.bytes_in += result.to_stream;
  t->stats.bytes_out += result.to_socket;
  // A clean end is a FIN each way; anything else (either side reset, idle timeout) counts.
  const bool failed = !(stream->fin_sent() && stream->fin_received());
  if (failed) ++t->stats.error_count;
  logger()->debug("tunnel '{}': connection from {} done, {} bytes in, {} out{}", t->name, client,
                  result.to_stream, result.to_socket, failed ? " (reset)" : "");
}

std::shared_ptr<TcpListener> open_tcp_listener(Context& ctx, const std::shared_ptr<Tunnel>& t,
                                               std::uint16_t requested, std::string* error) {
  const auto& cfg = ctx.cfg;
  if (cfg.tcp_port_range.empty()) {
    *error = "this gateway serves no TCP tunnels (tcp.port_range is empty)";
    return nullptr;
  }
  const auto range = config::parse_port_range(cfg.tcp_port_range, nullptr);
  const auto addr = bind_address(cfg);
  if (!range || !addr) {
    *error = "the gateway's TCP tunnel settings are invalid";
    return nullptr;
  }
  const auto [lo, hi] = *range;
  tcp::acceptor acc(t->session ? t->session->get_executor() : net::any_io_executor{});
  if (requested != 0) {
    if (requested < lo || requested > hi) {
      *error = "port " + std::to_string(requested) + " is outside this gateway's TCP port range " +
               cfg.tcp_port_range;
      return nullptr;
    }
    if (auto ec = try_bind(acc, tcp::endpoint(*addr, requested))) {
      *error = "port " + std::to_string(requested) + " is not available: " + ec.message();
      return nullptr;
    }
  } else {
    // Start from a point derived from the name: the same tunnel tends to get the same port.
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (char c : t->name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    const std::uint32_t span = static_cast<std::uint32_t>(hi) - lo + 1;
    bool bound = false;
    for (std::uint32_t i = 0; i < span && !bound; ++i) {
      const auto port = static_cast<std::uint16_t>(lo + (h + i) % span);
      bound = !try_bind(acc, tcp::endpoint(*addr, port));
    }
    if (!bound) {
      *error = "no free port left in this gateway's TCP port range " + cfg.tcp_port_range;
      return nullptr;
    }
  }
  auto l = std::make_shared<TcpListener>(ctx, t->name, std::move(acc));
  l->start();
  return l;
}

}  // namespace proxer::gateway
