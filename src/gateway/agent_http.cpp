#include "gateway/agent_http.h"

#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "core/deadline.h"
#include "core/log.h"
#include "gateway/agent_conn.h"
#include "gateway/poll_carrier.h"
#include "http/rules.h"

namespace proxer::gateway {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::size_t kMaxHead = 16 * 1024;

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("gateway");  // NOLINT: immutable after first use
  return l;
}

using Conn = std::variant<tcp::socket, transport::TlsStream>;

tcp::socket& lowest(Conn& c) {
  return std::visit([](auto& s) -> tcp::socket& { return boost::beast::get_lowest_layer(s); }, c);
}

// Reads at least one byte into `buf` with a deadline; timed_out when it passes.
awaitable<error_code> read_more(Conn& c, std::string& buf, std::chrono::milliseconds timeout) {
  const auto ex = co_await net::this_coro::executor;
  Deadline d(ex, timeout, [s = &lowest(c)] {
    error_code ignored;
    s->cancel(ignored);
  });
  char chunk[4096];
  auto [ec, n] = co_await std::visit(
      [&](auto& s) { return s.async_read_some(net::buffer(chunk), use_nothrow); }, c);
  d.done();
  if (d.expired()) co_return net::error::timed_out;
  buf.append(chunk, n);
  co_return ec;
}

awaitable<error_code> write_all(Conn& c, std::string_view head, std::string_view body,
                                std::chrono::milliseconds timeout) {
  const auto ex = co_await net::this_coro::executor;
  Deadline d(ex, timeout, [s = &lowest(c)] {
    error_code ignored;
    s->cancel(ignored);
  });
  std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return net::async_write(s, bufs, use_nothrow); }, c);
  d.done();
  co_return d.expired() ? error_code(net::error::timed_out) : ec;
}

awaitable<void> refuse(Conn& c, unsigned status, std::string_view message,
                       std::chrono::milliseconds timeout) {
  const auto r = poll_error(status, message);
  co_await write_all(c, poll_reply_head(r, false), r.body, timeout);
}

}  // namespace

awaitable<void> serve_agent_http(Context& ctx, Conn conn, std::string first, std::string remote,
                                 std::chrono::milliseconds handshake_timeout) {
  std::string buf = std::move(first);
  bool fresh = true;  // no request served yet: the handshake deadline applies, not idle
  for (;;) {
    // The head, bounded in size and time.
    std::size_t head_len = 0;
    for (;;) {
      if (const auto end = http::find_head_end(buf); end != std::string_view::npos) {
        head_len = end;
        break;
      }
      if (buf.size() > kMaxHead) {
        co_await refuse(conn, 431, "request header too large", handshake_timeout);
        co_return;
      }
      const auto ec = co_await read_more(
          conn, buf, buf.empty() && !fresh ? ctx.cfg.idle_timeout : handshake_timeout);
      if (ec) co_return;  // timeout, EOF or reset: nothing to answer
    }
    const auto raw = std::string_view(buf).substr(0, head_len);
    if (auto bad = http::check_request_head(raw)) {
      co_await refuse(conn, 400, "malformed request", handshake_timeout);
      co_return;
    }
    bhttp::request_parser<bhttp::empty_body> p;
    p.header_limit(static_cast<std::uint32_t>(kMaxHead) + 1);
    p.eager(false);
    error_code pec;
    p.put(net::buffer(raw.data(), raw.size()), pec);
    if (pec || !p.is_header_done()) {
      co_await refuse(conn, 400, "malformed request", handshake_timeout);
      co_return;
    }
    const auto& req = p.get();
    if (boost::beast::websocket::is_upgrade(req)) {
      // The WebSocket carrier: the handshake reparses the head from these bytes.
      const auto id = AgentConn::new_id();
      auto [wec, ws] = co_await transport::ws_server_accept(std::move(conn), std::move(buf), id,
                                                            handshake_timeout);
      if (wec) {
        logger()->info("WebSocket handshake with {} failed: {}", remote, wec.message());
        co_return;
      }
      AgentConn::start_session(ctx, std::move(*ws), id);
      co_return;
    }
    if (!std::string_view(req.target()).starts_with("/api/agent/")) {
      co_await refuse(conn, 404,
                      "this is the agent listener: agents connect here (tunnels are served on "
                      "the public listener)",
                      handshake_timeout);
      co_return;
    }
    if (p.chunked()) {
      co_await refuse(conn, 411, "long-poll bodies need a Content-Length", handshake_timeout);
      co_return;
    }
    const std::uint64_t len = p.content_length().value_or(0);
    if (len > kMaxPollBody) {
      co_await refuse(conn, 413, "long-poll bodies are limited to 1 MiB", handshake_timeout);
      co_return;
    }
    const bool post = req.method() == bhttp::verb::post;
    const bool keep_alive = req.keep_alive() && !ctx.draining;
    const std::string target(req.target());
    buf.erase(0, head_len);
    while (buf.size() < len) {
      if (co_await read_more(conn, buf, handshake_timeout)) co_return;
    }
    std::string body = buf.substr(0, len);
    buf.erase(0, len);
    const auto reply = co_await poll_dispatch(ctx, post, target, std::move(body), remote);
    if (co_await write_all(conn, poll_reply_head(reply, keep_alive),
                           reply.status == 204 ? std::string_view() : std::string_view(reply.body),
                           ctx.cfg.idle_timeout)) {
      co_return;
    }
    if (!keep_alive) {
      error_code ignored;
      lowest(conn).shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    fresh = false;
  }
}

}  // namespace proxer::gateway
