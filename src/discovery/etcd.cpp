#include "discovery/etcd.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>

#include "core/backoff.h"
#include "discovery/common.h"

namespace proxer::discovery {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(in[i])} << 16) |
                            (std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8) |
                            std::uint32_t{static_cast<unsigned char>(in[i + 2])};
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = std::uint32_t{static_cast<unsigned char>(in[i])} << 16;
    if (i + 1 < in.size()) v |= std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> b64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) return std::nullopt;  // one dangling character
  return out;
}

// The smallest key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(std::string p) {
  while (!p.empty()) {
    if (static_cast<unsigned char>(p.back()) < 0xff) {
      p.back() = static_cast<char>(static_cast<unsigned char>(p.back()) + 1);
      return p;
    }
    p.pop_back();
  }
  return std::string(1, '\0');
}

// A key as it may appear in a log line: printable ASCII, at most 200 characters.
std::string printable(std::string_view key) {
  std::string out;
  for (char c : key.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (key.size() > 200) out += "...";
  return out;
}

struct Endpoint {
  std::string host, port;
};

std::optional<Endpoint> parse_endpoint(std::string_view url, std::string* error) {
  constexpr std::string_view kHttp = "http://";
  if (url.substr(0, 8) == "https://") {
    *error = "https endpoints are not supported yet";
    return std::nullopt;
  }
  if (url.substr(0, kHttp.size()) != kHttp) {
    *error = "endpoint must start with http://";
    return std::nullopt;
  }
  url.remove_prefix(kHttp.size());
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  auto t = parse_target(url, error);
  if (!t || url.find('/') != std::string_view::npos || url.find('{') != std::string_view::npos) {
    if (t)
      *error = "endpoint must be http://host:port";
    else
      *error = "endpoint must be http://host:port (" + *error + ")";
    return std::nullopt;
  }
  return Endpoint{t->host, std::to_string(t->port)};
}

std::optional<std::int64_t> to_int(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_string()) {  // proto3 JSON writes 64-bit integers as strings
    const auto& s = v->as_string();
    std::int64_t out = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size()) return out;
  }
  return std::nullopt;
}

std::string str(const json::value* v) {
  if (!v || !v->is_string()) return "";
  return std::string(v->as_string().data(), v->as_string().size());
}

// The message of an etcd/grpc-gateway error body ({"error": ..., "message": ...}), bounded.
std::string error_text(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(json::string_view(body.data(), body.size()), ec);
  std::string msg;
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    msg = str(o.if_contains("message"));
    if (msg.empty()) {
      if (const auto* e = o.if_contains("error"); e && e->is_object())
        msg = str(e->as_object().if_contains("message"));
      else
        msg = str(e);
    }
  }
  if (msg.empty()) msg = std::string(body.substr(0, 200));
  return printable(msg);
}

}  // namespace

std::string validate(const EtcdOptions& o) {
  std::string err;
  if (!parse_endpoint(o.endpoint, &err)) return "etcd: " + err;
  if (o.prefix.empty()) return "etcd: prefix is empty";
  if (o.connect_timeout.count() <= 0 || o.request_timeout.count() <= 0 ||
      o.idle_timeout.count() <= 0)
    return "etcd: timeouts must be positive";
  if (o.reconnect_min.count() <= 0 || o.reconnect_max < o.reconnect_min)
    return "etcd: reconnect_min must be positive and at most reconnect_max";
  if (o.max_response_bytes < 1024) return "etcd: max_response_bytes below 1024";
  return "";
}

