#include "transport/stream.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <charconv>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "core/deadline.h"

namespace proxer::transport {

using namespace net::experimental::awaitable_operators;

namespace websocket = boost::beast::websocket;

namespace {
template <typename T>
constexpr bool is_ws = std::is_same_v<T, WsStream> || std::is_same_v<T, WssStream>;
}  // namespace

awaitable<std::pair<error_code, std::size_t>> Stream::read_some(net::mutable_buffer buf) {
  if (!prefix_.empty()) {
    const auto n = std::min(prefix_.size(), buf.size());
    std::memcpy(buf.data(), prefix_.data(), n);
    prefix_.erase(0, n);
    co_return std::pair{error_code{}, n};
  }
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return s.async_read_some(buf, use_nothrow); }, v_);
  if (ec == websocket::error::closed) ec = net::error::eof;  // the peer's close frame
  co_return std::pair{ec, n};
}

awaitable<std::pair<error_code, std::size_t>> Stream::write(
    std::span<const net::const_buffer> bufs) {
  auto [ec, n] = co_await std::visit(
      [&](auto& s) {
        using S = std::decay_t<decltype(s)>;
        if constexpr (is_ws<S>) {
          return s.async_write(bufs, use_nothrow);  // one binary message per gather write
        } else {
          return net::async_write(s, bufs, use_nothrow);
        }
      },
      v_);
  co_return std::pair{ec, n};
}

tcp::socket* Stream::tcp_socket() {
  if (auto* s = std::get_if<tcp::socket>(&v_)) return s;
  if (auto* t = std::get_if<TlsStream>(&v_)) return &t->next_layer();
  if (auto* w = std::get_if<WsStream>(&v_)) return &w->next_layer();
  if (auto* w = std::get_if<WssStream>(&v_)) return &w->next_layer().next_layer();
  return nullptr;
}

void Stream::shutdown_send() {
  error_code ec;
  if (auto* s = std::get_if<UnixSocket>(&v_)) {
    s->shutdown(net::socket_base::shutdown_send, ec);
  } else if (auto* t = tcp_socket()) {
    t->shutdown(net::socket_base::shutdown_send, ec);
  }
}

void Stream::close() {
  error_code ec;
  if (auto* s = std::get_if<UnixSocket>(&v_)) {
    s->close(ec);
  } else if (auto* t = tcp_socket()) {
    t->close(ec);
  }
}

void Stream::cancel() {
  error_code ec;
  if (auto* s = std::get_if<UnixSocket>(&v_)) {
    s->cancel(ec);
  } else if (auto* t = tcp_socket()) {
    t->cancel(ec);
  }
}

