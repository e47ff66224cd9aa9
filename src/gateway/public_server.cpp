#include "gateway/public_server.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/container/small_vector.hpp>
#include <memory>
#include <optional>
#include <random>
#include <variant>

#include "core/lazy_deadline.h"
#include "core/log.h"
#include "gateway/agent_conn.h"
#include "gateway/poll_carrier.h"
#include "gateway/upstream.h"
#include "gateway/upstreams.h"
#include "http/response_head.h"
#include "http/rules.h"
#include "proxy/retry.h"
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

// Outcome of forwarding one request.
enum class Outcome {
  KeepAlive,  // response complete; the client connection may carry another request
  Close,      // response complete (or error answered); close the client connection
  Abort,      // connection broken mid-response: close without writing anything more
};

}  // namespace

// The pieces of one forwarded exchange (this file only; a named namespace because ClientConn,
// which uses them, is not in an anonymous one).
namespace fwd {

// Bodies up to this size are kept while they stream, so that a retry can send them again.
constexpr std::size_t kReplayLimit = 64 * 1024;
// Per-endpoint state of a routed request is stored inline up to this many endpoints.
constexpr std::size_t kInlineEndpoints = 16;

// Where one attempt goes: a tunnel (an endpoint of a cluster, or the tunnel of Host/path
// routing) or a direct endpoint's pool.
struct Target {
  std::shared_ptr<Tunnel> tunnel;
  std::shared_ptr<DirectPool> pool;
  TunnelStats* stats = nullptr;  // the tunnel's, or the direct endpoint's; always set
  std::size_t endpoint = 0;      // index in the route's cluster
  MemberLoad load;               // a tunnel member's request in flight (least_request)
  std::string what() const {
    return tunnel ? "tunnel '" + tunnel->name + "'" : "upstream " + pool->address();
  }
};

// Why an attempt failed: what the client is told when it is not retried, and what the retry and
// outlier rules need to know.
struct AttemptFailure {
  unsigned status = 502;
  std::string code, message;
  proxy::Failure kind = proxy::Failure::Reset;
  bool sent = true;  // request bytes may have reached the upstream
  // Would fail the same way again (a certificate that does not verify): not retried.
  bool final = false;
};

// The request body across attempts: streamed from the client by the first attempt that got a
// connection, and kept (up to kReplayLimit) when a later attempt may have to send it again.
struct RequestBody {
  bool present = false;
  bool read = false;      // consumed from the client
  bool keep = false;      // copy it while streaming
  bool complete = false;  // `copy` holds all of it
  std::string copy;
  std::uint64_t bytes = 0;  // body bytes read from the client
  // A later attempt can send the body again (or there is none, or it is still unread).
  bool replayable() const { return !present || !read || complete; }
};

struct AttemptResult {
  enum Kind { Response, Failed, Finished } kind = Failed;
  Upstream up;
  AttemptFailure failure;
  Outcome outcome = Outcome::Close;  // Finished: the client was answered (or is gone)
};

// A request a configured route matched, across its attempts.
struct RouteState {
  const config::RouteConfig& route;
  std::shared_ptr<RouteTable> table;  // the configuration the request was routed by
  std::shared_ptr<UpstreamCluster> cluster;
  std::uint64_t key = 0;                                         // ip_hash / ring_hash key
  boost::container::small_vector<bool, kInlineEndpoints> tried;  // per endpoint
  std::optional<proxy::InFlight> in_flight;
};

}  // namespace fwd

using fwd::AttemptFailure;
using fwd::AttemptResult;
using fwd::kReplayLimit;
using fwd::RequestBody;
using fwd::RouteState;
using fwd::Target;

