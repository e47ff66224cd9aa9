#include "gateway/public_server.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "core/log.h"
#include "gateway/agent_conn.h"
#include "gateway/poll_carrier.h"
#include "http/rules.h"
#include "tunnel/pump.h"

namespace proxer::gateway {

namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxResponseHead = 64 * 1024;
constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr std::size_t kSmallRead = 4 * 1024;
// Chunked bodies go through Beast's parser for validation; the decoded bytes land here and are
// dropped (the raw bytes are what is forwarded).
constexpr std::size_t kSinkSize = 8 * 1024;
constexpr auto kLingerTimeout = std::chrono::milliseconds(2000);
constexpr std::size_t kLingerBytes = 1024 * 1024;

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("http");  // NOLINT: immutable after first use
  return l;
}

std::string_view view(std::span<const std::uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// Outcome of forwarding one request.
enum class Outcome {
  KeepAlive,  // response complete; the client connection may carry another request
  Close,      // response complete (or error answered); close the client connection
  Abort,      // connection broken mid-response: close without writing anything more
};

}  // namespace

// One public client connection.
class ClientConn : public std::enable_shared_from_this<ClientConn> {
 public:
  ClientConn(PublicServer& server, tcp::socket sock)
      : server_(server), ctx_(server.ctx_), sock_(std::move(sock)), timer_(sock_.get_executor()) {
    error_code ec;
    auto ep = sock_.remote_endpoint(ec);
    if (!ec) {
      client_ip_ = ep.address().to_string();
      client_addr_ = ep.address().is_v6() ? "[" + client_ip_ + "]:" + std::to_string(ep.port())
                                          : client_ip_ + ":" + std::to_string(ep.port());
    }
    sock_.set_option(tcp::no_delay(true), ec);
    server_.conns_.insert(this);
    ++ctx_.stats.connections_active;
  }
  ~ClientConn() {
    server_.conns_.erase(this);
    --ctx_.stats.connections_active;
  }

  awaitable<void> run();
  // Closes the connection if it is waiting for a request (drain).
  void close_if_idle() {
    if (idle_) close();
  }
  void close() {
    error_code ec;
    sock_.close(ec);
  }

 private:
  // Reads until `buf_` holds a whole request head; returns its length, or 0 when the
  // connection should close (error already answered, or clean EOF between requests).
  awaitable<std::size_t> read_head(bool first);
  awaitable<Outcome> handle(std::size_t head_len);
  // Forwards through tunnel `t`; `route` (when a configured route matched) adds its header
  // changes, timeout and body limit.
  awaitable<Outcome> forward(std::shared_ptr<Tunnel> t,
                             bhttp::request_parser<bhttp::buffer_body>& p, std::string rest_target,
                             const config::RouteConfig* route = nullptr);
  // A request a configured route matched: pick an endpoint of its cluster, then forward.
  awaitable<Outcome> handle_route(const config::RouteConfig& route,
                                  bhttp::request_parser<bhttp::buffer_body>& p);
  awaitable<bool> respond_error(unsigned status, std::string_view code, std::string_view msg,
                                bool keep_alive);
  awaitable<error_code> read_more();
  awaitable<void> lingering_close();
  // Arms the connection's deadline: on expiry the socket is cancelled and timed_out_ set.
  void arm(std::chrono::milliseconds d);
  void disarm() {
    ++deadline_gen_;
    timer_.cancel();
  }

  // The stream of this connection's last request, kept while the client is kept alive (as
  // HAProxy keeps a server connection with its client connection): with many keep-alive
  // clients, each reuses its own stream instead of all of them competing for the tunnel's
  // pool, which holds only pool.idle_per_tunnel and would otherwise make the agent open and
  // close a local connection per request. Returned to the pool when the client goes away.
  awaitable<Outcome> handle_poll(bhttp::request_parser<bhttp::buffer_body>& p);

  bool is_agent_websocket(const bhttp::request_header<>& req) const {
    auto target = req.target();
    target = target.substr(0, target.find('?'));
    return target == "/ws" && boost::beast::websocket::is_upgrade(req) &&
           !http::tunnel_from_host(req[bhttp::field::host], ctx_.cfg.domain);
  }

  std::shared_ptr<tunnel::Stream> take_stream(const std::shared_ptr<Tunnel>& t) {
    if (held_ && held_tunnel_ == t && held_->reusable()) {
      held_tunnel_.reset();
      return std::move(held_);
    }
    release_held();
    return take_idle_stream(*t);
  }
  void release_held() {
    if (held_ && held_tunnel_) {
      give_back_stream(*held_tunnel_, std::move(held_), ctx_.cfg.pool_idle_per_tunnel);
    } else if (held_) {
      held_->reset(proto::ErrorCode::Cancelled);
    }
    held_.reset();
    held_tunnel_.reset();
  }

