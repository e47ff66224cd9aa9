#include "embed/exchange.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/local/stream_protocol.hpp>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "core/log.h"
#include "gateway/public_server.h"
#include "http/rules.h"
#include "transport/stream.h"

namespace proxer::embed {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("engine");  // NOLINT: immutable after first use
  return l;
}

// New internal connections: one end for the engine, the other served by the gateway's public
// request path.
class GatewayOpener final : public Opener {
 public:
  explicit GatewayOpener(gateway::Gateway& gw) : gw_(gw) {}

  std::variant<std::shared_ptr<InternalConn>, Response> open() override {
    auto& ctx = gw_.context();
    // Adopted connections count in connections(), idle ones of the pool included.
    if (gw_.public_server().connections() >= ctx.cfg.max_connections) {
      return error_response(503, "too_many_connections",
                            "the proxer engine is at limits.max_connections (" +
                                std::to_string(ctx.cfg.max_connections) + ")");
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      const int err = errno;
      return error_response(
          503, "internal_connection",
          std::string("cannot create the internal connection: ") + std::strerror(err));
    }
    auto conn = std::make_shared<InternalConn>(ctx.executor);
    tcp::socket inner(ctx.executor);
    error_code ec;
    // The gateway's side: ClientConn holds a tcp::socket and uses only byte-stream operations on
    // it (reads, writes, shutdown, close), which are the same calls on an AF_UNIX socket.
    inner.assign(tcp::v4(), fds[0], ec);
    if (ec) ::close(fds[0]);
    error_code ec2;
    conn->sock.assign(net::local::stream_protocol(), fds[1], ec2);
    if (ec2) ::close(fds[1]);
    if (ec || ec2) {
      return error_response(503, "internal_connection",
                            "cannot set up the internal connection: " + (ec ? ec : ec2).message());
    }
    conn->client = std::make_shared<gateway::AdoptedClient>();
    gw_.public_server().adopt(std::move(inner), conn->client);
    return conn;
  }

  bool may_retry() const override { return !gw_.context().draining; }

 private:
  gateway::Gateway& gw_;
};

awaitable<void> run_exchange(gateway::Gateway& gw, const ExchangeLimits& limits, ConnPool& pool,
                             Request req, Reply reply) {
  auto& ctx = gw.context();
  if (ctx.draining) {
    reply(error_response(503, "engine_stopped", "the proxer engine is stopping"));
    co_return;
  }
  auto out = std::make_shared<Outgoing>();
  if (auto bad = serialize_head(req, out->head)) {
    reply(error_response(400, "bad_request", "malformed request: " + *bad));
    co_return;
  }
  out->head_method = req.method == "HEAD";
  out->body = std::move(req.body);
  std::tie(out->client_ip, out->client_addr) = client_of(req.client_address);
  GatewayOpener opener(gw);
  const auto reuse_age = reuse_window(ctx.cfg.idle_timeout);
  std::shared_ptr<const Outgoing> sent = std::move(out);
  auto res = co_await exchange(pool, opener, std::move(sent), limits, reuse_age);
  reply(std::move(res));
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

bhttp::request_header<> match_head(const Request& r) {
  bhttp::request_header<> h;
  h.version(11);
  h.method_string(r.method);
  h.target(r.target);
  for (const auto& f : r.headers) h.insert(f.name, f.value);
  return h;
}

std::optional<std::string> serialize_head(const Request& r, std::string& out) {
  if (!http::is_token(r.method)) return "the method is not a token";
  if (r.target.empty() || (r.target.front() != '/' && r.target != "*")) {
    return "the target must start with '/'";
  }
  for (char c : r.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return "the target contains a space or a control character";
  }
  for (const auto& f : r.headers) {
    if (!http::is_token(f.name)) return "a header name is not a token";
    if (!http::is_field_value(f.value)) {
      return "the value of header '" + f.name + "' contains a control character (CR, LF, NUL...)";
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

std::chrono::milliseconds reuse_window(std::chrono::milliseconds idle_timeout) {
  return idle_timeout -
         std::min<std::chrono::milliseconds>(idle_timeout / 10, std::chrono::seconds(1));
}

void spawn_exchange(gateway::Gateway& gw, const ExchangeLimits& limits, ConnPool& pool,
                    Request request, std::function<void(Response)> done) {
  // Posted, so that the coroutine is created on the engine's thread; a handler destroyed unrun
  // (the loop stopped) answers through Reply's destructor.
  net::post(gw.context().executor, [&gw, &limits, &pool, req = std::move(request),
                                    reply = Reply(std::move(done))]() mutable {
    net::co_spawn(gw.context().executor,
                  run_exchange(gw, limits, pool, std::move(req), std::move(reply)),
                  DetachedTask{"embedded exchange"});
  });
}

}  // namespace proxer::embed
