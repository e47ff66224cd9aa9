#include "agent/poll_client.h"

#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "core/deadline.h"
#include "core/log.h"

namespace proxer::agent {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using UnixSocket = net::local::stream_protocol::socket;

namespace {

constexpr std::size_t kMaxBody = 1024 * 1024;
constexpr auto kPollWait = std::chrono::seconds(25);

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("poll");  // NOLINT: immutable after first use
  return l;
}

// One keep-alive HTTP/1.1 connection to the gateway (plain or TLS).
class HttpConn {
 public:
  HttpConn(net::any_io_executor ex, const PollTarget& t) : ex_(ex), t_(t) {}

  // One request/response; reconnects first when needed. `timeout` bounds the whole exchange.
  awaitable<std::pair<error_code, bhttp::response<bhttp::string_body>>> exchange(
      bhttp::request<bhttp::string_body> req, std::chrono::milliseconds timeout, std::string* why) {
    bhttp::response<bhttp::string_body> res;
    if (!io_) {
      if (auto ec = co_await connect(why)) co_return std::pair{ec, std::move(res)};
    }
    req.set(bhttp::field::host, host_header());
    req.set(bhttp::field::user_agent, "proxer-agent");
    req.keep_alive(true);
    req.prepare_payload();
    Deadline deadline(ex_, timeout, [lowest = lowest_socket()] {
      error_code ignored;
      lowest->cancel(ignored);
    });
    error_code ec;
    co_await std::visit(
        [&](auto& s) -> awaitable<void> {
          auto [wec, wn] = co_await bhttp::async_write(s, req, use_nothrow);
          if (wec) {
            ec = wec;
            co_return;
          }
          bhttp::response_parser<bhttp::string_body> p;
          p.body_limit(kMaxBody);
          auto [rec, rn] = co_await bhttp::async_read(s, buf_, p, use_nothrow);
          ec = rec;
          if (!rec) res = p.release();
        },
        *io_);
    deadline.done();
    if (deadline.expired()) ec = net::error::timed_out;
    if (ec) {
      *why = "long-poll request " + std::string(req.target()) + " failed: " + ec.message();
      close();
    } else if (!res.keep_alive()) {
      close();
    }
    co_return std::pair{ec, std::move(res)};
  }

  void close() {
    if (!io_) return;
    error_code ignored;
    lowest_socket()->close(ignored);
    io_.reset();
    buf_.clear();
  }

  std::string target(std::string_view endpoint, std::string_view query = {}) const {
    std::string out = t_.path_prefix + "/api/agent/" + std::string(endpoint);
    if (!query.empty()) out += "?" + std::string(query);
    return out;
  }

 private:
  std::string host_header() const {
    std::string h = t_.host.find(':') != std::string::npos ? "[" + t_.host + "]" : t_.host;
    if (t_.port != (t_.https ? "443" : "80")) h += ":" + t_.port;
    return h;
  }

  tcp::socket* lowest_socket() {
    return std::visit([](auto& s) -> tcp::socket* { return &boost::beast::get_lowest_layer(s); },
                      *io_);
  }

  awaitable<error_code> connect(std::string* why) {
    std::pair<error_code, tcp::socket> c{error_code{}, tcp::socket(ex_)};
    if (t_.proxy) {
      c = co_await transport::connect_via_proxy(ex_, *t_.proxy, t_.host, t_.port, t_.timeout, why);
    } else {
      c = co_await transport::connect_tcp(ex_, t_.host, t_.port, t_.timeout);
      if (c.first)
        *why = "cannot connect to the gateway at " + t_.host + ":" + t_.port + ": " +
               c.first.message();
    }
    if (c.first) co_return c.first;
    if (t_.https) {
      auto [hec, tls] = co_await transport::tls_client_handshake(std::move(c.second), *t_.tls,
                                                                 t_.server_name, t_.timeout);
      if (hec) {
        *why = "TLS handshake with the gateway at " + t_.host + ":" + t_.port +
               " failed: " + hec.message();
        co_return hec;
      }
      io_.emplace(std::in_place_type<transport::TlsStream>, std::move(tls));
    } else {
      io_.emplace(std::in_place_type<tcp::socket>, std::move(c.second));
    }
    co_return error_code{};
  }

  net::any_io_executor ex_;
  PollTarget t_;
  std::optional<std::variant<tcp::socket, transport::TlsStream>> io_;
  boost::beast::flat_buffer buf_;
};

// The HTTP side of one session: the pair's other end and the two connections.
struct PollPump : std::enable_shared_from_this<PollPump> {
  PollPump(net::any_io_executor ex, const PollTarget& t, UnixSocket end, std::string id)
      : end(std::move(end)),
        pull(ex, t),
        push(ex, t),
        session_id(std::move(id)),
        timeout(t.timeout) {}