  PublicServer& server_;
  Context& ctx_;
  std::shared_ptr<tunnel::Stream> held_;
  std::shared_ptr<Tunnel> held_tunnel_;
  tcp::socket sock_;
  net::steady_timer timer_;
  boost::beast::flat_buffer buf_;
  std::string client_ip_ = "unknown";
  std::string client_addr_ = "unknown";
  std::string scratch_;  // request/response head serialisation
  bool idle_ = false;
  bool timed_out_ = false;
  bool busy_ = false;  // the last read filled the space offered
  std::uint64_t deadline_gen_ = 0;
};

void ClientConn::arm(std::chrono::milliseconds d) {
  timed_out_ = false;
  timer_.expires_after(d);
  timer_.async_wait([weak = weak_from_this(), gen = ++deadline_gen_](error_code ec) {
    auto self = weak.lock();
    // A handler queued just before disarm() must not fire for a later wait.
    if (ec || !self || gen != self->deadline_gen_) return;
    self->timed_out_ = true;
    error_code ignored;
    self->sock_.cancel(ignored);
  });
}

awaitable<error_code> ClientConn::read_more() {
  // Small reads while the connection is quiet (an idle keep-alive connection holds little),
  // large ones once a read came back full (a body is streaming).
  const std::size_t room = buf_.size() == 0 && !busy_ ? kSmallRead : kBodyChunk;
  auto [ec, n] = co_await sock_.async_read_some(buf_.prepare(room), use_nothrow);
  buf_.commit(n);
  busy_ = n == room;
  if (timed_out_ && ec == net::error::operation_aborted) ec = net::error::timed_out;
  co_return ec;
}

awaitable<bool> ClientConn::respond_error(unsigned status, std::string_view code,
                                          std::string_view msg, bool keep_alive) {
  keep_alive = keep_alive && !ctx_.draining;
  auto resp = http::error_response(status, code, msg, keep_alive);
  arm(ctx_.cfg.idle_timeout);
  auto [ec, n] = co_await net::async_write(sock_, net::buffer(resp), use_nothrow);
  disarm();
  co_return !ec && keep_alive;
}

awaitable<void> ClientConn::run() {
  bool first = true;
  for (;;) {
    idle_ = true;
    if (ctx_.draining && !first) break;
    if (buf_.size() == 0 && buf_.capacity() > kSmallRead) buf_.shrink_to_fit();  // frees it
    if (scratch_.capacity() > kSmallRead) std::string().swap(scratch_);
    const std::size_t head_len = co_await read_head(first);
    idle_ = false;
    first = false;
    if (head_len == 0) break;
    auto outcome = co_await handle(head_len);
    if (outcome == Outcome::Abort) {
      release_held();
      close();
      timer_.cancel();
      co_return;
    }
    if (outcome != Outcome::KeepAlive) break;
  }
  release_held();
  co_await lingering_close();
}

awaitable<void> ClientConn::lingering_close() {
  // Closing a socket with unread input makes the kernel send RST, which can destroy the
  // response we just wrote before the client reads it (e.g. a 431 for a client still sending
  // its oversized head). So: half-close, then read and discard for a bounded time and size.
  error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec && sock_.is_open()) {
    std::size_t drained = 0;
    arm(kLingerTimeout);
    while (drained < kLingerBytes) {
      buf_.consume(buf_.size());
      auto rec = co_await read_more();
      if (rec) break;
      drained += buf_.size();
    }
    disarm();
  }
  sock_.close(ec);
  timer_.cancel();
}

awaitable<std::size_t> ClientConn::read_head(bool first) {
  std::size_t scanned = 0;
  for (;;) {
    const auto data = std::string_view(static_cast<const char*>(buf_.data().data()), buf_.size());
    if (!data.empty()) {
      const auto start = scanned > 3 ? scanned - 3 : 0;
      const auto end = http::find_head_end(data.substr(start));
      if (end != std::string_view::npos) {
        disarm();
        const std::size_t len = start + end;
        if (len > ctx_.cfg.max_header_bytes) break;  // 431 below
        co_return len;
      }
      scanned = data.size();
      if (data.size() > ctx_.cfg.max_header_bytes) break;
    }
    // Waiting for a new request on a kept-alive connection is the idle timeout; once bytes of
    // a head arrived (or on a new connection) it is the header timeout (slow clients: 408).
    arm(data.empty() && !first ? ctx_.cfg.idle_timeout : ctx_.cfg.header_timeout);
    auto ec = co_await read_more();
    disarm();
    if (ec == net::error::timed_out) {
      if (buf_.size() == 0 && !first) co_return 0;  // idle keep-alive: close quietly
      co_await respond_error(408, "request_timeout", "timed out waiting for the request header",
                             false);
      co_return 0;
    }
    if (ec) co_return 0;
  }
  co_await respond_error(
      431, "header_too_large",
      "request header larger than " + std::to_string(ctx_.cfg.max_header_bytes) + " bytes", false);
  co_return 0;
}

