#include "app/demo_site.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "proxer/web_assets.h"

namespace proxer::app {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

DemoSite::DemoSite(net::any_io_executor ex) : ex_(ex), acceptor_(ex) {}

std::uint16_t DemoSite::listen() {
  error_code ec;
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(256, ec);
  if (ec) return 0;
  return acceptor_.local_endpoint(ec).port();
}

void DemoSite::start() {
  net::co_spawn(ex_, accept_loop(), DetachedTask{"demo site"});
}

void DemoSite::stop() {
  error_code ec;
  acceptor_.close(ec);
}

awaitable<void> DemoSite::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
    if (!acceptor_.is_open()) co_return;
    if (ec) continue;
    net::co_spawn(ex_, serve(std::move(sock)), DetachedTask{"demo connection"});
  }
}

awaitable<void> DemoSite::serve(tcp::socket sock) {
  beast::tcp_stream stream(std::move(sock));
  beast::flat_buffer buf;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> p;
    p.body_limit(1024 * 1024);
    stream.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await bhttp::async_read(stream, buf, p, use_nothrow);
    if (ec) break;
    auto& req = p.get();
    bhttp::response<bhttp::string_body> res;
    res.version(11);
    res.keep_alive(req.keep_alive());
    res.set(bhttp::field::server, "proxer-demo");
    std::string_view path = req.target();
    if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (path == "/api/echo") {
      boost::json::object headers;
      for (const auto& f : req) headers[std::string(f.name_string())] = std::string(f.value());
      res.result(bhttp::status::ok);
      res.set(bhttp::field::content_type, "application/json");
      res.body() =
          boost::json::serialize(boost::json::object{{"method", std::string(req.method_string())},
                                                     {"target", std::string(req.target())},
                                                     {"headers", std::move(headers)},
                                                     {"body_bytes", req.body().size()}});
    } else {
      const std::string asset_path =
          "/demo" + std::string(path == "/" ? std::string_view("/index.html") : path);
      if (const auto* a = web::find_asset(asset_path)) {
        res.result(bhttp::status::ok);
        res.set(bhttp::field::content_type, a->content_type);
        res.body() = std::string(a->body);
      } else {
        res.result(bhttp::status::not_found);
        res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        res.body() = "not found\n";
      }
    }
    res.prepare_payload();
    if (req.method() == bhttp::verb::head) res.body().clear();
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_nothrow);
    if (wec || !res.keep_alive()) break;
  }
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace proxer::app