  void stop() {
    if (stopped) return;
    stopped = true;
    error_code ignored;
    end.close(ignored);  // the protocol session sees EOF
    pull.close();
    push.close();
  }

  // Gateway -> session.
  awaitable<void> puller() {
    auto self = shared_from_this();
    while (!stopped) {
      bhttp::request<bhttp::string_body> req{
          bhttp::verb::get,
          pull.target("pull", "session_id=" + session_id + "&wait=" +
                                  std::to_string(std::chrono::milliseconds(kPollWait).count())),
          11};
      std::string why;
      auto [ec, res] = co_await pull.exchange(std::move(req), kPollWait + timeout, &why);
      if (stopped) co_return;
      if (ec || (res.result_int() != 200 && res.result_int() != 204)) {
        logger()->warn("long-poll session {}: pull ended: {}", session_id,
                       ec ? why : "status " + std::to_string(res.result_int()));
        stop();
        co_return;
      }
      if (res.result_int() == 204 || res.body().empty()) continue;
      auto [wec, wn] = co_await net::async_write(end, net::buffer(res.body()), use_nothrow);
      if (wec) {
        stop();
        co_return;
      }
    }
  }

  // Session -> gateway.
  awaitable<void> pusher() {
    auto self = shared_from_this();
    std::string data(kMaxBody, '\0');
    while (!stopped) {
      auto [ec, n] = co_await end.async_read_some(net::buffer(data), use_nothrow);
      if (ec || stopped) {
        stop();
        co_return;
      }
      bhttp::request<bhttp::string_body> req{
          bhttp::verb::post, push.target("respond", "session_id=" + session_id), 11};
      req.set(bhttp::field::content_type, "application/octet-stream");
      req.body().assign(data.data(), n);
      std::string why;
      auto [hec, res] = co_await push.exchange(std::move(req), timeout * 2, &why);
      if (hec || res.result_int() / 100 != 2) {
        if (!stopped) {
          logger()->warn("long-poll session {}: respond failed: {}", session_id,
                         hec ? why : "status " + std::to_string(res.result_int()));
        }
        stop();
        co_return;
      }
    }
  }

  UnixSocket end;
  HttpConn pull, push;
  std::string session_id;
  std::chrono::milliseconds timeout;
  bool stopped = false;
};

}  // namespace

awaitable<std::optional<transport::Stream>> open_poll_session(
    net::any_io_executor ex, PollTarget target, std::string agent_id, std::string token,
    std::vector<std::string> tunnels, std::string* error) {
  HttpConn reg(ex, target);
  json::array names;
  for (auto& t : tunnels) names.emplace_back(t);
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, reg.target("register"), 11};
  req.set(bhttp::field::content_type, "application/json");
  req.body() = json::serialize(
      json::object{{"agent_id", agent_id}, {"token", token}, {"tunnels", std::move(names)}});
  auto [ec, res] = co_await reg.exchange(std::move(req), target.timeout, error);
  reg.close();
  if (ec) co_return std::nullopt;
  if (res.result_int() != 200) {
    std::string msg = "status " + std::to_string(res.result_int());
    boost::system::error_code jec;
    auto v = json::parse(res.body(), jec);
    if (!jec && v.is_object() && v.as_object().contains("error") &&
        v.as_object().at("error").is_string()) {
      msg = std::string(v.as_object().at("error").as_string());
    }
    *error = "long-poll registration refused: " + msg;
    co_return std::nullopt;
  }
  boost::system::error_code jec;
  auto v = json::parse(res.body(), jec);
  const json::value* id = !jec && v.is_object() ? v.as_object().if_contains("session_id") : nullptr;
  if (!id || !id->is_string() || id->as_string().empty()) {
    *error = "long-poll registration: the answer carries no session_id";
    co_return std::nullopt;
  }
  UnixSocket session_end(ex), http_end(ex);
  net::local::connect_pair(session_end, http_end, jec);
  if (jec) {
    *error = "cannot open a socket pair: " + jec.message();
    co_return std::nullopt;
  }
  auto pump =
      std::make_shared<PollPump>(ex, target, std::move(http_end), std::string(id->as_string()));
  net::co_spawn(ex, pump->puller(), DetachedTask{"long-poll puller"});
  net::co_spawn(ex, pump->pusher(), DetachedTask{"long-poll pusher"});
  transport::Stream io(std::move(session_end));
  io.set_carrier("poll");
  co_return std::optional<transport::Stream>(std::move(io));
}

}  // namespace proxer::agent
