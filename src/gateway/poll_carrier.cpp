#include "gateway/poll_carrier.h"

#include <algorithm>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "core/deadline.h"
#include "core/log.h"
#include "gateway/agent_conn.h"

namespace proxer::gateway {

namespace json = boost::json;
using UnixSocket = net::local::stream_protocol::socket;

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("poll");  // NOLINT: immutable after first use
  return l;
}

std::shared_ptr<PollSession> find(Context& ctx, std::string_view id) {
  auto it = ctx.poll_sessions.find(std::string(id));
  if (it == ctx.poll_sessions.end()) return nullptr;
  it->second->last_seen = std::chrono::steady_clock::now();
  return it->second;
}

}  // namespace

PollReply poll_register(Context& ctx, std::string_view body, const std::string& client_addr) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 8;
  auto v = json::parse(body, ec, {}, opts);
  if (ec || !v.is_object()) return poll_error(400, "the body must be a JSON object");
  const auto& o = v.as_object();
  auto str = [&](const char* key) -> std::optional<std::string> {
    const auto* f = o.if_contains(key);
    if (!f) return std::string();
    if (!f->is_string()) return std::nullopt;
    return std::string(f->as_string());
  };
  const auto agent_id = str("agent_id");
  const auto token = str("token");
  if (!agent_id || !token) return poll_error(400, "'agent_id' and 'token' must be strings");
  std::vector<std::string> tunnels;
  if (const auto* t = o.if_contains("tunnels")) {
    if (!t->is_array()) return poll_error(400, "'tunnels' must be an array of names");
    for (const auto& n : t->as_array()) {
      if (!n.is_string() || !proto::valid_tunnel_name(n.as_string())) {
        return poll_error(400, "'tunnels' must hold valid tunnel names");
      }
      tunnels.emplace_back(n.as_string());
    }
  }
  if (ctx.draining) return poll_error(503, "the gateway is shutting down");
  if (!ctx.cfg.token.empty() && !ctx.cfg.token.matches(*token)) {
    ++ctx.stats.auth_failures;
    logger()->warn("long-poll registration of agent '{}' refused: invalid agent token", *agent_id);
    return poll_error(401, "invalid agent token");
  }
  // Both ends on the gateway's executor: the session on one, the HTTP handlers on the other.
  UnixSocket session_end(ctx.executor), http_end(ctx.executor);
  net::local::connect_pair(session_end, http_end, ec);
  if (ec) return poll_error(503, "cannot open a session: " + ec.message());
  const auto id = AgentConn::new_id();
  ctx.poll_sessions[id] = std::make_shared<PollSession>(std::move(http_end));
  transport::Stream io(std::move(session_end));
  io.set_carrier("poll");
  io.set_remote_address(client_addr);
  AgentConn::start_session(ctx, std::move(io), id);
  json::object routes;
  for (const auto& name : tunnels) {
    json::array urls;
    for (const auto& u : AgentConn::http_urls(ctx, name)) urls.emplace_back(u);
    routes[name] = std::move(urls);
  }
  logger()->info("long-poll session {} opened for agent '{}'", id, *agent_id);
  return {200, "application/json",
          json::serialize(json::object{{"session_id", id}, {"routes", std::move(routes)}})};
}

awaitable<PollReply> poll_pull(Context& ctx, std::string_view session_id,
                               std::chrono::milliseconds wait) {
  auto s = find(ctx, session_id);
  if (!s) co_return poll_error(404, "no such session (expired?): register again");
  if (s->pulling) co_return poll_error(409, "another pull is already waiting on this session");
  s->pulling = true;
  struct Reset {
    PollSession& s;
    ~Reset() { s.pulling = false; }
  } reset{*s};
  wait = std::min<std::chrono::milliseconds>(wait, kMaxPollWait);
  // Wait for readability with a deadline, then take everything there is (up to the limit).
  // (The executor is fetched first: GCC 12 mishandles temporaries such as this lambda in a
  // full-expression that also suspends, destroying them twice.)
  const auto ex = co_await net::this_coro::executor;
  Deadline deadline(ex, wait, [s] {
    error_code ignored;
    s->end.cancel(ignored);
  });
  auto [wec] = co_await s->end.async_wait(UnixSocket::wait_read, use_nothrow);
  deadline.done();
  if (deadline.expired()) co_return PollReply{204, "application/octet-stream", {}};
  if (wec) co_return poll_error(410, "the session has ended");
  // Size the answer by what is queued (a 1 MiB buffer per pull would be mostly zero-filling).
  error_code aec;
  const std::size_t queued = s->end.available(aec);
  std::string out(std::clamp<std::size_t>(aec ? kMaxPollBody : queued, 1, kMaxPollBody), '\0');
  error_code rec;
  const auto n = s->end.read_some(net::buffer(out), rec);
  if (rec == net::error::would_block) co_return PollReply{204, "application/octet-stream", {}};
  if (rec) {
    ctx.poll_sessions.erase(std::string(session_id));
    co_return poll_error(410, "the session has ended");
  }
  out.resize(n);
  s->last_seen = std::chrono::steady_clock::now();
  co_return PollReply{200, "application/octet-stream", std::move(out)};
}

