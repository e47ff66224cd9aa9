// proxer-embed-example: an HTTP server of its own (Boost.Beast) that embeds the proxer engine as
// middleware. Every request a configured proxer route claims goes to the engine; the server
// answers /hello and /healthz itself, and 404 for the rest.
//
//   proxer-embed-example --config engine.toml [--listen 127.0.0.1:8080] [--log-level info]
//
// SIGHUP reloads the configuration file into the engine (routes and clusters); SIGINT/SIGTERM
// stop the server and the engine gracefully. Only <proxer/engine.h> is used from proxer.
#include <proxer/engine.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kReadTimeout = std::chrono::seconds(30);
constexpr std::uint64_t kMaxRequestBody = 16 * 1024 * 1024;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Engine::handle() as an operation of this server's own loop: the engine calls back on its
// thread, and the completion is posted back to the caller's executor.
template <typename Token>
auto async_handle(proxer::Engine& engine, proxer::Request request, Token&& token) {
  return net::async_initiate<Token, void(proxer::Response)>(
      [&engine](auto handler, proxer::Request req) {
        // The loop counts the operation as outstanding work until the completion ran.
        auto ex = net::prefer(net::get_associated_executor(handler),
                              net::execution::outstanding_work.tracked);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        engine.handle(std::move(req), [shared, ex](proxer::Response resp) {
          net::post(ex, [shared, r = std::move(resp)]() mutable { (*shared)(std::move(r)); });
        });
      },
      token, std::move(request));
}

proxer::Request to_engine(const http::request<http::string_body>& req, const std::string& peer) {
  proxer::Request out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  for (const auto& f : req) {
    out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  }
  out.body = req.body();
  out.client_address = peer;
  return out;
}

http::response<http::string_body> text(http::status status, std::string body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

// Requests between their head and the end of their response (the loop's thread only): a stop
// waits for them.
int g_in_flight = 0;  // NOLINT: the example's one piece of process state

net::awaitable<void> serve(tcp::socket sock, proxer::Engine& engine) {
  boost::system::error_code ec;
  const auto remote = sock.remote_endpoint(ec);
  const std::string peer =
      ec ? std::string() : remote.address().to_string() + ":" + std::to_string(remote.port());
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBody);
    stream.expires_after(kReadTimeout);
    auto [rec, rn] = co_await http::async_read(stream, buf, parser, use_nothrow);
    if (rec) break;
    auto req = parser.release();
    ++g_in_flight;
    const std::string path(req.target().substr(0, req.target().find('?')));
    const bool head = req.method() == http::verb::head;

    http::response<http::string_body> res;
    auto forwarded = to_engine(req, peer);
    if (engine.matches(forwarded)) {
      // The middleware: a proxer route claims the request.
      auto op = async_handle(engine, std::move(forwarded), net::use_awaitable);
      auto answer = co_await std::move(op);
      res.result(answer.status);
      for (auto& h : answer.headers) res.insert(h.name, h.value);
      res.body() = std::move(answer.body);
    } else if (path == "/hello") {
      res = text(http::status::ok, "hello from the host application\n");
    } else if (path == "/healthz") {
      res = text(http::status::ok, "ok\n");
    } else {
      res = text(http::status::not_found, "no such path on the host application\n");
    }
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    if (!head) res.prepare_payload();  // HEAD: the engine's Content-Length stays
    stream.expires_after(kReadTimeout);
    auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
    --g_in_flight;
    if (wec || !res.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, proxer::Engine& engine) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(use_nothrow);
    if (!acceptor.is_open()) co_return;
    if (ec) continue;
    net::co_spawn(acceptor.get_executor(), serve(std::move(sock), engine), net::detached);
  }
}

// The last responses are written, then the loop ends (idle keep-alive connections with it).
net::awaitable<void> finish(net::io_context& ioc) {
  net::steady_timer t(ioc);
  for (int i = 0; i < 250 && g_in_flight > 0; ++i) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(use_nothrow);
  }
  ioc.stop();
}

int usage(const char* why) {
  std::fprintf(stderr,
               "proxer-embed-example: %s\nusage: proxer-embed-example --config FILE "
               "[--listen HOST:PORT] [--log-level LEVEL]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, listen = "127.0.0.1:8080", log_level;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
    if (a == "--config") {
      config_path = argv[++i];
    } else if (a == "--listen") {
      listen = argv[++i];
    } else if (a == "--log-level") {
      log_level = argv[++i];
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (config_path.empty()) return usage("--config is required");
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return usage("--listen must be HOST:PORT");
  if (!log_level.empty() && !proxer::set_log_level(log_level)) return usage("unknown --log-level");

  const auto toml = read_file(config_path);
  if (!toml) return usage(("cannot read " + config_path).c_str());
  std::unique_ptr<proxer::Engine> engine;
  try {
    proxer::EngineOptions options;
    options.source_name = config_path;
    engine = proxer::Engine::create(*toml, options);
    engine->start();
  } catch (const proxer::ConfigError& e) {
    std::fprintf(stderr, "proxer-embed-example: invalid configuration:\n%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxer-embed-example: %s\n", e.what());
    return 1;
  }

  net::io_context ioc(1);
  tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const auto addr = net::ip::make_address(host, ec);
  if (ec) return usage("--listen needs an IP address");
  const tcp::endpoint ep(addr, static_cast<unsigned short>(std::stoul(listen.substr(colon + 1))));
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "proxer-embed-example: cannot listen on %s: %s\n", listen.c_str(),
                 ec.message().c_str());
    return 1;
  }
  std::printf(
      "proxer-embed-example: http port %u, engine agent port %u, admin port %u (proxer %s)\n",
      acceptor.local_endpoint().port(), engine->agent_port(), engine->admin_port(),
      proxer::version());
  std::fflush(stdout);
  net::co_spawn(ioc, accept_loop(acceptor, *engine), net::detached);

  // SIGHUP: reload the file into the engine. SIGINT/SIGTERM: stop accepting, stop the engine
  // (it drains its requests in flight) on a thread of its own, then end the loop.
  net::signal_set hup(ioc, SIGHUP), stop_signals(ioc, SIGINT, SIGTERM);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](boost::system::error_code e, int) {
      if (e) return;
      const auto next = read_file(config_path);
      const auto err = next ? engine->reload(*next) : "cannot read " + config_path;
      if (err.empty()) {
        std::fprintf(stderr, "proxer-embed-example: configuration reloaded\n");
      } else {
        std::fprintf(stderr, "proxer-embed-example: reload rejected:\n%s\n", err.c_str());
      }
      wait_hup();
    });
  };
  wait_hup();
  std::thread stopper;
  stop_signals.async_wait([&](boost::system::error_code e, int) {
    if (e) return;
    std::fprintf(stderr, "proxer-embed-example: stopping\n");
    acceptor.close(ec);
    hup.cancel();
    stopper = std::thread([&] {
      engine->stop();  // requests in the engine finish (within its shutdown_grace)
      net::co_spawn(ioc, finish(ioc), net::detached);
    });
  });
  ioc.run();
  if (stopper.joinable()) stopper.join();
  std::fprintf(stderr, "proxer-embed-example: stopped\n");
  return 0;
}