awaitable<Outcome> ClientConn::handle(std::size_t head_len) {
  const auto raw = std::string_view(static_cast<const char*>(buf_.data().data()), head_len);
  if (auto bad = http::check_request_head(raw)) {
    co_await respond_error(400, "bad_request", "malformed request: " + *bad, false);
    co_return Outcome::Close;
  }
  bhttp::request_parser<bhttp::buffer_body> p;
  p.header_limit(static_cast<std::uint32_t>(ctx_.cfg.max_header_bytes) + 1);
  p.body_limit(boost::none);  // enforced by us, as bodies stream
  p.eager(false);
  error_code ec;
  p.put(net::buffer(raw.data(), raw.size()), ec);
  if (ec || !p.is_header_done()) {
    co_await respond_error(400, "bad_request",
                           "malformed request: " + (ec ? ec.message() : "incomplete head"), false);
    co_return Outcome::Close;
  }
  // Agents on the WebSocket carrier: GET /ws with an Upgrade, on a host that is not a tunnel's
  // (app.example.com/ws stays the app's own WebSocket).
  if (is_agent_websocket(p.get())) {
    std::string already(static_cast<const char*>(buf_.data().data()), buf_.size());
    buf_.consume(buf_.size());
    const auto id = AgentConn::new_id();
    auto [wec, ws] = co_await transport::ws_server_accept(std::move(sock_), std::move(already), id,
                                                          ctx_.cfg.header_timeout);
    if (wec) {
      logger()->info("agent WebSocket handshake from {} failed: {}", client_addr_, wec.message());
    } else {
      AgentConn::start_session(ctx_, std::move(*ws), id);
    }
    co_return Outcome::Abort;  // the socket now belongs to the agent session (or is gone)
  }
  buf_.consume(head_len);
  ++ctx_.stats.requests_total;

  auto& req = p.get();
  const bool has_body = p.chunked() || (p.content_length() && *p.content_length() > 0);
  const bool keep_alive = req.keep_alive() && !has_body;  // errors before the body: close

  // The long-poll carrier's endpoints, on hosts that name no tunnel.
  if (req.target().starts_with("/api/agent/") &&
      !http::tunnel_from_host(req[bhttp::field::host], ctx_.cfg.domain)) {
    co_return co_await handle_poll(p);
  }

  // Configured routes first, in file order; then Host subdomain, then /t/{tunnel}/.
  if (const auto* route = ctx_.router.match(req)) co_return co_await handle_route(*route, p);
  std::optional<std::string> name;
  std::string target;
  auto host = req[bhttp::field::host];
  if (auto n = http::tunnel_from_host(host, ctx_.cfg.domain)) {
    name = std::move(n);
    target = std::string(req.target());
  } else if (auto pr = http::tunnel_from_path(req.target())) {
    name = std::move(pr->tunnel);
    target = std::move(pr->rest);
  }
  if (!name) {
    co_await respond_error(404, "no_route",
                           "no tunnel matches this request: use http://{tunnel}." +
                               ctx_.cfg.domain + "/ or /t/{tunnel}/",
                           keep_alive);
    co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
  }
  auto t = ctx_.registry.find(*name);
  if (!t) {
    co_await respond_error(404, "tunnel_not_found", "tunnel '" + *name + "' not found", keep_alive);
    co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
  }
  if (!t->token.empty()) {
    bool ok = false;
    bool via_authorization = false;
    for (auto& c : http::tunnel_token_sources(req)) {
      if (t->token.matches(c.value)) {
        ok = true;
        via_authorization = c.source != http::TokenSource::Header;
        break;
      }
    }
    if (!ok) {
      ++t->stats.request_count;
      ++t->stats.error_count;
      t->stats.last_status = 401;
      co_await respond_error(401, "unauthorized",
                             "this tunnel requires a token (Authorization: Bearer, X-Proxer-Token "
                             "or the basic-auth password)",
                             keep_alive);
      co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
    }
    http::strip_tunnel_token(req, via_authorization);
  }
  if (p.content_length() && ctx_.cfg.max_body_bytes > 0 &&
      *p.content_length() > ctx_.cfg.max_body_bytes) {
    co_await respond_error(
        413, "body_too_large",
        "request body larger than " + std::to_string(ctx_.cfg.max_body_bytes) + " bytes", false);
    co_return Outcome::Close;
  }
  co_return co_await forward(std::move(t), p, std::move(target));
}