awaitable<PollReply> poll_respond(Context& ctx, std::string_view session_id, std::string body) {
  auto s = find(ctx, session_id);
  if (!s) co_return poll_error(404, "no such session (expired?): register again");
  if (s->pushing) co_return poll_error(409, "another respond is in progress on this session");
  s->pushing = true;
  struct Reset {
    PollSession& s;
    ~Reset() { s.pushing = false; }
  } reset{*s};
  // The session reads all the time, so this completes at once; the deadline is for the day it
  // does not (every wait has one).
  // (The executor is fetched first: GCC 12 mishandles temporaries such as this lambda in a
  // full-expression that also suspends, destroying them twice.)
  const auto ex = co_await net::this_coro::executor;
  Deadline deadline(ex, ctx.cfg.idle_timeout, [s] {
    error_code ignored;
    s->end.cancel(ignored);
  });
  auto [ec, n] = co_await net::async_write(s->end, net::buffer(body), use_nothrow);
  deadline.done();
  if (deadline.expired()) co_return poll_error(503, "the session did not take the bytes in time");
  if (ec) {
    ctx.poll_sessions.erase(std::string(session_id));
    co_return poll_error(410, "the session has ended");
  }
  s->last_seen = std::chrono::steady_clock::now();
  co_return PollReply{204, "application/json", {}};
}

PollReply poll_heartbeat(Context& ctx, std::string_view session_id) {
  if (!find(ctx, session_id)) return poll_error(404, "no such session (expired?): register again");
  return {204, "application/json", {}};
}

awaitable<PollReply> poll_dispatch(Context& ctx, bool post, std::string_view target,
                                   std::string body, const std::string& client_addr) {
  const auto url = boost::urls::parse_origin_form(target);
  if (!url) co_return poll_error(400, "malformed request target");
  const std::string path = url->path();
  auto param = [&](std::string_view key) -> std::string {
    const auto params = url->params();
    const auto it = params.find(key);
    return it == params.end() ? std::string() : std::string((*it).value);
  };
  if (path == "/api/agent/register" && post) co_return poll_register(ctx, body, client_addr);
  if (path == "/api/agent/pull" && !post) {
    std::uint64_t ms = 25'000;
    if (auto w = param("wait"); !w.empty()) {
      ms = 0;
      for (char c : w) {
        ms = c >= '0' && c <= '9' ? std::min<std::uint64_t>(ms * 10 + (c - '0'), 1u << 30) : ms;
      }
    }
    co_return co_await poll_pull(ctx, param("session_id"), std::chrono::milliseconds(ms));
  }
  if (path == "/api/agent/respond" && post) {
    co_return co_await poll_respond(ctx, param("session_id"), std::move(body));
  }
  if (path == "/api/agent/heartbeat" && post) co_return poll_heartbeat(ctx, param("session_id"));
  co_return poll_error(404, "unknown long-poll endpoint or method");
}

PollReply poll_error(unsigned status, std::string_view message) {
  return {status, "application/json", json::serialize(json::object{{"error", message}})};
}

std::string poll_reply_head(const PollReply& reply, bool keep_alive) {
  namespace bhttp = boost::beast::http;
  return "HTTP/1.1 " + std::to_string(reply.status) + " " +
         std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(reply.status))) +
         "\r\nContent-Type: " + reply.content_type +
         "\r\nCache-Control: no-store\r\nContent-Length: " +
         std::to_string(reply.status == 204 ? 0 : reply.body.size()) + "\r\n" +
         (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
}

void expire_poll_sessions(Context& ctx, std::chrono::milliseconds ttl) {
  const auto cutoff = std::chrono::steady_clock::now() - ttl;
  for (auto it = ctx.poll_sessions.begin(); it != ctx.poll_sessions.end();) {
    if (it->second->last_seen < cutoff && !it->second->pulling) {
      logger()->info("long-poll session {} expired", it->first);
      error_code ignored;
      it->second->end.close(ignored);  // the protocol session sees EOF and ends
      it = ctx.poll_sessions.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace proxer::gateway
