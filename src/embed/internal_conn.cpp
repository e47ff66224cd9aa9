#include "embed/internal_conn.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <optional>

#include "config/config.h"
#include "gateway/public_server.h"

namespace proxer::embed {

namespace {

namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

void close_conn(InternalConn& c) {
  error_code ignored;
  c.sock.close(ignored);
}

// Open, and nothing to read: the other side neither closed nor sent anything unasked.
bool alive_while_idle(InternalConn& c) {
  if (!c.sock.is_open()) return false;
  char byte = 0;
  const auto n = ::recv(c.sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Writes the request in the background: the response may be complete (an early error answer)
// before the request is.
void start_write(const std::shared_ptr<InternalConn>& c,
                 const std::shared_ptr<const Outgoing>& out) {
  c->writing = true;
  c->write_failed = false;
  const std::array<net::const_buffer, 2> bufs{net::buffer(out->head), net::buffer(out->body)};
  net::async_write(c->sock, bufs, [c, out](error_code ec, std::size_t) {
    c->writing = false;
    c->write_failed = static_cast<bool>(ec);
  });
}

// How a connection that ended without sending anything reports it.
bool is_closed_error(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

// The exchange's deadline closes whichever connection the exchange is on.
struct Deadline {
  std::weak_ptr<InternalConn> conn;
  bool expired = false;
};

Response to_response(bhttp::response<bhttp::string_body>& res, bool head_method) {
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
  return out;
}

}  // namespace

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

std::shared_ptr<InternalConn> ConnPool::take(std::chrono::milliseconds max_age) {
  const auto now = Clock::now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    ++c->idle_epoch;  // a watch that already fired is void
    error_code ignored;
    c->sock.cancel(ignored);  // ends the watch (operation_aborted)
    if (now - c->idle_since < max_age && alive_while_idle(*c)) return c;
    close_conn(*c);
  }
  return nullptr;
}

void ConnPool::give_back(std::shared_ptr<InternalConn> c) {
  if (!c) return;
  if (closed_ || max_idle_ == 0 || !c->sock.is_open()) {
    close_conn(*c);
    return;
  }
  if (idle_.size() >= max_idle_) {  // the one idle longest goes
    close_conn(*idle_.front());
    idle_.erase(idle_.begin());
  }
  c->idle_since = Clock::now();
  const auto epoch = ++c->idle_epoch;
  // Readable while idle: the gateway's side closed (or wrote something unasked).
  c->sock.async_wait(
      net::socket_base::wait_read,
      [pool = weak_from_this(), conn = std::weak_ptr<InternalConn>(c), epoch](error_code ec) {
        if (ec) return;  // taken (cancelled) or closed
        auto p = pool.lock();
        auto cc = conn.lock();
        if (p && cc && cc->idle_epoch == epoch) p->forget(cc.get(), epoch);
      });
  idle_.push_back(std::move(c));
}

void ConnPool::forget(const InternalConn* c, std::uint64_t epoch) {
  const auto it = std::find_if(idle_.begin(), idle_.end(), [&](const auto& p) {
    return p.get() == c && p->idle_epoch == epoch;
  });
  if (it == idle_.end()) return;
  close_conn(**it);
  idle_.erase(it);
}

void ConnPool::close() {
  closed_ = true;
  for (auto& c : idle_) close_conn(*c);
  idle_.clear();
}

awaitable<Response> exchange(ConnPool& pool, Opener& opener, std::shared_ptr<const Outgoing> out,
                             const ExchangeLimits& limits, std::chrono::milliseconds reuse_age) {
  auto deadline = std::make_shared<Deadline>();
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  timer.expires_after(limits.timeout);
  timer.async_wait([deadline](error_code ec) {
    if (ec) return;
    deadline->expired = true;
    if (auto c = deadline->conn.lock()) close_conn(*c);
  });

  auto conn = pool.take(reuse_age);
  bool reused = conn != nullptr;
  for (;;) {
    if (!conn) {
      auto opened = opener.open();
      if (auto* refused = std::get_if<Response>(&opened)) {
        timer.cancel();
        co_return std::move(*refused);
      }
      conn = std::get<std::shared_ptr<InternalConn>>(std::move(opened));
    }
    deadline->conn = conn;
    if (conn->client) {  // read by the gateway's side when this request begins
      conn->client->ip.assign(out->client_ip);
      conn->client->addr.assign(out->client_addr);
    }
    start_write(conn, out);

    boost::beast::flat_buffer buf;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    bool received = false;  // any byte of a response
    error_code rec;
    for (;;) {
      parser.emplace();
      parser->header_limit(static_cast<std::uint32_t>(limits.max_head));
      parser->body_limit(static_cast<std::uint64_t>(limits.max_body));
      if (out->head_method) parser->skip(true);
      auto [e, n] = co_await bhttp::async_read(conn->sock, buf, *parser, use_nothrow);
      rec = e;
      if (parser->got_some() || buf.size() > 0) received = true;
      if (rec) break;
      const unsigned status = parser->get().result_int();
      if (status >= 200 || status < 100) break;  // 1xx (103 Early Hints...): the real one follows
    }

    if (rec && reused && !received && !deadline->expired && is_closed_error(rec) &&
        opener.may_retry()) {
      // Stale: the gateway closed the idle connection as the request was written.
      close_conn(*conn);
      conn.reset();
      reused = false;
      continue;
    }
    // Zero: the deadline's handler already ran or is queued (it may close the connection).
    const bool in_time = timer.cancel() > 0;
    if (deadline->expired) {
      close_conn(*conn);
      co_return error_response(
          504, "engine_timeout",
          "no complete response within " + config::format_duration(limits.timeout));
    }
    if (rec == bhttp::error::body_limit || rec == bhttp::error::header_limit) {
      close_conn(*conn);
      co_return error_response(
          502, "response_too_large",
          rec == bhttp::error::body_limit
              ? "the response body is larger than " + config::format_size(limits.max_body)
              : "the response head is larger than " + config::format_size(limits.max_head));
    }
    if (rec) {
      close_conn(*conn);
      co_return error_response(502, "incomplete_response",
                               "the response ended early (" + rec.message() + ")");
    }
    // keep_alive() is false for a response framed by the end of the connection, and for
    // "Connection: close" (the gateway closes after it: errors that end the connection, a
    // drain, the request path's own close).
    const bool clean =
        in_time && parser->keep_alive() && buf.size() == 0 && !conn->writing && !conn->write_failed;
    auto res = to_response(parser->get(), out->head_method);
    if (clean) {
      pool.give_back(std::move(conn));
    } else {
      close_conn(*conn);  // the gateway's side ends its connection on EOF
    }
    co_return res;
  }
}

}  // namespace proxer::embed