awaitable<Outcome> ClientConn::handle_route(const config::RouteConfig& route,
                                            bhttp::request_parser<bhttp::buffer_body>& p) {
  auto& req = p.get();
  const bool has_body = p.chunked() || (p.content_length() && *p.content_length() > 0);
  const bool keep_alive = req.keep_alive() && !has_body;
  auto* cluster = ctx_.cluster(route.cluster);  // validation guarantees it exists
  const auto limit = route.max_body_bytes > 0 ? route.max_body_bytes : ctx_.cfg.max_body_bytes;
  if (p.content_length() && limit > 0 && *p.content_length() > limit) {
    co_await respond_error(413, "body_too_large",
                           "request body larger than " + std::to_string(limit) + " bytes", false);
    co_return Outcome::Close;
  }
  // Which endpoints can take it: a tunnel with a live agent that is not draining.
  auto& eps = cluster->endpoints();
  std::vector<proxy::Candidate> candidates(eps.size());
  std::vector<std::shared_ptr<Tunnel>> tunnels(eps.size());
  std::string down;
  for (std::size_t i = 0; i < eps.size(); ++i) {
    candidates[i].active = eps[i].active;
    if (!eps[i].cfg.tunnel) {
      candidates[i].usable = false;
      continue;
    }
    auto t = ctx_.registry.find(eps[i].cfg.tunnel_name);
    candidates[i].usable = t && t->type == proto::TunnelType::Http && t->session &&
                           !t->session->closed() && !t->session->going_away();
    if (candidates[i].usable) {
      tunnels[i] = std::move(t);
    } else {
      down += (down.empty() ? "" : ", ") + eps[i].cfg.tunnel_name;
    }
  }
  const auto key = proxy::hash64(proxy::hash_key_of(cluster->cfg().hash_key, req, client_ip_));
  const auto pick = cluster->balancer().pick(candidates, key);
  if (!pick) {
    co_await respond_error(503, "no_healthy_endpoint",
                           "route '" + route.name + "': no endpoint of cluster '" +
                               cluster->name() +
                               "' can take the request (tunnels without an agent: " + down + ")",
                           keep_alive);
    co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
  }
  proxy::InFlight in_flight(eps[*pick]);
  auto target = proxy::rewrite_target(route, std::string_view(req.target()));
  co_return co_await forward(std::move(tunnels[*pick]), p, std::move(target), &route);
}