// One public client connection.
class ClientConn : public std::enable_shared_from_this<ClientConn> {
 public:
  // `adopted` null: the client is the peer address of `sock` (a TCP connection); else the one
  // `adopted` names when a request begins (adopt()).
  ClientConn(PublicServer& server, tcp::socket sock,
             std::shared_ptr<const AdoptedClient> adopted = nullptr)
      : server_(server), ctx_(server.ctx_), adopted_(std::move(adopted)), sock_(std::move(sock)) {
    error_code ec;
    auto ep = adopted_ ? tcp::endpoint() : sock_.remote_endpoint(ec);
    if (adopted_) {
      client_ip_ = adopted_->ip;
      client_addr_ = adopted_->addr;
    } else if (!ec) {
      client_ip_ = ep.address().to_string();
      client_addr_ = ep.address().is_v6() ? "[" + client_ip_ + "]:" + std::to_string(ep.port())
                                          : client_ip_ + ":" + std::to_string(ep.port());
    }
    sock_.set_option(tcp::no_delay(true), ec);  // fails harmlessly on an adopted AF_UNIX socket
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
  // Forwards to `to` (the tunnel of Host/path routing, or the first endpoint a route picked).
  // With a route, its header changes, timeouts and body limit apply, and failed attempts are
  // retried on other endpoints of its cluster by the route's retry policy.
  awaitable<Outcome> forward(Target to, bhttp::request_parser<bhttp::buffer_body>& p,
                             std::string target, RouteState* rs);
  // One attempt: get a connection or stream, send the request, read the response head.
  awaitable<AttemptResult> attempt(Target& to, const std::string& head, RequestBody& body,
                                   bhttp::request_parser<bhttp::buffer_body>& p,
                                   std::chrono::milliseconds timeout, std::uint64_t max_body);
  // This client's held stream or connection to `to`, or an idle one of its pool: false when
  // there is none. Not a coroutine: the common keep-alive case costs no frame.
  bool take_reusable(Target& to, Upstream& up);
  // A new stream of the tunnel or a new connection of the pool.
  awaitable<std::optional<AttemptFailure>> open_new(Target& to, Upstream& up);
  // Streams the request body from the client to `up` (keeping a copy when asked), or replays
  // the copy. Finished when the client was answered or is gone.
  awaitable<AttemptResult> send_body(Target& to, Upstream& up, RequestBody& body,
                                     bhttp::request_parser<bhttp::buffer_body>& p,
                                     std::uint64_t max_body);
  // A request a configured route matched: pick an endpoint of its cluster, then forward.
  awaitable<Outcome> handle_route(const config::RouteConfig& route,
                                  std::shared_ptr<RouteTable> table,
                                  bhttp::request_parser<bhttp::buffer_body>& p);
  // The next endpoint for a routed request: in rotation, not tried yet when an untried one
  // can take it. A failure (503) when none can.
  std::variant<Target, AttemptFailure> pick(RouteState& rs);
  // Answers an error for an exchange and counts it.
  awaitable<Outcome> answer_failure(TunnelStats* stats, Clock::time_point started,
                                    const AttemptFailure& f, bool has_body);
  awaitable<bool> respond_error(unsigned status, std::string_view code, std::string_view msg,
                                bool keep_alive);
  awaitable<error_code> read_more();
  // read_more() for a request body: a client silent for timeouts.idle is dropped.
  awaitable<error_code> read_body_more() {
    arm(ctx_.cfg.idle_timeout);
    auto ec = co_await read_more();
    disarm();
    co_return ec;
  }
  awaitable<void> lingering_close();
  // Arms the connection's deadline: on expiry the socket is cancelled (timed_out() then).
  void arm(std::chrono::milliseconds d) { deadline_.arm(d); }
  void disarm() { deadline_.disarm(); }
  bool timed_out() const { return deadline_.expired(); }

  awaitable<Outcome> handle_poll(bhttp::request_parser<bhttp::buffer_body>& p);

  bool is_agent_websocket(const bhttp::request_header<>& req) const {
    auto target = req.target();
    target = target.substr(0, target.find('?'));
    return target == "/ws" && boost::beast::websocket::is_upgrade(req) &&
           !http::tunnel_from_host(req[bhttp::field::host], ctx_.cfg.domain);
  }

  // The upstream of this connection's last exchange is kept while the client is kept alive (as
  // HAProxy keeps a server connection with its client connection): with many keep-alive
  // clients, each reuses its own stream or connection instead of all of them competing for the
  // pool, which holds only so many idle ones and would otherwise make the agent (or the gateway)
  // open and close a connection per request. Returned to its pool when the client goes away or
  // sends to another upstream.
  Upstream take_held(const Target& to) {
    const bool same = to.tunnel ? held_.stream() && held_tunnel_ == to.tunnel
                                : held_.conn() && held_pool_ == to.pool;
    if (same && held_.reusable()) {
      held_tunnel_.reset();
      held_pool_.reset();
      return std::move(held_);
    }
    release_held();
    return {};
  }
  void release_held() {
    if (held_.stream() && held_tunnel_) {
      give_back_stream(*held_tunnel_, held_.take_stream(), ctx_.cfg.pool_idle_per_tunnel);
    } else if (held_.conn() && held_pool_) {
      held_pool_->give_back(held_.take_conn());
    }
    held_.discard();
    held_tunnel_.reset();
    held_pool_.reset();
  }
  void hold(Upstream up, const Target& to) {
    held_ = std::move(up);
    held_tunnel_ = to.tunnel;
    held_pool_ = to.pool;
  }

  PublicServer& server_;
  Context& ctx_;
  std::shared_ptr<const AdoptedClient> adopted_;  // adopt(): who sends the next request
  Upstream held_;
  std::shared_ptr<Tunnel> held_tunnel_;
  std::shared_ptr<DirectPool> held_pool_;
  tcp::socket sock_;
  // Read/write deadline of the client side (declared after sock_: its callback cancels sock_).
  LazyDeadline deadline_{sock_.get_executor(), [this] {
                           error_code ignored;
                           sock_.cancel(ignored);
                         }};
  // The response-head deadline of an attempt: aborts the upstream it watches.
  Upstream* watched_ = nullptr;
  LazyDeadline up_deadline_{sock_.get_executor(), [this] {
                              if (watched_) watched_->abort();
                            }};
  boost::beast::flat_buffer buf_;
  std::string client_ip_ = "unknown";
  std::string client_addr_ = "unknown";
  std::string scratch_;            // response head serialisation
  std::string up_head_;            // the upstream request head of the current exchange
  http::ForwardingMemo fwd_memo_;  // the forwarding fields of the last request
  // The response head of the current attempt: a copy of its raw bytes (they leave the upstream's
  // buffer once consumed) and the views into it. Kept by the connection: no allocation per
  // request.
  std::string res_raw_;
  http::ResponseHead res_;
  bool idle_ = false;
  bool busy_ = false;  // the last read filled the space offered
};

awaitable<error_code> ClientConn::read_more() {
  // Small reads while the connection is quiet (an idle keep-alive connection holds little),
  // large ones once a read came back full (a body is streaming).
  const std::size_t room = buf_.size() == 0 && !busy_ ? kSmallRead : kBodyChunk;
  auto [ec, n] = co_await sock_.async_read_some(buf_.prepare(room), use_nothrow);
  buf_.commit(n);
  busy_ = n == room;
  if (timed_out() && ec == net::error::operation_aborted) ec = net::error::timed_out;
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
    if (up_head_.capacity() > kSmallRead) std::string().swap(up_head_);
    const std::size_t head_len = co_await read_head(first);
    idle_ = false;
    first = false;
    if (head_len == 0) break;
    auto outcome = co_await handle(head_len);
    if (outcome == Outcome::Abort) {
      release_held();
      close();
      deadline_.cancel();
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
  deadline_.cancel();
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
  if (adopted_) {  // its owner may have changed it since the last request (assign: no allocation)
    client_ip_.assign(adopted_->ip);
    client_addr_.assign(adopted_->addr);
  }
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
  // Path normalisation and header-name policy ([http]), before anything routes on the request.
  if (const auto bad = ctx_.safety.sanitize_request(p.get())) {
    co_await respond_error(400, bad->code, bad->message, false);
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
  auto table = ctx_.routes;  // this request keeps the routes it was matched against
  if (const auto* route = table->router.match(req)) {
    co_return co_await handle_route(*route, std::move(table), p);
  }
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
  // The member of the tunnel's pool that takes this request (the only one, without a pool).
  auto member = ctx_.registry.pick(*name);
  if (!member) {
    ++t->stats.request_count;
    ++t->stats.error_count;
    t->stats.last_status = 503;
    co_await respond_error(
        503, "no_healthy_endpoint",
        "tunnel '" + *name + "' has no connected agent whose local service is healthy", keep_alive);
    co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
  }
  Target to;
  to.tunnel = std::move(member);
  to.stats = &to.tunnel->stats;
  to.load = MemberLoad(to.tunnel);
  co_return co_await forward(std::move(to), p, std::move(target), nullptr);
}

awaitable<Outcome> ClientConn::handle_route(const config::RouteConfig& route,
                                            std::shared_ptr<RouteTable> table,
                                            bhttp::request_parser<bhttp::buffer_body>& p) {
  auto& req = p.get();
  const bool has_body = p.chunked() || (p.content_length() && *p.content_length() > 0);
  const bool keep_alive = req.keep_alive() && !has_body;
  auto cluster = table->cluster(route.cluster);  // validation guarantees it exists
  auto& policy = cluster->policy();
  ++policy.stats().requests;
  const auto limit = route.max_body_bytes > 0 ? route.max_body_bytes : ctx_.cfg.max_body_bytes;
  if (p.content_length() && limit > 0 && *p.content_length() > limit) {
    co_await respond_error(413, "body_too_large",
                           "request body larger than " + std::to_string(limit) + " bytes", false);
    co_return Outcome::Close;
  }
  auto request_slot = policy.breaker().try_acquire(proxy::CircuitBreaker::Resource::Requests);
  if (!request_slot) {
    ++policy.stats().circuit_open;
    co_await respond_error(503, "circuit_open",
                           "cluster '" + cluster->name() + "' is at its limit of " +
                               std::to_string(policy.cfg().circuit_breaker.max_requests) +
                               " requests in flight (circuit_breaker.max_requests)",
                           keep_alive);
    co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
  }
  ++policy.active_requests;
  struct Active {
    proxy::Cluster& c;
    ~Active() { --c.active_requests; }
  } active{policy};

  RouteState rs{route, std::move(table), cluster};
  if (policy.balancer().uses_key()) {
    rs.key = proxy::hash64(proxy::hash_key_of(policy.cfg().hash_key, req, client_ip_));
  }
  rs.tried.assign(policy.endpoints().size(), false);
  auto first = pick(rs);
  if (auto* f = std::get_if<AttemptFailure>(&first)) {
    ++policy.stats().no_endpoint;
    co_await respond_error(f->status, f->code, f->message, keep_alive);
    co_return keep_alive ? Outcome::KeepAlive : Outcome::Close;
  }
  auto target = proxy::rewrite_target(route, std::string_view(req.target()));
  if (const auto bad = ctx_.safety.check_rewritten(route, req.target(), target)) {
    co_await respond_error(400, bad->code, bad->message, false);
    co_return Outcome::Close;
  }
  co_return co_await forward(std::move(std::get<Target>(first)), p, std::move(target), &rs);
}

std::variant<Target, AttemptFailure> ClientConn::pick(RouteState& rs) {
  auto& policy = rs.cluster->policy();
  auto& eps = policy.endpoints();
  const auto now = Clock::now();
  // Inline storage: no allocation per request for clusters of up to kInlineEndpoints.
  boost::container::small_vector<proxy::Candidate, fwd::kInlineEndpoints> candidates(eps.size());
  // An HTTP tunnel with a member that can take it (live agent, not leaving, healthy by its
  // agent's checks and by the cluster's).
  auto tunnel_up = [&](std::size_t i) { return tunnel_endpoint_up(ctx_.registry, *rs.cluster, i); };
  bool untried = false;
  for (std::size_t i = 0; i < eps.size(); ++i) {
    candidates[i].active = eps[i].active;
    candidates[i].usable = (!eps[i].cfg.tunnel || tunnel_up(i)) && policy.in_rotation(i, now);
    untried = untried || (candidates[i].usable && !rs.tried[i]);
  }
  // A retry goes to another endpoint whenever one can take it.
  if (untried) {
    for (std::size_t i = 0; i < eps.size(); ++i) {
      if (rs.tried[i]) candidates[i].usable = false;
    }
  }
  const auto picked = policy.balancer().pick(candidates, rs.key);
  if (!picked) {
    AttemptFailure f;
    f.status = 503;
    f.kind = proxy::Failure::ConnectFailure;
    f.sent = false;
    if (eps.empty()) {
      f.code = "no_endpoint";
      f.message = "route '" + rs.route.name + "': cluster '" + policy.name() + "' has no endpoints";
    } else {
      // The reasons, worked out again only now that they are needed.
      std::string down, failing, out;
      for (std::size_t i = 0; i < eps.size(); ++i) {
        if (eps[i].cfg.tunnel && !tunnel_up(i)) {
          // No usable member at all, or usable ones that this cluster's checks exclude.
          auto& list = ctx_.registry.has_usable(eps[i].cfg.tunnel_name, proto::TunnelType::Http)
                           ? failing
                           : down;
          list += (list.empty() ? "" : ", ") + eps[i].cfg.tunnel_name;
        } else if (!policy.in_rotation(i, now)) {
          out += (out.empty() ? "" : ", ") + eps[i].cfg.url;
        }
      }
      f.code = "no_healthy_endpoint";
      f.message = "route '" + rs.route.name + "': no endpoint of cluster '" + policy.name() +
                  "' can take the request";
      if (!down.empty()) {
        f.message += " (tunnels without a connected agent with a healthy service: " + down + ")";
      }
      if (!failing.empty()) {
        f.message +=
            " (tunnels whose every agent fails the cluster's health checks: " + failing + ")";
      }
      if (!out.empty()) f.message += " (unhealthy or ejected: " + out + ")";
    }
    return f;
  }
  const auto i = *picked;
  rs.tried[i] = true;
  rs.in_flight.reset();
  rs.in_flight.emplace(eps[i]);
  Target t;
  t.endpoint = i;
  if (eps[i].cfg.tunnel) {
    // The cluster's policy again, among the members of the tunnel's pool (tunnel_up() above
    // said one can take it, and nothing ran since).
    t.tunnel = pick_tunnel_member(ctx_.registry, *rs.cluster, i, rs.key);
    t.stats = &t.tunnel->stats;
    t.load = MemberLoad(t.tunnel);
  } else {
    t.pool = rs.cluster->pool(i);
    t.stats = &rs.cluster->stats(i);
  }
  return t;
}

awaitable<Outcome> ClientConn::answer_failure(TunnelStats* stats, Clock::time_point started,
                                              const AttemptFailure& f, bool keep_alive) {
  {
    ++stats->error_count;
    stats->last_status = f.status;
    stats->latency_us_total += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  }
  const bool ka = co_await respond_error(f.status, f.code, f.message, keep_alive);
  co_return ka ? Outcome::KeepAlive : Outcome::Close;
}

bool ClientConn::take_reusable(Target& to, Upstream& up) {
  up = take_held(to);
  if (!up) {
    if (to.tunnel) {
      if (auto s = take_idle_stream(*to.tunnel)) up = Upstream(std::move(s));
    } else if (auto c = to.pool->take_idle()) {
      up = Upstream(std::move(c));
    }
  }
  return static_cast<bool>(up);
}

awaitable<std::optional<AttemptFailure>> ClientConn::open_new(Target& to, Upstream& up) {
  up = Upstream{};
  AttemptFailure f;
  f.kind = proxy::Failure::ConnectFailure;
  f.sent = false;
  if (to.tunnel) {
    auto& t = *to.tunnel;
    if (!t.session || t.session->closed()) {
      f.code = "agent_unavailable";
      f.message = "the agent serving tunnel '" + t.name + "' is not connected";
      co_return f;
    }
    auto s = t.session->open_stream({t.name, client_addr_});
    if (!s) {
      f.code = "agent_unavailable";
      f.message = "the agent serving tunnel '" + t.name + "' cannot take more streams";
      co_return f;
    }
    up = Upstream(std::move(s));
    co_return std::nullopt;
  }
  auto r = co_await to.pool->connect();
  if (!r.ec) {
    up = Upstream(std::move(r.conn));
    co_return std::nullopt;
  }
  const auto& o = to.pool->options();
  const auto addr = to.pool->address();
  if (r.ec == net::error::timed_out) {
    f.status = 504;
    f.code = "upstream_timeout";
    f.message = r.stage == ConnectResult::Stage::Tls
                    ? "the TLS handshake with upstream " + addr + " did not finish within " +
                          config::format_duration(o.tls_timeout)
                    : "upstream " + addr + " did not accept the connection within " +
                          config::format_duration(o.connect_timeout);
  } else if (r.stage == ConnectResult::Stage::Tls) {
    f.code = "upstream_tls";
    f.final = true;
    f.message = "the TLS handshake with upstream " + addr + " failed: " + r.ec.message();
  } else if (r.ec == net::error::connection_refused) {
    f.code = "upstream_refused";
    f.message = "upstream " + addr + " refused the connection";
  } else {
    f.code = "upstream_unreachable";
    f.message = "cannot connect to upstream " + addr + ": " + r.ec.message();
  }
  co_return f;
}

awaitable<AttemptResult> ClientConn::send_body(Target& to, Upstream& up, RequestBody& body,
                                               bhttp::request_parser<bhttp::buffer_body>& p,
                                               std::uint64_t max_body) {
  AttemptResult r;
  r.kind = AttemptResult::Response;  // "sent": the caller goes on to read the response
  auto upstream_failed = [&](const error_code& ec) {
    r.kind = AttemptResult::Failed;
    r.failure.code = to.tunnel ? "agent_unavailable" : "upstream_closed";
    r.failure.message = (to.tunnel ? "the tunnel failed while sending the body: "
                                   : to.what() + " failed while the body was sent: ") +
                        ec.message();
  };
  if (body.read) {  // a retry: the whole body was kept
    if (auto ec = co_await up.write(net::buffer(body.copy))) upstream_failed(ec);
    co_return r;
  }
  body.read = true;
  auto keep = [&](const void* data, std::size_t n) {
    if (!body.keep) return;
    if (body.copy.size() + n > kReplayLimit) {
      body.keep = false;
      std::string().swap(body.copy);
      return;
    }
    body.copy.append(static_cast<const char*>(data), n);
  };
  auto client_gone = [&]() {
    r.kind = AttemptResult::Finished;
    r.outcome = Outcome::Abort;
    ++to.stats->error_count;
  };
  auto& req = p.get();
  // Content-Length bytes are copied raw; chunked bodies are validated by the parser and forwarded
  // raw (chunk framing, extensions and trailers unchanged).
  if (!p.chunked()) {
    std::uint64_t left = p.content_length().value_or(0);
    while (left > 0) {
      if (buf_.size() == 0) {
        if (co_await read_body_more()) {
          client_gone();
          co_return r;
        }
      }
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf_.size()));
      keep(buf_.data().data(), n);
      if (auto ec = co_await up.write(net::buffer(buf_.data().data(), n))) {
        upstream_failed(ec);
        co_return r;
      }
      buf_.consume(n);
      left -= n;
      body.bytes += n;
    }
    body.complete = body.keep;
    co_return r;
  }
  // On the heap: an array here would sit in every request's coroutine frame, chunked or not.
  const auto sink = std::make_unique_for_overwrite<char[]>(kSinkSize);
  std::uint64_t decoded = 0;
  while (!p.is_done()) {
    if (buf_.size() == 0) {
      if (co_await read_body_more()) {
        client_gone();
        co_return r;
      }
    }
    req.body().data = sink.get();
    req.body().size = kSinkSize;
    error_code pec;
    const std::size_t n = p.put(buf_.data(), pec);
    if (pec && pec != bhttp::error::need_buffer && pec != bhttp::error::need_more) {
      r.kind = AttemptResult::Finished;
      // Named: GCC 12 destroys a temporary in a co_await full-expression twice.
      const AttemptFailure f{
          400, "bad_request", "malformed chunked body: " + pec.message(), {}, false};
      r.outcome = co_await answer_failure(to.stats, Clock::now(), f, false);
      co_return r;
    }
    decoded += kSinkSize - req.body().size;
    if (max_body > 0 && decoded > max_body) {
      r.kind = AttemptResult::Finished;
      // Named: GCC 12 destroys a temporary in a co_await full-expression twice.
      const AttemptFailure f{413,
                             "body_too_large",
                             "request body larger than " + std::to_string(max_body) + " bytes",
                             {},
                             false};
      r.outcome = co_await answer_failure(to.stats, Clock::now(), f, false);
      co_return r;
    }
    if (n > 0) {
      keep(buf_.data().data(), n);
      if (auto ec = co_await up.write(net::buffer(buf_.data().data(), n))) {
        upstream_failed(ec);
        co_return r;
      }
      buf_.consume(n);
      body.bytes += n;
    } else if (pec == bhttp::error::need_more && buf_.size() > 0) {
      // The parser needs more than what is buffered; read more (appends to buf_).
      if (co_await read_body_more()) {
        client_gone();
        co_return r;
      }
    }
  }
  body.complete = body.keep;
  co_return r;
}

awaitable<AttemptResult> ClientConn::attempt(Target& to, const std::string& head, RequestBody& body,
                                             bhttp::request_parser<bhttp::buffer_body>& p,
                                             std::chrono::milliseconds timeout,
                                             std::uint64_t max_body) {
  AttemptResult r;
  Upstream& up = r.up;
  auto failed = [&](unsigned status, std::string code, std::string message, proxy::Failure kind,
                    bool sent) {
    up.discard();
    r.kind = AttemptResult::Failed;
    r.failure = {status, std::move(code), std::move(message), kind, sent};
    return std::move(r);
  };
  // A pooled stream or connection may have been closed by the other side while idle; that shows
  // as a write error or as EOF before any response byte. Then the request is sent again once on
  // a new one, when it can be (no body, or a body still unread or kept whole).
  bool reused = false;
  for (bool reuse = true;; reuse = false) {
    reused = reuse && take_reusable(to, up);
    if (!reused) {
      if (auto f = co_await open_new(to, up)) {
        r.kind = AttemptResult::Failed;
        r.failure = std::move(*f);
        co_return r;
      }
    }
    if (auto ec = co_await up.write(net::buffer(head))) {
      if (reused && body.replayable()) {
        up.discard();
        continue;
      }
      co_return failed(
          502, to.tunnel ? "agent_unavailable" : "upstream_closed",
          (to.tunnel ? "the tunnel stream failed: " : to.what() + " failed: ") + ec.message(),
          proxy::Failure::Reset, true);
    }
    if (body.present) {
      auto b = co_await send_body(to, up, body, p, max_body);
      if (b.kind != AttemptResult::Response) {
        up.discard();
        b.failure.kind = proxy::Failure::Reset;
        b.failure.sent = true;
        co_return b;
      }
    }

    // Response head, parsed in place from the upstream's receive buffer, under the deadline.
    // Disarmed for good when the attempt ends, before `up` can move or go away.
    watched_ = &up;
    up_deadline_.arm(timeout);
    struct Disarm {
      ClientConn& c;
      ~Disarm() {
        c.up_deadline_.disarm();
        c.watched_ = nullptr;
      }
    } disarm_deadline{*this};

    bool stale = false;
    for (;;) {
      // 1xx responses (other than 101) are relayed and followed by the real one.
      std::size_t head_len = 0;
      for (;;) {
        const auto data = up.peek_all();
        if (auto e = http::find_head_end(data); e != std::string_view::npos) {
          head_len = e;
          break;
        }
        if (data.size() > kMaxResponseHead) {
          co_return failed(502, "bad_response", to.what() + " sent an oversized response header",
                           proxy::Failure::Reset, true);
        }
        if (auto ec = co_await up.wait_more(data.size())) {
          if (up_deadline_.expired()) {
            co_return failed(
                504, "timeout",
                to.what() + " did not answer within " + config::format_duration(timeout),
                proxy::Failure::Timeout, true);
          }
          if (auto* s = up.stream()) {
            const auto code = s->reset_code();
            if (ec == net::error::connection_reset && code == proto::ErrorCode::ConnectRefused) {
              co_return failed(502, "local_refused",
                               "the local service of tunnel '" + to.tunnel->name +
                                   "' refused the connection (is it running?)",
                               proxy::Failure::ConnectFailure, false);
            }
            if (ec == net::error::connection_reset && code == proto::ErrorCode::ConnectTimeout) {
              co_return failed(502, "local_unreachable",
                               "the local service of tunnel '" + to.tunnel->name +
                                   "' did not accept the connection in time",
                               proxy::Failure::ConnectFailure, false);
            }
            if (ec == net::error::connection_aborted) {
              co_return failed(502, "agent_disconnected",
                               "the agent serving tunnel '" + to.tunnel->name +
                                   "' disconnected before the response",
                               proxy::Failure::Reset, true);
            }
          }
          if (reused && data.empty() && body.replayable()) {
            stale = true;
            break;
          }
          co_return failed(502, to.tunnel ? "local_closed" : "upstream_closed",
                           (to.tunnel ? "the local service of " + to.what() : to.what()) +
                               " closed the connection without a response",
                           proxy::Failure::Reset, true);
        }
      }
      if (stale) break;
      res_raw_.assign(up.peek_all().substr(0, head_len));
      if (auto bad = http::parse_response_head(res_raw_, res_)) {
        co_return failed(502, "bad_response", "malformed response from " + to.what() + ": " + *bad,
                         proxy::Failure::Reset, true);
      }
      up.consume(head_len);
      const unsigned status = res_.status;
      if (status >= 100 && status < 200 && status != 101) {
        const http::ResponseEdits as_is{.strip_hop_by_hop = false};
        scratch_.clear();
        http::serialize_response_head(res_, as_is, scratch_);
        auto [ec2, n2] = co_await net::async_write(sock_, net::buffer(scratch_), use_nothrow);
        if (ec2) {
          up.discard();
          r.kind = AttemptResult::Finished;
          r.outcome = Outcome::Abort;
          co_return r;
        }
        continue;
      }
      r.kind = AttemptResult::Response;
      co_return r;
    }
    up.discard();  // stale: once more on a new stream or connection
  }
}

awaitable<Outcome> ClientConn::forward(Target to, bhttp::request_parser<bhttp::buffer_body>& p,
                                       std::string target, RouteState* rs) {
  auto& req = p.get();
  const auto started = Clock::now();
  const config::RouteConfig* route = rs ? &rs->route : nullptr;
  const auto request_timeout =
      route && route->timeout.count() > 0 ? route->timeout : ctx_.cfg.request_timeout;
  const auto max_body =
      route && route->max_body_bytes > 0 ? route->max_body_bytes : ctx_.cfg.max_body_bytes;
  const bool chunked_req = p.chunked();
  const bool has_body = chunked_req || p.content_length().value_or(0) > 0;
  const bool upgrade = http::is_upgrade(req);
  const bool head_method = req.method() == bhttp::verb::head;
  const auto method = req.method();
  bool client_keep_alive = http::wants_keep_alive(req) && !ctx_.draining;
  ++ctx_.stats.requests_active;
  struct ActiveGuard {
    Context& c;
    ~ActiveGuard() { --c.stats.requests_active; }
  } guard{ctx_};

  // Build the upstream head once, straight from the parsed request (whose fields stay as the
  // client sent them): hop-by-hop fields and Expect out, forwarding headers and the route's
  // request_headers changes in, the routed target, and the gateway's own body framing.
  const bool expect_continue = boost::beast::iequals(req[bhttp::field::expect], "100-continue");
  http::ForwardEdits up_edits{.target = target,
                              .keep_upgrade = upgrade,
                              .client_ip = client_ip_,
                              .proto = "http",
                              .host = req[bhttp::field::host],
                              .trusted_peer = ctx_.safety.trusts(client_ip_),
                              .chunked = chunked_req,
                              .memo = &fwd_memo_};
  if (route) {
    up_edits.remove = route->request_headers.remove;
    up_edits.set = route->request_headers.set;
    up_edits.add = route->request_headers.add;
  }
  std::string& head = up_head_;  // kept by the connection: no allocation per request
  head.clear();
  http::serialize_forward_head(req, up_edits, head);

  if (expect_continue) {
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    auto [ec, n] = co_await net::async_write(sock_, net::buffer(k100), use_nothrow);
    if (ec) co_return Outcome::Abort;
  }

  const proxy::RetryPolicy* retry = rs ? &rs->table->retry_policy(*route) : nullptr;
  RequestBody body;
  body.present = has_body;
  body.keep = has_body && retry && retry->retries() > 0 && proxy::idempotent(method);

  AttemptResult r;
  std::optional<proxy::CircuitBreaker::Token> retry_slot;
  // Seeded at the first backoff; on the heap, as most requests never retry and the engine's
  // 2.5 KiB of state would make this coroutine's frame (allocated per request) that much larger.
  std::unique_ptr<std::mt19937_64> rng;
  std::uint32_t attempts = 0;
  for (std::uint32_t n = 1;; ++n) {
    attempts = n;
    ++to.stats->request_count;
    to.stats->bytes_in += head.size();
    // The route's timeout bounds the whole request; per_try_timeout each attempt.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        started + request_timeout - Clock::now());
    auto timeout = left;
    if (route && route->retry.per_try_timeout.count() > 0) {
      timeout = std::min(timeout, route->retry.per_try_timeout);
    }
    if (timeout.count() <= 0) {
      r = {};
      r.failure = {504, "timeout",
                   to.what() + " did not answer within " + config::format_duration(request_timeout),
                   proxy::Failure::Timeout, true};
    } else {
      r = co_await attempt(to, head, body, p, timeout, max_body);
    }
    if (r.kind == AttemptResult::Finished) co_return r.outcome;
    if (r.kind == AttemptResult::Response) to.stats->bytes_in += body.bytes;
    const unsigned status = r.kind == AttemptResult::Response ? res_.status : 0;
    if (rs) {
      using R = proxy::OutlierDetector::Result;
      auto& policy = rs->cluster->policy();
      const auto result = r.kind == AttemptResult::Failed ? R::ConnectFailure
                          : status >= 500                 ? R::Http5xx
                                                          : R::Success;
      if (policy.record(to.endpoint, result, Clock::now())) {
        logger()->warn("cluster '{}': endpoint {} ejected ({} in a row; ejected {} times)",
                       policy.name(), policy.endpoints()[to.endpoint].cfg.url,
                       result == R::Http5xx ? "5xx responses" : "connection failures",
                       policy.outlier().times_ejected(to.endpoint, Clock::now()));
      }
    }
    if (!rs) break;
    // Retry? Only what the route's policy lists, only when safe, within the cluster's retry
    // budget and its breaker's max_retries, and (when there is one) on another endpoint.
    proxy::Attempt a;
    a.failure = r.kind == AttemptResult::Response ? proxy::Failure::Status : r.failure.kind;
    a.status = status;
    a.request_sent = r.kind == AttemptResult::Response || r.failure.sent;
    a.body_replayable = body.replayable();
    a.method = method;
    a.attempt_number = n;
    if (r.kind == AttemptResult::Failed && r.failure.final) break;
    if (!retry->should_retry(a)) break;
    auto& policy = rs->cluster->policy();
    if (!policy.retry_budget_allows()) {
      ++policy.stats().retry_budget_spent;
      break;
    }
    auto slot = policy.breaker().try_acquire(proxy::CircuitBreaker::Resource::Retries);
    if (!slot) break;
    auto next = pick(*rs);
    if (std::holds_alternative<AttemptFailure>(next)) break;
    r.up.discard();
    ++policy.stats().retries;
    if (!retry_slot) ++policy.active_retries;
    retry_slot = std::move(slot);
    if (!rng) rng = std::make_unique<std::mt19937_64>(std::random_device{}());
    net::steady_timer backoff(sock_.get_executor());
    backoff.expires_after(retry->backoff(n - 1, *rng));
    co_await backoff.async_wait(use_nothrow);
    logger()->debug("route '{}': attempt {} to {} failed ({}); retrying on {}", route->name, n,
                    to.what(),
                    a.failure == proxy::Failure::Status ? std::to_string(status) : r.failure.code,
                    std::get<Target>(next).what());
    to = std::move(std::get<Target>(next));
  }
  if (retry_slot) --rs->cluster->policy().active_retries;

  if (r.kind == AttemptResult::Failed) {
    auto f = std::move(r.failure);
    if (rs) {
      auto& st = rs->cluster->policy().stats();
      if (f.status == 504) ++st.timeouts;
      if (f.status == 502) ++st.upstream_errors;
    }
    if (attempts > 1) {
      f.message = std::to_string(attempts) + " attempts failed; the last: " + f.message;
      // The status follows the last attempt, as Envoy's does: one that timed out (connecting
      // or waiting for the head) is a 504 with its own code; any other failure a 502.
      if (f.status != 504) {
        f.status = 502;
        f.code = "retries_exhausted";
      }
    }
    co_return co_await answer_failure(to.stats, started, f, client_keep_alive && !has_body);
  }
  auto& up = r.up;
  auto& stats = *to.stats;
  const auto& res = res_;
  const unsigned status = res.status;
  stats.last_status = status;
  if (status >= 500) ++stats.error_count;

  // 101: the connection becomes a two-way pipe between the client and the upstream.
  if (status == 101 && upgrade) {
    scratch_.clear();
    const http::ResponseEdits edits{.keep_upgrade = true,
                                    .hide = ctx_.safety.hide_response_headers};
    http::serialize_response_head(res, edits, scratch_);
    auto [ec, n] = co_await net::async_write(sock_, net::buffer(scratch_), use_nothrow);
    if (ec) {
      up.discard();
      co_return Outcome::Abort;
    }
    stats.bytes_out += n;
    if (buf_.size() > 0) {  // bytes the client sent after its upgrade request
      if (co_await up.write(buf_.data())) co_return Outcome::Abort;
      buf_.consume(buf_.size());
    }
    auto result =
        up.stream()
            ? co_await tunnel::pump(up.take_stream(), std::move(sock_), ctx_.cfg.idle_timeout)
            : co_await pump_direct(up.take_conn(), std::move(sock_), ctx_.cfg.idle_timeout);
    stats.bytes_in += result.to_stream;
    stats.bytes_out += result.to_socket;
    co_return Outcome::Abort;  // socket moved into the pump and closed there
  }

  // Response framing towards the client.
  const bool no_body =
      head_method || status == 204 || status == 304 || (status >= 100 && status < 200);
  const bool chunked_res = !no_body && res.chunked;
  const auto res_len = no_body ? std::optional<std::uint64_t>() : res.content_length;
  const bool until_close = !no_body && !chunked_res && !res_len;
  const bool upstream_keep_alive = res.keep_alive() && !until_close;
  if (until_close || !client_keep_alive) client_keep_alive = false;

  http::ResponseEdits edits{.hide = ctx_.safety.hide_response_headers,
                            .chunked = chunked_res,
                            .connection_close = !client_keep_alive};
  if (route) {
    edits.remove = route->response_headers.remove;
    edits.set = route->response_headers.set;
    edits.add = route->response_headers.add;
  }
  scratch_.clear();
  http::serialize_response_head(res, edits, scratch_);

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
      auto ec = co_await up.wait_readable();
      if (ec) {
        body_ok = false;
        break;
      }
      auto data = up.peek();
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, data.size()));
      if (co_await send(data.substr(0, n))) {
        body_ok = false;
        break;
      }
      up.consume(n);
      left -= n;
    }
  } else if (chunked_res) {
    // The chunk framing is Beast's. Its parser needs only to know that a chunked body follows,
    // so it is given a fixed head saying so, not the upstream's (already checked, and some
    // heads we accept it would refuse: no SP after the status code, say). On the heap, like
    // the sink: in the frame they would sit in every request's coroutine, chunked or not.
    static constexpr std::string_view kChunkedHead =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto parser = std::make_unique<bhttp::response_parser<bhttp::buffer_body>>();
    auto& rp = *parser;
    rp.body_limit(boost::none);
    rp.eager(false);
    {
      error_code pec;
      rp.put(net::buffer(kChunkedHead.data(), kChunkedHead.size()), pec);
      if (pec || !rp.is_header_done() || !rp.chunked()) body_ok = false;  // cannot happen
    }
    const auto sink = std::make_unique_for_overwrite<char[]>(kSinkSize);
    bool need_all = false;  // the parser needs bytes beyond the front chunk
    while (body_ok && !rp.is_done()) {
      auto data = need_all ? up.peek_all() : up.peek();
      need_all = false;
      if (data.empty()) {
        if (co_await up.wait_readable()) {
          body_ok = false;
          break;
        }
        continue;
      }
      rp.get().body().data = sink.get();
      rp.get().body().size = kSinkSize;
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
        up.consume(n);
      } else if (pec == bhttp::error::need_more) {
        if (up.buffered() > data.size()) {
          need_all = true;
        } else if (co_await up.wait_more(data.size())) {
          body_ok = false;
          break;
        }
      }
    }
  } else {  // until close
    for (;;) {
      auto ec = co_await up.wait_readable();
      if (ec == net::error::eof) {
        if (!head_sent && co_await send({})) body_ok = false;
        break;
      }
      if (ec) {
        body_ok = false;
        break;
      }
      auto data = up.peek();
      if (co_await send(data)) {
        body_ok = false;
        break;
      }
      up.consume(data.size());
    }
  }

  stats.bytes_out += sent;
  stats.latency_us_total += static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  if (!body_ok) {
    up.discard();
    if (!head_sent) {
      // Named: GCC 12 destroys a temporary in a co_await full-expression twice.
      const AttemptFailure f{502,
                             to.tunnel ? "agent_disconnected" : "upstream_closed",
                             to.what() + " failed before the response was complete",
                             {},
                             true};
      co_return co_await answer_failure(&stats, started, f, client_keep_alive && !has_body);
    }
    co_return Outcome::Abort;
  }
  if (upstream_keep_alive && !until_close && client_keep_alive) {
    hold(std::move(up), to);  // this client's next request to the same upstream reuses it first
  } else if (upstream_keep_alive && !until_close) {
    if (to.tunnel) {
      give_back_stream(*to.tunnel, up.take_stream(), ctx_.cfg.pool_idle_per_tunnel);
    } else {
      to.pool->give_back(up.take_conn());
    }
  } else {
    up.discard();
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

void PublicServer::adopt(tcp::socket sock, std::shared_ptr<const AdoptedClient> client) {
  auto conn = std::make_shared<ClientConn>(*this, std::move(sock), std::move(client));
  net::co_spawn(
      ex_, [conn]() { return conn->run(); }, DetachedTask{"adopted connection"});
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
