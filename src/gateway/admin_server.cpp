#include "gateway/admin_server.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cmath>

#include "core/log.h"
#include "gateway/agent_conn.h"
#include "gateway/forward_api.h"
#include "gateway/metrics.h"
#include "gateway/tcp_tunnels.h"
#include "proxer/web_assets.h"
#include "transport/stream.h"

namespace proxer::gateway {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {
constexpr auto kAdminTimeout = std::chrono::seconds(30);

std::string iso8601(std::chrono::system_clock::time_point tp) {
  auto t = std::chrono::system_clock::to_time_t(tp);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

std::string health_json(const Context& ctx) {
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now() - ctx.started);
  json::object o{{"status", ctx.draining ? "draining" : "ok"},
                 {"uptime_s", up.count()},
                 {"tunnels", ctx.registry.size()},
                 {"agents", ctx.registry.agents().size()},
                 {"connections", ctx.stats.connections_active},
                 {"requests_total", ctx.stats.requests_total}};
  return json::serialize(o);
}

namespace {

json::object stats_json(const TunnelStats& s) {
  const double avg = s.request_count ? static_cast<double>(s.latency_us_total) /
                                           static_cast<double>(s.request_count) / 1000.0
                                     : 0.0;
  return json::object{{"request_count", s.request_count},
                      {"error_count", s.error_count},
                      {"bytes_in", s.bytes_in},
                      {"bytes_out", s.bytes_out},
                      {"avg_latency_ms", std::round(avg * 1000.0) / 1000.0},
                      {"last_status", s.last_status}};
}

}  // namespace

std::string tunnels_json(const Context& ctx) {
  json::array arr;
  for (const auto* p : ctx.registry.pools()) {
    if (p->members.empty()) continue;
    const auto& first = *p->members.front();
    // One entry per name. Its counters add up the members'; agent, carrier and RTT are the
    // first member's (the only one, without a pool); `members` has each member's own.
    TunnelStats total;
    std::size_t idle = 0, open_streams = 0, in_rotation = 0;
    bool pooled = false;
    json::array members;
    for (const auto& m : p->members) {
      const auto& s = m->stats;
      total.request_count += s.request_count;
      total.error_count += s.error_count;
      total.bytes_in += s.bytes_in;
      total.bytes_out += s.bytes_out;
      total.latency_us_total += s.latency_us_total;
      if (s.last_status != 0) total.last_status = s.last_status;
      idle += m->idle.size();
      pooled = pooled || m->pool;
      const bool up = usable(*m);
      in_rotation += up ? 1 : 0;
      auto mo = stats_json(s);
      mo["agent_id"] = m->agent_id;
      mo["local_target"] = m->local_target;
      mo["connected_since"] = iso8601(m->connected_since);
      mo["healthy"] = m->healthy;  // the agent's verdict on its local target
      mo["in_rotation"] = up;      // healthy, connected and not leaving
      mo["health_transitions"] = m->health_transitions;
      if (!m->health_reason.empty()) mo["health_reason"] = m->health_reason;
      mo["active_requests"] = m->active;
      mo["idle_streams"] = m->idle.size();
      if (m->session) {
        mo["carrier"] = m->session->carrier();
        mo["rtt_us"] = m->session->rtt().count();
        mo["open_streams"] = m->session->stream_count();
        open_streams += m->session->stream_count();
      }
      members.push_back(std::move(mo));
    }
    auto o = stats_json(total);
    o["name"] = p->name;
    o["type"] = first.type == proto::TunnelType::Tcp ? "tcp" : "http";
    o["agent_id"] = first.agent_id;
    o["local_target"] = first.local_target;
    o["token_required"] = !first.token.empty();
    o["connected_since"] = iso8601(first.connected_since);
    o["idle_streams"] = idle;
    if (first.tcp) {  // TCP tunnels: request_count counts connections
      o["public_port"] = first.public_port;
      o["open_connections"] = first.tcp->connections();
    }
    if (first.session) {
      o["carrier"] = first.session->carrier();
      o["rtt_us"] = first.session->rtt().count();
      o["open_streams"] = open_streams;
    }
    o["pool"] = pooled;
    o["healthy"] = in_rotation > 0;  // some member can take requests
    o["members_in_rotation"] = in_rotation;
    o["members"] = std::move(members);
    arr.push_back(std::move(o));
  }
  return json::serialize(json::object{{"tunnels", std::move(arr)}});
}

// POST /forward makes the gateway send a request into a tunnel, and the admin listener has no
// login: a web page in the operator's browser must not be able to trigger it. A cross-site form
// or fetch cannot send Content-Type: application/json without a CORS preflight (which this
// server never grants), and a DNS-rebinding page reaches us under its own host name, not under
// an IP address or "localhost".
std::optional<std::pair<unsigned, std::string>> refuse_browser_forgery(
    const bhttp::request<bhttp::string_body>& req) {
  const auto ctype = req[bhttp::field::content_type];
  const auto base = ctype.substr(0, ctype.find(';'));
  if (!boost::beast::iequals(base, "application/json")) {
    return std::pair{415u, std::string("POST /forward needs Content-Type: application/json")};
  }
  std::string host(req[bhttp::field::host]);
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  error_code ec;
  net::ip::make_address(host, ec);
  if (ec && !boost::beast::iequals(host, "localhost")) {
    return std::pair{403u, std::string("POST /forward is only accepted with an IP address or "
                                       "localhost in the Host header")};
  }
  return std::nullopt;
}

std::string connections_json(const Context& ctx) {
  json::array arr;
  auto agents = ctx.registry.agents();
  std::sort(agents.begin(), agents.end(), [](const auto& a, const auto& b) {
    return a->connected_since() < b->connected_since();
  });
  for (const auto& a : agents) {
    const auto& s = a->session();
    json::array tunnels;
    for (const auto& name : a->tunnels()) tunnels.emplace_back(name);
    json::object o{{"id", a->session_id()},
                   {"agent_id", a->agent_id()},
                   {"remote_address", s ? s->remote_address() : ""},
                   {"carrier", s ? s->carrier() : ""},
                   {"connected_since", iso8601(a->connected_since())},
                   {"tunnels", std::move(tunnels)},
                   {"open_streams", s ? s->stream_count() : 0},
                   {"rtt_us", s ? s->rtt().count() : 0}};
    arr.push_back(std::move(o));
  }
  return json::serialize(json::object{{"connections", std::move(arr)}});
}

AdminServer::AdminServer(net::any_io_executor ex, Context& ctx)
    : ex_(ex), ctx_(ctx), acceptor_(ex) {}

error_code AdminServer::listen(const std::string& address) {
  return transport::listen_tcp(acceptor_, address, 128);
}

std::uint16_t AdminServer::port() const {
  error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void AdminServer::start() {
  net::co_spawn(ex_, accept_loop(), DetachedTask{"admin accept loop"});
}

void AdminServer::stop() {
  error_code ec;
  acceptor_.close(ec);
}

awaitable<void> AdminServer::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
    if (!acceptor_.is_open()) co_return;
    if (ec) continue;
    net::co_spawn(ex_, serve(std::move(sock)), DetachedTask{"admin connection"});
  }
}

awaitable<void> AdminServer::serve(tcp::socket sock) {
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buf;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> p;
    p.header_limit(16 * 1024);
    p.body_limit(1024 * 1024);
    stream.expires_after(kAdminTimeout);
    auto [ec, n] = co_await bhttp::async_read(stream, buf, p, use_nothrow);
    if (ec) break;
    auto& req = p.get();
    bhttp::response<bhttp::string_body> res;
    res.version(11);
    res.keep_alive(req.keep_alive());
    res.set(bhttp::field::server, "proxer");
    res.set(bhttp::field::cache_control, "no-store");
    std::string_view target = req.target();
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
    if (get && (target == "/api/health" || target == "/health" || target == "/healthz")) {
      res.result(bhttp::status::ok);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = health_json(ctx_);
    } else if (get && target == "/api/tunnels") {
      res.result(bhttp::status::ok);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = tunnels_json(ctx_);
    } else if (get && target == "/api/clusters") {
      res.result(bhttp::status::ok);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = clusters_json(ctx_, std::chrono::steady_clock::now());
    } else if (get && target == "/metrics") {
      res.result(bhttp::status::ok);
      res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = prometheus_metrics(ctx_, std::chrono::steady_clock::now());
    } else if (get && (target == "/connections" || target == "/api/connections")) {
      res.result(bhttp::status::ok);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = connections_json(ctx_);
    } else if (req.method() == bhttp::verb::post &&
               (target == "/forward" || target == "/api/forward")) {
      res.set(bhttp::field::content_type, "application/json");
      if (auto why = refuse_browser_forgery(req)) {
        res.result(why->first);
        res.body() = json::serialize(json::object{{"error", why->second}});
      } else {
        auto reply = co_await forward_json(ctx_, req.body());
        res.result(reply.status);
        res.body() = std::move(reply.json);
      }
    } else if (get) {
      const auto* asset = web::find_asset(target == "/" ? "/index.html" : target);
      if (asset && !target.starts_with("/demo/")) {
        res.result(bhttp::status::ok);
        res.set(bhttp::field::content_type, asset->content_type);
        res.body() = std::string(asset->body);
      } else {
        res.result(bhttp::status::not_found);
        res.set(bhttp::field::content_type, "application/json");
        res.body() = R"({"error":"not found"})";
      }
    } else {
      res.result(bhttp::status::method_not_allowed);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = R"({"error":"method not allowed"})";
    }
    if (req.method() == bhttp::verb::head) {
      res.prepare_payload();
      res.body().clear();
    } else {
      res.prepare_payload();
    }
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_nothrow);
    if (wec || !res.keep_alive()) break;
  }
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace proxer::gateway