awaitable<Outcome> ClientConn::forward(std::shared_ptr<Tunnel> t,
                                       bhttp::request_parser<bhttp::buffer_body>& p,
                                       std::string target, const config::RouteConfig* route) {
  auto& req = p.get();
  const auto started = Clock::now();
  const auto request_timeout =
      route && route->timeout.count() > 0 ? route->timeout : ctx_.cfg.request_timeout;
  const auto max_body =
      route && route->max_body_bytes > 0 ? route->max_body_bytes : ctx_.cfg.max_body_bytes;
  const bool chunked_req = p.chunked();
  const std::uint64_t req_len = p.content_length().value_or(0);
  const bool has_body = chunked_req || req_len > 0;
  const bool upgrade = http::is_upgrade(req);
  const bool head_method = req.method() == bhttp::verb::head;
  bool client_keep_alive = http::wants_keep_alive(req) && !ctx_.draining;
  auto& stats = t->stats;
  ++stats.request_count;
  ++ctx_.stats.requests_active;
  struct ActiveGuard {
    Context& c;
    ~ActiveGuard() { --c.stats.requests_active; }
  } guard{ctx_};

  auto fail = [&](unsigned status, std::string_view code, std::string msg) -> awaitable<Outcome> {
    ++stats.error_count;
    stats.last_status = status;
    stats.latency_us_total += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
    const bool ka = co_await respond_error(status, code, msg, client_keep_alive && !has_body);
    co_return ka ? Outcome::KeepAlive : Outcome::Close;
  };

  // Build the upstream head once.
  const std::string host(req[bhttp::field::host]);
  const bool expect_continue = boost::beast::iequals(req[bhttp::field::expect], "100-continue");
  req.erase(bhttp::field::expect);
  http::strip_hop_by_hop(req, upgrade);
  http::add_forwarded(req, client_ip_, "http", host);
  if (route) proxy::apply_header_ops(route->request_headers, req);
  req.target(target);
  if (chunked_req) req.set(bhttp::field::transfer_encoding, "chunked");
  std::string head;
  http::serialize_request_head(req, head);
  stats.bytes_in += head.size();

  if (expect_continue) {
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    auto [ec, n] = co_await net::async_write(sock_, net::buffer(k100), use_nothrow);
    if (ec) co_return Outcome::Abort;
  }

  // Acquire a stream: a pooled idle one, else a new one. A pooled stream whose local
  // connection was closed meanwhile fails before any response byte; then a request without a
  // body is retried once on a fresh stream.
  std::shared_ptr<tunnel::Stream> stream;
  bool reused = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    stream = attempt == 0 ? take_stream(t) : nullptr;
    reused = stream != nullptr;
    if (!stream) {
      if (!t->session || t->session->closed()) {
        co_return co_await fail(502, "agent_unavailable",
                                "the agent serving tunnel '" + t->name + "' is not connected");
      }
      stream = t->session->open_stream({t->name, client_addr_});
      if (!stream) {
        co_return co_await fail(
            502, "agent_unavailable",
            "the agent serving tunnel '" + t->name + "' cannot take more streams");
      }
    }
    if (auto ec = co_await stream->write(net::buffer(head))) {
      stream->reset(proto::ErrorCode::Cancelled);
      if (reused && !has_body) continue;
      co_return co_await fail(502, "agent_unavailable",
                              "the tunnel stream failed: " + ec.message());
    }
    if (!reused || has_body) break;
    // Reused, bodiless: wait for the first response byte to know the stream is good.
    break;
  }

  // Request body: Content-Length bytes copied raw; chunked bodies validated by the parser and
  // forwarded raw (chunk framing, extensions and trailers unchanged).
  std::uint64_t body_sent = 0;
  if (req_len > 0) {
    std::uint64_t left = req_len;
    while (left > 0) {
      if (buf_.size() == 0) {
        arm(ctx_.cfg.idle_timeout);
        auto ec = co_await read_more();
        disarm();
        if (ec) {
          stream->reset(proto::ErrorCode::Cancelled);
          ++stats.error_count;
          co_return Outcome::Abort;
        }
      }
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf_.size()));
      if (auto ec = co_await stream->write(net::buffer(buf_.data().data(), n))) {
        stream->reset(proto::ErrorCode::Cancelled);
        co_return co_await fail(502, "agent_unavailable",
                                "the tunnel failed while sending the body: " + ec.message());
      }
      buf_.consume(n);
      left -= n;
      body_sent += n;
    }
  } else if (chunked_req) {
    // On the heap: an array here would sit in every request's coroutine frame, chunked or not.
    const auto sink = std::make_unique_for_overwrite<char[]>(kSinkSize);
    while (!p.is_done()) {
      if (buf_.size() == 0) {
        arm(ctx_.cfg.idle_timeout);
        auto ec = co_await read_more();
        disarm();
        if (ec) {
          stream->reset(proto::ErrorCode::Cancelled);
          co_return Outcome::Abort;
        }
      }
      req.body().data = sink.get();
      req.body().size = kSinkSize;
      error_code pec;
      const std::size_t n = p.put(buf_.data(), pec);
      if (pec && pec != bhttp::error::need_buffer && pec != bhttp::error::need_more) {
        stream->reset(proto::ErrorCode::Cancelled);
        co_return co_await fail(400, "bad_request", "malformed chunked body: " + pec.message());
      }
      body_sent += kSinkSize - req.body().size;
      if (max_body > 0 && body_sent > max_body) {
        stream->reset(proto::ErrorCode::Cancelled);
        co_return co_await fail(413, "body_too_large",
                                "request body larger than " + std::to_string(max_body) + " bytes");
      }
      if (n > 0) {
        if (auto ec = co_await stream->write(net::buffer(buf_.data().data(), n))) {
          stream->reset(proto::ErrorCode::Cancelled);
          co_return co_await fail(502, "agent_unavailable",
                                  "the tunnel failed while sending the body: " + ec.message());
        }
        buf_.consume(n);
      } else if (pec == bhttp::error::need_more && buf_.size() > 0) {
        // The parser needs more than what is buffered; read more (appends to buf_).
        arm(ctx_.cfg.idle_timeout);
        auto ec = co_await read_more();
        disarm();
        if (ec) {
          stream->reset(proto::ErrorCode::Cancelled);
          co_return Outcome::Abort;
        }
      }
    }
  }
  stats.bytes_in += body_sent;

  // Response head, parsed in place from the stream's receive queue, under the request timeout.
  // The state is shared with the timer handler, which may run after this frame is gone or
  // after the deadline was disarmed: 0 armed, 1 fired, 2 disarmed.
  auto deadline_state = std::make_shared<int>(2);
  net::steady_timer deadline(sock_.get_executor());
  auto arm_deadline = [&]() {
    *deadline_state = 2;
    deadline_state = std::make_shared<int>(0);
    deadline.expires_after(request_timeout);
    deadline.async_wait([st = deadline_state, s = stream](error_code ec) {
      if (ec || *st != 0) return;
      *st = 1;
      s->abort();
    });
  };
  auto disarm_deadline = [&]() {
    if (*deadline_state == 0) *deadline_state = 2;
    deadline.cancel();
  };
  auto timed_out = [&]() { return *deadline_state == 1; };
  arm_deadline();
  struct DeadlineGuard {
    std::shared_ptr<int>& state;
    net::steady_timer& t;
    ~DeadlineGuard() {
      if (*state == 0) *state = 2;
      t.cancel();
    }
  } deadline_guard{deadline_state, deadline};

  std::optional<bhttp::response_parser<bhttp::buffer_body>> rpo;
  std::size_t rhead_len = 0;
  for (;;) {
    // 1xx responses (other than 101) are relayed and followed by the real one.
    std::size_t have = 0;
    for (;;) {
      auto data = view(stream->peek_all());
      if (auto e = http::find_head_end(data); e != std::string_view::npos) {
        rhead_len = e;
        break;
      }
      if (data.size() > kMaxResponseHead) {
        stream->reset(proto::ErrorCode::Cancelled);
        co_return co_await fail(502, "bad_response", "the local service sent an oversized header");
      }
      have = data.size();
      if (auto ec = co_await stream->wait_more(have)) {
        if (timed_out()) {
          co_return co_await fail(504, "timeout",
                                  "the local service did not answer within " +
                                      std::to_string(request_timeout.count()) + " ms");
        }
        const auto code = stream->reset_code();
        stream->reset(proto::ErrorCode::Cancelled);
        if (ec == net::error::connection_reset && code == proto::ErrorCode::ConnectRefused) {
          co_return co_await fail(502, "local_refused",
                                  "the local service of tunnel '" + t->name +
                                      "' refused the connection (is it running?)");
        }
        if (ec == net::error::connection_reset && code == proto::ErrorCode::ConnectTimeout) {
          co_return co_await fail(502, "local_unreachable",
                                  "the local service of tunnel '" + t->name +
                                      "' did not accept the connection in time");
        }
        if (ec == net::error::connection_aborted) {
          co_return co_await fail(
              502, "agent_disconnected",
              "the agent serving tunnel '" + t->name + "' disconnected before the response");
        }
        if (reused && have == 0 && !has_body) {
          // Stale pooled stream: the local service closed its keep-alive connection.
          // Retry once on a fresh stream.
          stream = t->session && !t->session->closed()
                       ? t->session->open_stream({t->name, client_addr_})
                       : nullptr;
          reused = false;
          if (stream && !co_await stream->write(net::buffer(head))) {
            disarm_deadline();
            arm_deadline();
            continue;
          }
        }
        co_return co_await fail(502, "local_closed",
                                "the local service of tunnel '" + t->name +
                                    "' closed the connection without a response");
      }
    }
    const auto rhead = view(stream->peek_all()).substr(0, rhead_len);
    if (auto bad = http::check_response_head(rhead)) {
      stream->reset(proto::ErrorCode::Cancelled);
      co_return co_await fail(502, "bad_response",
                              "malformed response from the local service: " + *bad);
    }
    auto& rp = rpo.emplace();
    rp.header_limit(static_cast<std::uint32_t>(kMaxResponseHead) + 1);
    rp.body_limit(boost::none);
    rp.eager(false);
    if (head_method) rp.skip(true);
    error_code pec;
    rp.put(net::buffer(rhead.data(), rhead.size()), pec);
    if (pec || !rp.is_header_done()) {
      stream->reset(proto::ErrorCode::Cancelled);
      co_return co_await fail(502, "bad_response",
                              "malformed response from the local service: " +
                                  (pec ? pec.message() : std::string("incomplete head")));
    }
    stream->consume(rhead_len);
    const unsigned status = rp.get().result_int();
    if (status >= 100 && status < 200 && status != 101) {
      scratch_.clear();
      http::serialize_response_head(rp.get().base(), scratch_);
      auto [ec2, n2] = co_await net::async_write(sock_, net::buffer(scratch_), use_nothrow);
      if (ec2) {
        stream->reset(proto::ErrorCode::Cancelled);
        co_return Outcome::Abort;
      }
      continue;
    }
    break;
  }
  disarm_deadline();

  auto& rp = *rpo;
  auto& res = rp.get();
  const unsigned status = res.result_int();
  stats.last_status = status;
  if (status >= 500) ++stats.error_count;

  // 101: the connection becomes a two-way pipe between the client and the stream.
  if (status == 101 && upgrade) {
    scratch_.clear();
    http::strip_hop_by_hop(res, true);
    http::serialize_response_head(res, scratch_);
    auto [ec, n] = co_await net::async_write(sock_, net::buffer(scratch_), use_nothrow);
    if (ec) {
      stream->reset(proto::ErrorCode::Cancelled);
      co_return Outcome::Abort;
    }
    stats.bytes_out += n;
    if (buf_.size() > 0) {  // bytes the client sent after its upgrade request
      if (co_await stream->write(buf_.data())) co_return Outcome::Abort;
      buf_.consume(buf_.size());
    }
    auto result = co_await tunnel::pump(stream, std::move(sock_), ctx_.cfg.idle_timeout);
    stats.bytes_in += result.to_stream;
    stats.bytes_out += result.to_socket;
    co_return Outcome::Abort;  // socket moved into the pump and closed there
  }

  // Response framing towards the client.
  const bool no_body =
      head_method || status == 204 || status == 304 || (status >= 100 && status < 200);
  const bool chunked_res = !no_body && rp.chunked();
  const auto res_len = rp.content_length();
  const bool until_close = !no_body && !chunked_res && !res_len;
  const bool upstream_keep_alive = res.keep_alive() && !until_close;
  if (until_close || !client_keep_alive) client_keep_alive = false;

  http::strip_hop_by_hop(res, false);
  if (route) proxy::apply_header_ops(route->response_headers, res);
  if (chunked_res) res.set(bhttp::field::transfer_encoding, "chunked");
  if (!client_keep_alive) res.set(bhttp::field::connection, "close");
  scratch_.clear();
  http::serialize_response_head(res, scratch_);

  std::uint64_t sent = 0;
  bool head_sent = false;
  // Writes the head (first time) together with `data`.
  auto send = [&](std::string_view data) -> awaitable<error_code> {
    std::array<net::const_buffer, 2> bufs{net::buffer(scratch_),
                                          net::buffer(data.data(), data.size())};
    auto span = head_sent ? std::span<const net::const_buffer>(bufs).subspan(1)
                          : std::span<const net::const_buffer>(bufs);
    arm(ctx_.cfg.idle_timeout);  // a client that stops reading is dropped after this
    auto [ec, n] = co_await net::async_write(sock_, span, use_nothrow);
    disarm();
    head_sent = true;
    sent += n;
    co_return ec;
  };

  bool body_ok = true;
  if (no_body) {
    if (co_await send({})) body_ok = false;
  } else if (res_len) {
    std::uint64_t left = *res_len;
    if (left == 0 && co_await send({})) body_ok = false;
    while (left > 0 && body_ok) {
      auto ec = co_await stream->wait_readable();
      if (ec) {
        body_ok = false;
        break;
      }
      auto data = view(stream->peek());
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, data.size()));
      if (co_await send(data.substr(0, n))) {
        body_ok = false;
        break;
      }
      stream->consume(n);
      left -= n;
    }
  } else if (chunked_res) {
    // On the heap: an array here would sit in every request's coroutine frame, chunked or not.
    const auto sink = std::make_unique_for_overwrite<char[]>(kSinkSize);
    bool need_all = false;  // the parser needs bytes beyond the front chunk
    while (!rp.is_done() && body_ok) {
      auto data = view(need_all ? stream->peek_all() : stream->peek());
      need_all = false;
      if (data.empty()) {
        if (co_await stream->wait_readable()) {
          body_ok = false;
          break;
        }
        continue;
      }
      res.body().data = sink.get();
      res.body().size = kSinkSize;
      error_code pec;
      const std::size_t n = rp.put(net::buffer(data.data(), data.size()), pec);
      if (pec && pec != bhttp::error::need_buffer && pec != bhttp::error::need_more) {
        body_ok = false;
        break;
      }
      if (n > 0) {
        if (co_await send(data.substr(0, n))) {
          body_ok = false;
          break;
        }
        stream->consume(n);
      } else if (pec == bhttp::error::need_more) {
        if (stream->buffered() > data.size()) {
          need_all = true;
        } else if (co_await stream->wait_more(data.size())) {
          body_ok = false;
          break;
        }
      }
    }
  } else {  // until close
    for (;;) {
      auto ec = co_await stream->wait_readable();
      if (ec == net::error::eof) {
        if (!head_sent && co_await send({})) body_ok = false;
        break;
      }
      if (ec) {
        body_ok = false;
        break;
      }
      auto data = view(stream->peek());
      if (co_await send(data)) {
        body_ok = false;
        break;
      }
      stream->consume(data.size());
    }
  }

  stats.bytes_out += sent;
  stats.latency_us_total += static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  if (!body_ok) {
    stream->reset(proto::ErrorCode::Cancelled);
    if (!head_sent) {
      co_return co_await fail(502, "agent_disconnected",
                              "the tunnel failed before the response was complete");
    }
    co_return Outcome::Abort;
  }
  if (upstream_keep_alive && !until_close && client_keep_alive) {
    held_ = std::move(stream);  // this client's next request to `t` reuses it first
    held_tunnel_ = std::move(t);
  } else if (upstream_keep_alive && !until_close) {
    give_back_stream(*t, std::move(stream), ctx_.cfg.pool_idle_per_tunnel);
  } else {
    stream->reset(proto::ErrorCode::Cancelled);
  }
  co_return client_keep_alive ? Outcome::KeepAlive : Outcome::Close;
}