std::string Stream::remote_address() const {
  if (!remote_override_.empty()) return remote_override_;
  error_code ec;
  if (std::holds_alternative<UnixSocket>(v_)) return "unix";
  const tcp::socket* t = const_cast<Stream*>(this)->tcp_socket();
  if (t == nullptr) return "unknown";
  auto ep = t->remote_endpoint(ec);
  if (ec) return "unknown";
  auto addr = ep.address();
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

const char* Stream::carrier() const {
  if (carrier_name_) return carrier_name_;
  switch (v_.index()) {
    case 0:
      return "tcp";
    case 1:
      return "tls";
    case 3:
      return "ws";
    case 4:
      return "wss";
    default:
      return "unix";
  }
}

std::string join_host_port(std::string_view host, std::string_view port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out.append(":").append(port);
}

bool split_host_port(std::string_view in, std::string& host, std::string& port) {
  if (in.empty()) return false;
  std::size_t colon;
  if (in.front() == '[') {
    auto close = in.find(']');
    if (close == std::string_view::npos || close + 1 >= in.size() || in[close + 1] != ':') {
      return false;
    }
    host = std::string(in.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = in.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(in.substr(0, colon));
    if (host.find(':') != std::string::npos) return false;
  }
  port = std::string(in.substr(colon + 1));
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoul(port) <= 65535;
}

namespace {
// Runs `op` with a deadline: the timer closes nothing, it cancels the operation (the || operator
// cancels the loser).
template <typename T>
awaitable<std::pair<error_code, T>> with_deadline(awaitable<std::pair<error_code, T>> op,
                                                  std::chrono::milliseconds timeout) {
  net::steady_timer timer(co_await net::this_coro::executor, timeout);
  auto result = co_await (std::move(op) || timer.async_wait(net::use_awaitable));
  if (result.index() == 0) co_return std::move(std::get<0>(result));
  co_return std::pair<error_code, T>{net::error::timed_out, T(co_await net::this_coro::executor)};
}

awaitable<std::pair<error_code, tcp::socket>> connect_impl(net::any_io_executor ex,
                                                           std::string host, std::string port) {
  // An IP literal and a numeric port need no resolver (whose lookups run on a helper thread).
  error_code aec;
  const auto addr = net::ip::make_address(host, aec);
  unsigned long port_number = 0;
  const auto [end, pec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (!aec && pec == std::errc() && end == port.data() + port.size() && port_number <= 65535) {
    tcp::socket sock(ex);
    const tcp::endpoint ep(addr, static_cast<std::uint16_t>(port_number));
    auto [cec] = co_await sock.async_connect(ep, use_nothrow);
    if (!cec) {
      error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
    }
    co_return std::pair{cec, std::move(sock)};
  }
  tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(host, port, use_nothrow);
  tcp::socket sock(ex);
  if (rec) co_return std::pair{rec, std::move(sock)};
  auto [cec, ep] = co_await net::async_connect(sock, results, use_nothrow);
  if (!cec) {
    error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
  }
  co_return std::pair{cec, std::move(sock)};
}

// TlsStream has no executor-only constructor; with_deadline needs T(executor) for the timeout
// value, so wrap the timeout path by hand.
awaitable<std::pair<error_code, TlsStream>> tls_with_deadline(tcp::socket sock, ssl::context& ctx,
                                                              std::string server_name, bool client,
                                                              std::chrono::milliseconds timeout) {
  auto ex = sock.get_executor();
  TlsStream s(std::move(sock), ctx);
  tcp::socket* raw = &s.next_layer();
  Deadline deadline(ex, timeout, [raw] {
    error_code ignored;
    raw->cancel(ignored);
  });
  if (client && !server_name.empty()) {
    SSL_set_tlsext_host_name(s.native_handle(), server_name.c_str());
    s.set_verify_callback(ssl::host_name_verification(server_name));
  }
  auto [ec] = co_await s.async_handshake(
      client ? ssl::stream_base::client : ssl::stream_base::server, use_nothrow);
  deadline.done();
  if (deadline.expired()) ec = net::error::timed_out;
  co_return std::pair{ec, std::move(s)};
}

}  // namespace

awaitable<std::pair<error_code, tcp::socket>> connect_tcp(net::any_io_executor ex,
                                                          const std::string& host,
                                                          const std::string& port,
                                                          std::chrono::milliseconds timeout) {
  co_return co_await with_deadline<tcp::socket>(connect_impl(ex, host, port), timeout);
}

awaitable<std::pair<error_code, TlsStream>> tls_client_handshake(
    tcp::socket sock, ssl::context& ctx, const std::string& server_name,
    std::chrono::milliseconds timeout) {
  co_return co_await tls_with_deadline(std::move(sock), ctx, server_name, true, timeout);
}

awaitable<std::pair<error_code, TlsStream>> tls_server_handshake(
    tcp::socket sock, ssl::context& ctx, std::chrono::milliseconds timeout) {
  co_return co_await tls_with_deadline(std::move(sock), ctx, {}, false, timeout);
}

std::shared_ptr<ssl::context> make_client_tls_context(const std::string& ca_file, bool insecure) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (insecure) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  ctx->set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("cannot load CA file '" + ca_file + "': " + ec.message());
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) throw std::runtime_error("cannot load the system CA store: " + ec.message());
  }
  return ctx;
}

std::shared_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) throw std::runtime_error("cannot load certificate '" + cert_file + "': " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot load private key '" + key_file + "': " + ec.message());
  return ctx;
}

error_code listen_tcp(tcp::acceptor& acceptor, const std::string& host_port, int backlog) {
  std::string host, port;
  if (!split_host_port(host_port, host, port)) return net::error::invalid_argument;
  error_code ec;
  auto addr = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    // A host name: resolve synchronously (start-up only).
    tcp::resolver r(acceptor.get_executor());
    auto results = r.resolve(host, port, ec);
    if (ec || results.empty()) return ec ? ec : net::error::host_not_found;
    addr = results.begin()->endpoint().address();
  }
  tcp::endpoint ep(addr, static_cast<unsigned short>(std::stoul(port)));
  acceptor.open(ep.protocol(), ec);
  if (ec) return ec;
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  acceptor.bind(ep, ec);
  if (ec) {
    acceptor.close();
    return ec;
  }
  acceptor.listen(backlog, ec);
  return ec;
}

}  // namespace proxer::transport

namespace proxer::transport {

namespace {

template <typename WS>
void configure(WS& ws) {
  ws.binary(true);
  ws.auto_fragment(false);
  ws.read_message_max(0);  // the session bounds each frame; a message is just a write batch
}

template <typename Next>
awaitable<std::pair<error_code, std::optional<Stream>>> client_handshake(
    Next next, std::string host, std::string path, std::chrono::milliseconds timeout) {
  websocket::stream<Next> ws(std::move(next));
  configure(ws);
  ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(boost::beast::http::field::user_agent, "proxer-agent");
  }));
  Deadline deadline(ws.get_executor(), timeout, [sock = &boost::beast::get_lowest_layer(ws)] {
    error_code ignored;
    sock->cancel(ignored);
  });
  websocket::response_type res;
  auto [ec] = co_await ws.async_handshake(res, host, path, use_nothrow);
  deadline.done();
  if (deadline.expired()) ec = net::error::timed_out;
  if (ec) co_return std::pair{ec, std::optional<Stream>()};
  co_return std::pair{ec, std::optional<Stream>(Stream(std::move(ws)))};
}

