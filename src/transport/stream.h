#pragma once
// A byte stream over one of a closed set of carriers (TCP, TLS over TCP, Unix socket for tests).
// The variant keeps the per-operation path free of virtual calls and heap allocation.
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>

#include "core/asio.h"

namespace proxer::transport {

namespace ssl = net::ssl;
using TlsStream = ssl::stream<tcp::socket>;
using UnixSocket = net::local::stream_protocol::socket;
// The WebSocket carrier: protocol frames ride in binary messages. Message boundaries mean
// nothing; the session reads the messages' payload as one byte stream.
using WsStream = boost::beast::websocket::stream<tcp::socket>;
using WssStream = boost::beast::websocket::stream<TlsStream>;

class Stream {
 public:
  explicit Stream(tcp::socket s) : v_(std::move(s)) {}
  explicit Stream(TlsStream s) : v_(std::move(s)) {}
  explicit Stream(UnixSocket s) : v_(std::move(s)) {}
  explicit Stream(WsStream s) : v_(std::move(s)) {}
  explicit Stream(WssStream s) : v_(std::move(s)) {}
  Stream(Stream&&) = default;
  Stream& operator=(Stream&&) = delete;  // Beast WebSocket streams cannot be reassigned

  net::any_io_executor get_executor() {
    return std::visit([](auto& s) -> net::any_io_executor { return s.get_executor(); }, v_);
  }

  // Bytes already read from the carrier (by a sniffer) that read_some returns first.
  void unread(std::string bytes) { prefix_ = std::move(bytes) + prefix_; }

  // Reads at least one byte. EOF is net::error::eof (also for a WebSocket close).
  awaitable<std::pair<error_code, std::size_t>> read_some(net::mutable_buffer buf);
  // Writes all of `bufs` (gather write).
  awaitable<std::pair<error_code, std::size_t>> write(std::span<const net::const_buffer> bufs);
  // A coroutine (not a plain forwarder): the span must point into this frame's copy of `buf`.
  awaitable<std::pair<error_code, std::size_t>> write(net::const_buffer buf) {
    co_return co_await write(std::span<const net::const_buffer>(&buf, 1));
  }
  // Half-close of the sending direction (TCP shutdown(SHUT_WR); TLS close_notify is not sent).
  void shutdown_send();
  // Abortive close: pending operations complete with operation_aborted.
  void close();
  // Cancels pending operations without closing.
  void cancel();

  std::string remote_address() const;
  const char* carrier() const;  // "tcp", "tls", "ws", "wss", "unix" (or set_carrier's)
  // Names the carrier for logs and the admin API when the variant does not tell (a socket pair
  // behind the long-poll carrier is "poll"). `name` must outlive the stream (a literal).
  void set_carrier(const char* name) { carrier_name_ = name; }
  // The peer's address for logs when the variant cannot tell (the long-poll carrier's client).
  void set_remote_address(std::string addr) { remote_override_ = std::move(addr); }
  bool is_tls() const {
    return std::holds_alternative<TlsStream>(v_) || std::holds_alternative<WssStream>(v_);
  }
  // The underlying TCP socket (TCP and TLS carriers), for socket options.
  tcp::socket* tcp_socket();
  // The socket of a plain TCP carrier with no unread prefix: callers on a hot path may read and
  // write it directly (one coroutine frame less per operation than read_some/write).
  tcp::socket* plain_tcp() { return prefix_.empty() ? std::get_if<tcp::socket>(&v_) : nullptr; }

 private:
  std::variant<tcp::socket, TlsStream, UnixSocket, WsStream, WssStream> v_;
  std::string prefix_;
  const char* carrier_name_ = nullptr;
  std::string remote_override_;
};

// WebSocket client handshake over a connected socket (ws://) or TLS stream (wss://): GET `path`
// with Host `host`, binary messages. Deadline included.
awaitable<std::pair<error_code, std::optional<Stream>>> ws_client_handshake(
    std::variant<tcp::socket, TlsStream> next, const std::string& host, const std::string& path,
    std::chrono::milliseconds timeout);
// WebSocket server handshake: `already_read` holds the bytes of the upgrade request read so far
// (a sniffer's, or a whole head). On success the stream answers 101 with header
// X-Proxer-Connection-Id: `connection_id`. Deadline included.
awaitable<std::pair<error_code, std::optional<Stream>>> ws_server_accept(
    std::variant<tcp::socket, TlsStream> next, std::string already_read,
    const std::string& connection_id, std::chrono::milliseconds timeout);

// "host:port" or "[v6]:port" -> (host, port). Returns false when malformed.
bool split_host_port(std::string_view in, std::string& host, std::string& port);
// The reverse: "host:port", with an IPv6 literal in brackets.
std::string join_host_port(std::string_view host, std::string_view port);

// Resolves and connects with a deadline; TCP_NODELAY is set.
awaitable<std::pair<error_code, tcp::socket>> connect_tcp(net::any_io_executor ex,
                                                          const std::string& host,
                                                          const std::string& port,
                                                          std::chrono::milliseconds timeout);

// An HTTP proxy the agent leaves through (CONNECT). `authorization` is the whole value of the
// Proxy-Authorization header ("Basic ..."), empty for none.
struct HttpProxy {
  std::string host, port, authorization;
};

// Connects to `proxy`, asks it to CONNECT to host:port, and returns the socket once the proxy
// answered 2xx: from then on it is a byte pipe to the target, like a direct connection. The
// whole exchange (resolve, connect, answer) has one deadline. A refusal reads
// "the proxy answered 403 Forbidden" in the error text.
awaitable<std::pair<error_code, tcp::socket>> connect_via_proxy(
    net::any_io_executor ex, const HttpProxy& proxy, const std::string& host,
    const std::string& port, std::chrono::milliseconds timeout, std::string* error_text);

// TLS client handshake over `sock` with SNI `server_name` and hostname verification unless the
// context was built insecure. Deadline included.
awaitable<std::pair<error_code, TlsStream>> tls_client_handshake(tcp::socket sock,
                                                                 ssl::context& ctx,
                                                                 const std::string& server_name,
                                                                 std::chrono::milliseconds timeout);
awaitable<std::pair<error_code, TlsStream>> tls_server_handshake(tcp::socket sock,
                                                                 ssl::context& ctx,
                                                                 std::chrono::milliseconds timeout);

// Client context: verifies peers against `ca_file` or, when empty, the system store.
// `insecure` disables verification (explicit user choice only). Throws on bad files (startup).
std::shared_ptr<ssl::context> make_client_tls_context(const std::string& ca_file, bool insecure);
// Server context from PEM files. Throws std::runtime_error with the file name on failure.
std::shared_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file);

// Binds a listening acceptor with SO_REUSEADDR. On failure returns the error; the caller
// reports "address in use" with the address.
error_code listen_tcp(tcp::acceptor& acceptor, const std::string& host_port, int backlog = 1024);

}  // namespace proxer::transport
