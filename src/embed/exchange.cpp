#include "embed/exchange.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstring>

#include "config/config.h"
#include "core/log.h"
#include "http/rules.h"
#include "transport/stream.h"

namespace proxer::embed {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("engine");  // NOLINT: immutable after first use
  return l;
}

bool is_token(std::string_view s) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kSpecials.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// The engine's end of an internal connection, shared by the reader (the exchange) and the
// writer of the request, which may still be sending when the response is already complete.
struct Pipe {
  explicit Pipe(net::any_io_executor ex) : sock(ex), timer(ex) {}
  net::local::stream_protocol::socket sock;
  net::steady_timer timer;
  std::string head, body;
  bool timed_out = false;
};

awaitable<void> write_request(std::shared_ptr<Pipe> pipe) {
  const std::array<net::const_buffer, 2> bufs{net::buffer(pipe->head), net::buffer(pipe->body)};
  auto [ec, n] = co_await net::async_write(pipe->sock, bufs, use_nothrow);
  if (!ec) {
    // No second request on this connection: the gateway's side sees EOF once it read this one.
    error_code ignored;
    pipe->sock.shutdown(net::socket_base::shutdown_send, ignored);
  }
  // On an error the reader finds out (the gateway side answered early or closed).
}

awaitable<void> run_exchange(gateway::Gateway& gw, const ExchangeLimits& limits, Request req,
                             Reply reply) {
  auto& ctx = gw.context();
  if (ctx.draining) {
    reply(error_response(503, "engine_stopped", "the proxer engine is stopping"));
    co_return;
  }
  if (gw.public_server().connections() >= ctx.cfg.max_connections) {
    reply(error_response(503, "too_many_connections",
                         "the proxer engine is at limits.max_connections (" +
                             std::to_string(ctx.cfg.max_connections) + ")"));
    co_return;
  }
  std::string head;
  if (auto bad = serialize_head(req, head)) {
    reply(error_response(400, "bad_request", "malformed request: " + *bad));
    co_return;
  }
  const bool head_method = req.method == "HEAD";

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    const int err = errno;
    reply(error_response(
        503, "internal_connection",
        std::string("cannot create the internal connection: ") + std::strerror(err)));
    co_return;
  }
  auto ex = ctx.executor;
  auto pipe = std::make_shared<Pipe>(ex);
  tcp::socket inner(ex);
  error_code ec;
  // The gateway's side: ClientConn holds a tcp::socket and uses only byte-stream operations on
  // it (reads, writes, shutdown, close), which are the same calls on an AF_UNIX socket.
  inner.assign(tcp::v4(), fds[0], ec);
  if (ec) ::close(fds[0]);
  error_code ec2;
  pipe->sock.assign(net::local::stream_protocol(), fds[1], ec2);
  if (ec2) ::close(fds[1]);
  if (ec || ec2) {
    reply(error_response(503, "internal_connection",
                         "cannot set up the internal connection: " + (ec ? ec : ec2).message()));
    co_return;
  }
  auto [client_ip, client_addr] = client_of(req.client_address);
  gw.public_server().adopt(std::move(inner), std::move(client_ip), std::move(client_addr));

  pipe->head = std::move(head);
  pipe->body = std::move(req.body);
  net::co_spawn(ex, write_request(pipe), DetachedTask{"embedded request"});

  pipe->timer.expires_after(limits.timeout);
  pipe->timer.async_wait([weak = std::weak_ptr<Pipe>(pipe)](error_code tec) {
    auto p = weak.lock();
    if (tec || !p) return;
    p->timed_out = true;
    error_code ignored;
    p->sock.close(ignored);
  });
  const auto timeout = limits.timeout;

  boost::beast::flat_buffer buf;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  error_code rec;
  for (;;) {
    parser.emplace();
    parser->header_limit(static_cast<std::uint32_t>(limits.max_head));
    parser->body_limit(static_cast<std::uint64_t>(limits.max_body));
    if (head_method) parser->skip(true);
    auto [e, n] = co_await bhttp::async_read(pipe->sock, buf, *parser, use_nothrow);
    rec = e;
    if (rec) break;
    const unsigned status = parser->get().result_int();
    if (status >= 200 || status < 100) break;  // 1xx (103 Early Hints...): the real one follows
  }
  pipe->timer.cancel();
  error_code ignored;
  pipe->sock.close(ignored);  // the gateway's side ends its connection on EOF

  if (pipe->timed_out) {
    reply(error_response(504, "engine_timeout",
                         "no complete response within " + config::format_duration(timeout)));
    co_return;
  }
  if (rec == bhttp::error::body_limit || rec == bhttp::error::header_limit) {
    reply(error_response(
        502, "response_too_large",
        rec == bhttp::error::body_limit
            ? "the response body is larger than " + config::format_size(limits.max_body)
            : "the response head is larger than " + config::format_size(limits.max_head)));
    co_return;
  }
  if (rec) {
    reply(error_response(502, "incomplete_response",
                         "the response ended early (" + rec.message() + ")"));
    co_return;
  }
  auto& res = parser->get();
  Response out;
  out.status = res.result_int();
  for (const auto& f : res) {
    switch (f.name()) {
      case bhttp::field::connection:
      case bhttp::field::keep_alive:
      case bhttp::field::transfer_encoding:
      case bhttp::field::proxy_connection:
        continue;
      case bhttp::field::content_length:
        if (!head_method) continue;  // a HEAD response keeps the length a GET would have
        break;
      default:
        break;
    }
    out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  }
  out.body = std::move(res.body());
  reply(std::move(out));
}

}  // namespace