template <typename Next>
awaitable<std::pair<error_code, std::optional<Stream>>> server_accept(
    Next next, std::string already_read, std::string connection_id,
    std::chrono::milliseconds timeout) {
  websocket::stream<Next> ws(std::move(next));
  configure(ws);
  ws.set_option(websocket::stream_base::decorator(
      [id = std::move(connection_id)](websocket::response_type& res) {
        res.set(boost::beast::http::field::server, "proxer");
        res.set("X-Proxer-Connection-Id", id);
      }));
  Deadline deadline(ws.get_executor(), timeout, [sock = &boost::beast::get_lowest_layer(ws)] {
    error_code ignored;
    sock->cancel(ignored);
  });
  auto [ec] = co_await ws.async_accept(net::buffer(already_read), use_nothrow);
  deadline.done();
  if (deadline.expired()) ec = net::error::timed_out;
  if (ec) co_return std::pair{ec, std::optional<Stream>()};
  co_return std::pair{ec, std::optional<Stream>(Stream(std::move(ws)))};
}

}  // namespace

awaitable<std::pair<error_code, std::optional<Stream>>> ws_client_handshake(
    std::variant<tcp::socket, TlsStream> next, const std::string& host, const std::string& path,
    std::chrono::milliseconds timeout) {
  if (auto* s = std::get_if<tcp::socket>(&next)) {
    co_return co_await client_handshake(std::move(*s), host, path, timeout);
  }
  co_return co_await client_handshake(std::move(std::get<TlsStream>(next)), host, path, timeout);
}

awaitable<std::pair<error_code, std::optional<Stream>>> ws_server_accept(
    std::variant<tcp::socket, TlsStream> next, std::string already_read,
    const std::string& connection_id, std::chrono::milliseconds timeout) {
  if (auto* s = std::get_if<tcp::socket>(&next)) {
    co_return co_await server_accept(std::move(*s), std::move(already_read), connection_id,
                                     timeout);
  }
  co_return co_await server_accept(std::move(std::get<TlsStream>(next)), std::move(already_read),
                                   connection_id, timeout);
}

}  // namespace proxer::transport

namespace proxer::transport {

namespace {

awaitable<std::pair<error_code, tcp::socket>> proxy_connect_impl(net::any_io_executor ex,
                                                                 HttpProxy proxy, std::string host,
                                                                 std::string port,
                                                                 std::shared_ptr<std::string> why) {
  auto [cec, sock] = co_await connect_impl(ex, proxy.host, proxy.port);
  if (cec) {
    *why = "cannot connect to the proxy " + proxy.host + ":" + proxy.port + ": " + cec.message();
    co_return std::pair{cec, std::move(sock)};
  }
  const std::string authority =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!proxy.authorization.empty()) req += "Proxy-Authorization: " + proxy.authorization + "\r\n";
  req += "User-Agent: proxer-agent\r\n\r\n";
  auto [wec, wn] = co_await net::async_write(sock, net::buffer(req), use_nothrow);
  if (wec) {
    *why = "the proxy closed the connection: " + wec.message();
    co_return std::pair{wec, std::move(sock)};
  }
  // Read the answer one byte at a time: not a byte past its head may be taken from the socket,
  // since what follows belongs to the tunnelled connection. It happens once per connection.
  constexpr std::size_t kMaxHead = 16 * 1024;
  std::string head;
  while (head.size() < kMaxHead && !head.ends_with("\r\n\r\n")) {
    char c = 0;
    auto [rec, rn] = co_await net::async_read(sock, net::buffer(&c, 1), use_nothrow);
    if (rec) {
      *why = "the proxy closed the connection before answering CONNECT: " + rec.message();
      co_return std::pair{rec ? rec : net::error::eof, std::move(sock)};
    }
    head.push_back(c);
  }
  const auto line = head.substr(0, head.find("\r\n"));
  // "HTTP/1.x NNN reason"
  const bool http = line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12 && line[8] == ' ';
  const int status = http ? std::atoi(line.substr(9, 3).c_str()) : 0;
  if (!head.ends_with("\r\n\r\n") || !http) {
    *why = "the proxy's answer to CONNECT is not HTTP";
    co_return std::pair{error_code(net::error::connection_refused), std::move(sock)};
  }
  if (status < 200 || status > 299) {
    *why = "the proxy answered " + line.substr(9);
    if (status == 407) *why += " (set user:password in the proxy URL)";
    co_return std::pair{error_code(net::error::connection_refused), std::move(sock)};
  }
  co_return std::pair{error_code{}, std::move(sock)};
}

}  // namespace

awaitable<std::pair<error_code, tcp::socket>> connect_via_proxy(
    net::any_io_executor ex, const HttpProxy& proxy, const std::string& host,
    const std::string& port, std::chrono::milliseconds timeout, std::string* error_text) {
  auto why = std::make_shared<std::string>();
  auto result =
      co_await with_deadline<tcp::socket>(proxy_connect_impl(ex, proxy, host, port, why), timeout);
  if (result.first == net::error::timed_out) {
    *why = "no answer from the proxy " + proxy.host + ":" + proxy.port + " in time";
  }
  *error_text = *why;
  co_return result;
}

}  // namespace proxer::transport