awaitable<Outcome> ClientConn::handle_poll(bhttp::request_parser<bhttp::buffer_body>& p) {
  auto& req = p.get();
  const bool post = req.method() == bhttp::verb::post;
  bool keep_alive = req.keep_alive() && !ctx_.draining;

  // A POST body: Content-Length only (every body of this carrier is a complete unit).
  std::string body;
  if (p.chunked()) {
    co_await respond_error(411, "length_required",
                           "long-poll bodies need a Content-Length, not chunked encoding", false);
    co_return Outcome::Close;
  }
  const std::uint64_t len = p.content_length().value_or(0);
  if (len > kMaxPollBody) {
    co_await respond_error(
        413, "body_too_large",
        "long-poll bodies are limited to " + std::to_string(kMaxPollBody) + " bytes", false);
    co_return Outcome::Close;
  }
  while (body.size() < len) {
    if (buf_.size() == 0) {
      arm(ctx_.cfg.header_timeout);
      auto ec = co_await read_more();
      disarm();
      if (ec) co_return Outcome::Abort;
    }
    const auto take = std::min<std::size_t>(buf_.size(), len - body.size());
    body.append(static_cast<const char*>(buf_.data().data()), take);
    buf_.consume(take);
  }

  const auto reply = co_await poll_dispatch(ctx_, post, std::string_view(req.target()),
                                            std::move(body), client_addr_);
  const auto head = poll_reply_head(reply, keep_alive);
  std::array<net::const_buffer, 2> bufs{
      net::buffer(head),
      net::buffer(reply.status == 204 ? std::string_view() : std::string_view(reply.body))};
  arm(ctx_.cfg.idle_timeout);
  auto [wec, wn] = co_await net::async_write(sock_, bufs, use_nothrow);
  disarm();
  if (wec) co_return Outcome::Abort;
  co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
}