Reply::~Reply() {
  if (fn_) {
    (*this)(error_response(503, "engine_stopped",
                           "the proxer engine stopped before the request was answered"));
  }
}

void Reply::operator()(Response r) noexcept {
  auto fn = std::exchange(fn_, nullptr);
  if (!fn) return;
  try {
    fn(std::move(r));
  } catch (const std::exception& e) {
    logger()->error("a handle() callback threw: {}", e.what());
  } catch (...) {
    logger()->error("a handle() callback threw");
  }
}

Response error_response(unsigned status, std::string_view code, std::string message) {
  Response r;
  r.status = status;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
               {"Cache-Control", "no-store"},
               {"X-Proxer-Error", std::string(code)}};
  r.body = std::move(message);
  r.body.push_back('\n');
  return r;
}

bhttp::request_header<> match_head(const Request& r) {
  bhttp::request_header<> h;
  h.version(11);
  h.method_string(r.method);
  h.target(r.target);
  for (const auto& f : r.headers) h.insert(f.name, f.value);
  return h;
}

std::optional<std::string> serialize_head(const Request& r, std::string& out) {
  if (!is_token(r.method)) return "the method is not a token";
  if (r.target.empty() || (r.target.front() != '/' && r.target != "*")) {
    return "the target must start with '/'";
  }
  for (char c : r.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return "the target contains a space or a control character";
  }
  for (const auto& f : r.headers) {
    if (!is_token(f.name)) return "a header name is not a token";
    if (f.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return "the value of header '" + f.name + "' contains CR, LF or NUL";
    }
  }
  auto h = match_head(r);
  http::strip_hop_by_hop(h, false);
  h.erase(bhttp::field::content_length);
  h.erase(bhttp::field::expect);
  const auto m = h.method();
  if (!r.body.empty() || m == bhttp::verb::post || m == bhttp::verb::put ||
      m == bhttp::verb::patch) {
    h.set(bhttp::field::content_length, std::to_string(r.body.size()));
  }
  h.set(bhttp::field::connection, "close");
  http::serialize_request_head(h, out);
  return std::nullopt;
}

std::pair<std::string, std::string> client_of(std::string_view address) {
  error_code ec;
  const std::string whole(address);
  if (auto ip = net::ip::make_address(whole, ec); !ec) return {ip.to_string(), ip.to_string()};
  std::string host, port;
  if (transport::split_host_port(whole, host, port) && !port.empty() && port.size() <= 5 &&
      port.find_first_not_of("0123456789") == std::string::npos && std::stoul(port) <= 65535) {
    if (auto ip = net::ip::make_address(host, ec); !ec) {
      const auto s = ip.to_string();
      return {s, transport::join_host_port(s, port)};
    }
  }
  return {"unknown", "unknown"};
}

void spawn_exchange(gateway::Gateway& gw, const ExchangeLimits& limits, Request request,
                    std::function<void(Response)> done) {
  // Posted, so that the coroutine is created on the engine's thread; a handler destroyed unrun
  // (the loop stopped) answers through Reply's destructor.
  net::post(gw.context().executor, [&gw, &limits, req = std::move(request),
                                    reply = Reply(std::move(done))]() mutable {
    net::co_spawn(gw.context().executor, run_exchange(gw, limits, std::move(req), std::move(reply)),
                  DetachedTask{"embedded exchange"});
  });
}

}  // namespace proxer::embed