class EtcdProvider::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(net::any_io_executor ex, EtcdOptions o)
      : ex_(ex),
        opts_(std::move(o)),
        health_("etcd " + opts_.endpoint + " " + printable(opts_.prefix)),
        resolver_(ex),
        retry_timer_(ex) {
    std::string err;
    endpoint_ = *parse_endpoint(opts_.endpoint, &err);
    key_b64_ = b64_encode(opts_.prefix);
    end_b64_ = b64_encode(prefix_end(opts_.prefix));
  }

  void start(OnUpdate cb) {
    if (started_ || stopped_) return;
    started_ = true;
    publisher_.set(std::move(cb));
    net::co_spawn(ex_, run(shared_from_this()), DetachedTask{"etcd discovery"});
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    publisher_.clear();
    resolver_.cancel();
    retry_timer_.cancel();
    if (stream_) stream_->close();
  }

 private:
  // How one round (range + watch) ended.
  struct Outcome {
    std::string error;
    bool compacted = false;
  };

  awaitable<void> run(std::shared_ptr<Impl> self) {
    Backoff backoff(opts_.reconnect_min, opts_.reconnect_max);
    bool last_compacted = false;
    while (!stopped_) {
      Outcome out = co_await round(backoff);
      if (stopped_) break;
      if (out.compacted && !last_compacted) {
        health_.log().info("{}: {}; reading the range again", health_.what(), out.error);
        last_compacted = true;
        continue;
      }
      last_compacted = out.compacted;
      health_.fail(out.error);
      retry_timer_.expires_after(backoff.next());
      co_await retry_timer_.async_wait(use_nothrow);
    }
    (void)self;
  }

  awaitable<Outcome> round(Backoff& backoff) {
    std::int64_t revision = 0;
    if (auto err = co_await read_range(revision); !err.empty()) co_return Outcome{err};
    if (stopped_) co_return Outcome{"stopped"};
    co_return co_await watch(revision, backoff);
  }

  awaitable<std::string> connect() {
    stream_.reset();
    resolver_.cancel();
    auto [rec, results] =
        co_await resolver_.async_resolve(endpoint_.host, endpoint_.port, use_nothrow);
    if (stopped_) co_return "stopped";
    if (rec) co_return "cannot resolve " + endpoint_.host + ": " + rec.message();
    stream_.emplace(ex_);
    stream_->expires_after(opts_.connect_timeout);
    auto [cec, ep] = co_await stream_->async_connect(results, use_nothrow);
    if (stopped_) co_return "stopped";
    if (cec) {
      if (cec == beast::error::timeout)
        co_return "cannot connect to " + opts_.endpoint + ": timed out";
      co_return "cannot connect to " + opts_.endpoint + ": " + cec.message();
    }
    (void)ep;
    // Keep-alive probes notice a vanished peer long before a watch's idle deadline would.
    const int fd = stream_->socket().native_handle();
    const int on = 1, idle = 30, interval = 10, count = 3;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    co_return "";
  }

  awaitable<std::string> send(const std::string& target, std::string body) {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, endpoint_.host.find(':') != std::string::npos
                                   ? "[" + endpoint_.host + "]:" + endpoint_.port
                                   : endpoint_.host + ":" + endpoint_.port);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "proxer-discovery");
    req.body() = std::move(body);
    req.prepare_payload();
    stream_->expires_after(opts_.request_timeout);
    auto [ec, n] = co_await http::async_write(*stream_, req, use_nothrow);
    (void)n;
    if (stopped_) co_return "stopped";
    if (ec) co_return "cannot send " + target + ": " + describe(ec);
    co_return "";
  }

  std::string describe(error_code ec) const {
    if (ec == beast::error::timeout) return "timed out";
    return ec.message();
  }

  awaitable<std::string> read_range(std::int64_t& revision) {
    if (auto err = co_await connect(); !err.empty()) co_return err;
    json::object body;
    body["key"] = key_b64_;
    body["range_end"] = end_b64_;
    if (auto err = co_await send("/v3/kv/range", json::serialize(body)); !err.empty())
      co_return err;
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.header_limit(kMaxHeaderBytes);
    p.body_limit(opts_.max_response_bytes);
    stream_->expires_after(opts_.request_timeout);
    auto [ec, n] = co_await http::async_read(*stream_, buf, p, use_nothrow);
    (void)n;
    if (stopped_) co_return "stopped";
    stream_.reset();
    if (ec == http::error::body_limit)
      co_return "range response larger than " + std::to_string(opts_.max_response_bytes) + " bytes";
    if (ec) co_return "range: " + describe(ec);
    const auto& res = p.get();
    if (res.result() != http::status::ok)
      co_return "range: HTTP " + std::to_string(res.result_int()) + ": " + error_text(res.body());
    boost::system::error_code jec;
    auto v = json::parse(res.body(), jec);
    if (jec || !v.is_object()) co_return "range: the response is not a JSON object";
    const auto& o = v.as_object();
    const auto* header = o.if_contains("header");
    const auto rev = header && header->is_object()
                         ? to_int(header->as_object().if_contains("revision"))
                         : std::nullopt;
    if (!rev) co_return "range: the response has no header.revision";
    revision = *rev;
    std::map<std::string, Target> fresh;
    std::map<std::string, std::string> bad;
    if (const auto* kvs = o.if_contains("kvs"); kvs && kvs->is_array()) {
      for (const auto& kv : kvs->as_array()) {
        if (!kv.is_object()) continue;
        auto key = b64_decode(str(kv.as_object().if_contains("key")));
        auto value = b64_decode(str(kv.as_object().if_contains("value")));
        if (!key || !value) continue;
        apply_put(fresh, bad, *key, *value);
      }
    }
    targets_ = std::move(fresh);
    bad_ = std::move(bad);
    health_.ok();
    if (publisher_.publish(current()))
      health_.log().info("{}: {} endpoint(s) at revision {}", health_.what(), targets_.size(),
                         revision);
    co_return "";
  }

  // Applies a PUT of `value` at `key`: the target, or no target and one warning if it is bad.
  void apply_put(std::map<std::string, Target>& targets, std::map<std::string, std::string>& bad,
                 const std::string& key, const std::string& value) {
    std::string err;
    if (auto t = parse_target(value, &err)) {
      targets[key] = std::move(*t);
      bad.erase(key);
      bad_.erase(key);
      return;
    }
    targets.erase(key);
    const auto prev = bad_.find(key);
    if (prev == bad_.end() || prev->second != value)
      health_.log().warn("{}: key '{}' skipped: {}", health_.what(), printable(key), err);
    bad[key] = value;
  }

  std::vector<Target> current() const {
    std::vector<Target> out;
    out.reserve(targets_.size());
    for (const auto& [k, t] : targets_) out.push_back(t);
    return out;
  }

  awaitable<Outcome> watch(std::int64_t revision, Backoff& backoff) {
    if (auto err = co_await connect(); !err.empty()) co_return Outcome{err};
    json::object create;
    create["key"] = key_b64_;
    create["range_end"] = end_b64_;
    create["start_revision"] = std::to_string(revision + 1);
    create["progress_notify"] = true;
    json::object body;
    body["create_request"] = std::move(create);
    if (auto err = co_await send("/v3/watch", json::serialize(body)); !err.empty())
      co_return Outcome{err};

    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> p;
    p.header_limit(kMaxHeaderBytes);
    p.body_limit(boost::none);  // a stream; each message is limited below
    stream_->expires_after(opts_.request_timeout);
    {
      auto [ec, n] = co_await http::async_read_header(*stream_, buf, p, use_nothrow);
      (void)n;
      if (stopped_) co_return Outcome{"stopped"};
      if (ec) co_return Outcome{"watch: " + describe(ec)};
    }
    const auto status = p.get().result_int();
    std::string chunk(kReadChunk, '\0');
    json::stream_parser sp;
    std::size_t message_bytes = 0;
    std::string error_body;
    bool created = false;
    while (!p.is_done()) {
      p.get().body().data = chunk.data();
      p.get().body().size = chunk.size();
      stream_->expires_after(created ? opts_.idle_timeout : opts_.request_timeout);
      auto [ec, n] = co_await http::async_read_some(*stream_, buf, p, use_nothrow);
      (void)n;
      if (stopped_) co_return Outcome{"stopped"};
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (ec == beast::error::timeout)
          co_return Outcome{created ? "watch idle for " +
                                          std::to_string(opts_.idle_timeout.count()) + " ms"
                                    : "watch not created in time"};
        co_return Outcome{"watch broke: " + describe(ec)};
      }
      const std::size_t got = chunk.size() - p.get().body().size;
      if (status != 200) {
        error_body.append(chunk.data(), std::min(got, std::size_t{4096} - error_body.size()));
        if (error_body.size() >= 4096) break;
        continue;
      }
      std::size_t off = 0;
      while (off < got) {
        boost::system::error_code jec;
        const std::size_t used = sp.write_some(chunk.data() + off, got - off, jec);
        if (jec) co_return Outcome{"watch: bad JSON in the stream"};
        off += used;
        message_bytes += used;
        if (sp.done()) {
          const json::value msg = sp.release();
          sp.reset();
          message_bytes = 0;
          Outcome out;
          if (handle(msg, created, out)) co_return out;
          if (stopped_) co_return Outcome{"stopped"};  // by the callback
          if (created) backoff.reset();
        } else if (message_bytes > opts_.max_response_bytes) {
          co_return Outcome{"watch message larger than " +
                            std::to_string(opts_.max_response_bytes) + " bytes"};
        } else if (used == 0) {
          break;
        }
      }
    }
    if (status != 200)
      co_return Outcome{"watch: HTTP " + std::to_string(status) + ": " + error_text(error_body)};
    co_return Outcome{"the watch stream ended"};
  }

  // Handles one watch message. Returns true (with `out`) when the watch is over.
  bool handle(const json::value& msg, bool& created, Outcome& out) {
    if (!msg.is_object()) {
      out.error = "watch: a message is not a JSON object";
      return true;
    }
    const auto& o = msg.as_object();
    if (const auto* e = o.if_contains("error")) {
      out.error = "watch: etcd error: " + error_text(json::serialize(*e));
      return true;
    }
    const auto* rv = o.if_contains("result");
    if (!rv || !rv->is_object()) {
      out.error = "watch: a message has no result";
      return true;
    }
    const auto& r = rv->as_object();
    if (const auto* c = r.if_contains("created"); c && c->is_bool() && c->as_bool()) {
      if (!created) health_.log().debug("{}: watch created", health_.what());
      created = true;
      health_.ok();
    }
    if (const auto* c = r.if_contains("canceled"); c && c->is_bool() && c->as_bool()) {
      const auto compact = to_int(r.if_contains("compact_revision"));
      if (compact && *compact > 0) {
        out.compacted = true;
        out.error = "the watch's revision was compacted (at " + std::to_string(*compact) + ")";
      } else {
        const auto reason = str(r.if_contains("cancel_reason"));
        out.error = "etcd cancelled the watch" + (reason.empty() ? "" : ": " + printable(reason));
      }
      return true;
    }
    const auto* events = r.if_contains("events");
    if (!events || !events->is_array() || events->as_array().empty()) return false;
    for (const auto& ev : events->as_array()) {
      if (!ev.is_object()) continue;
      const auto& e = ev.as_object();
      const auto* kv = e.if_contains("kv");
      if (!kv || !kv->is_object()) continue;
      auto key = b64_decode(str(kv->as_object().if_contains("key")));
      if (!key) continue;
      if (str(e.if_contains("type")) == "DELETE") {
        targets_.erase(*key);
        bad_.erase(*key);
        continue;
      }
      auto value = b64_decode(str(kv->as_object().if_contains("value")));
      if (!value) value = std::string();
      apply_put(targets_, bad_, *key, *value);
    }
    if (publisher_.publish(current()))
      health_.log().info("{}: {} endpoint(s)", health_.what(), targets_.size());
    return false;
  }

  net::any_io_executor ex_;
  EtcdOptions opts_;
  Endpoint endpoint_;
  std::string key_b64_, end_b64_;
  Health health_;
  Publisher publisher_;
  tcp::resolver resolver_;
  net::steady_timer retry_timer_;
  std::optional<beast::tcp_stream> stream_;
  std::map<std::string, Target> targets_;   // key -> endpoint
  std::map<std::string, std::string> bad_;  // key -> the bad value already warned about
  bool started_ = false;
  bool stopped_ = false;
};

EtcdProvider::EtcdProvider(net::any_io_executor ex, EtcdOptions opts) {
  if (auto err = validate(opts); !err.empty()) throw std::invalid_argument(err);
  impl_ = std::make_shared<Impl>(ex, std::move(opts));
}

EtcdProvider::~EtcdProvider() {
  stop();
}

void EtcdProvider::start(OnUpdate on_update) {
  impl_->start(std::move(on_update));
}

void EtcdProvider::stop() {
  impl_->stop();
}

}  // namespace proxer::discovery