// ---------------------------------------------------------------------------------------------

PublicServer::PublicServer(net::any_io_executor ex, Context& ctx)
    : ex_(ex), ctx_(ctx), acceptor_(ex) {}

error_code PublicServer::listen(const std::string& address) {
  return transport::listen_tcp(acceptor_, address);
}

std::uint16_t PublicServer::port() const {
  error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void PublicServer::start() {
  net::co_spawn(ex_, accept_loop(), DetachedTask{"public accept loop"});
}

awaitable<void> PublicServer::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      logger()->warn("accept failed: {}", ec.message());
      net::steady_timer t(ex_, std::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    if (conns_.size() >= ctx_.cfg.max_connections) {
      error_code ignored;
      sock.close(ignored);
      continue;
    }
    auto conn = std::make_shared<ClientConn>(*this, std::move(sock));
    net::co_spawn(
        ex_, [conn]() { return conn->run(); }, DetachedTask{"client connection"});
  }
}

void PublicServer::drain() {
  error_code ec;
  acceptor_.close(ec);
  // Copy: closing may not erase synchronously, but be safe against iterator invalidation.
  std::vector<ClientConn*> conns(conns_.begin(), conns_.end());
  for (auto* c : conns) c->close_if_idle();
}

void PublicServer::close_all() {
  error_code ec;
  acceptor_.close(ec);
  std::vector<ClientConn*> conns(conns_.begin(), conns_.end());
  for (auto* c : conns) c->close();
}

}  // namespace proxer::gateway
