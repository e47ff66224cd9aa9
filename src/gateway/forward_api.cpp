#include "gateway/forward_api.h"

#include <openssl/evp.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cmath>

#include "core/log.h"

namespace proxer::gateway {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxResponseHead = 64 * 1024;
constexpr auto kMaxTimeout = std::chrono::seconds(300);
constexpr std::size_t kReadChunk = 64 * 1024;

bool token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), token_char);
}
bool value_ok(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}
std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Headers the caller may not set: the gateway frames the request itself (Content-Length,
// Connection: close), and hop-by-hop headers mean nothing on a one-shot exchange.
bool reserved_header(std::string_view lname) {
  for (std::string_view h : {"content-length", "transfer-encoding", "connection", "keep-alive",
                             "te", "trailer", "upgrade", "proxy-connection"}) {
    if (lname == h) return true;
  }
  return false;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string error_json(std::string_view message) {
  return json::serialize(json::object{{"error", message}});
}

}  // namespace

std::optional<ForwardRequest> parse_forward_request(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<ForwardRequest> {
    *error = std::move(why);
    return std::nullopt;
  };
  json::parse_options opts;
  opts.max_depth = 8;
  boost::system::error_code ec;
  auto v = json::parse(text, ec, {}, opts);
  if (ec) return fail("request body is not valid JSON: " + ec.message());
  if (!v.is_object()) return fail("request body must be a JSON object");
  const auto& o = v.as_object();
  ForwardRequest r;
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    const auto& value = kv.value();  // a reference, not a binding: lambdas capture it (clang 14)
    auto str = [&](std::string& out) -> bool {
      if (!value.is_string()) return false;
      out = std::string(value.as_string());
      return true;
    };
    if (k == "tunnel") {
      if (!str(r.tunnel)) return fail("'tunnel' must be a string");
    } else if (k == "method") {
      if (!str(r.method) || !is_token(r.method)) return fail("'method' must be an HTTP token");
    } else if (k == "path") {
      if (!str(r.path) || r.path.empty() || r.path.front() != '/' ||
          !std::all_of(r.path.begin(), r.path.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u > 0x20 && u != 0x7f;
          })) {
        return fail("'path' must start with '/' and contain no spaces or control characters");
      }
    } else if (k == "headers") {
      if (!value.is_object()) return fail("'headers' must be an object of name: value");
      for (const auto& [hn, hv] : value.as_object()) {
        const std::string name(hn);
        if (!is_token(name)) return fail("invalid header name '" + name + "'");
        if (reserved_header(lower(name))) {
          return fail("header '" + name + "' is set by the gateway and cannot be given");
        }
        auto add = [&](const json::value& one) -> bool {
          if (!one.is_string() || !value_ok(one.as_string())) return false;
          r.headers.emplace_back(name, std::string(one.as_string()));
          return true;
        };
        if (hv.is_array()) {
          for (const auto& one : hv.as_array()) {
            if (!add(one))
              return fail("header '" + name +
                          "': values must be strings without "
                          "control characters");
          }
        } else if (!add(hv)) {
          return fail("header '" + name +
                      "': the value must be a string (or an array of "
                      "strings) without control characters");
        }
      }
    } else if (k == "body") {
      if (!str(r.body)) return fail("'body' must be a string");
    } else if (k == "body_base64") {
      std::string b64;
      if (!str(b64)) return fail("'body_base64' must be a string");
      auto raw = base64_decode(b64);
      if (!raw) return fail("'body_base64' is not valid base64");
      r.body = std::move(*raw);
    } else if (k == "timeout_ms") {
      if (!value.is_int64() && !value.is_uint64()) return fail("'timeout_ms' must be an integer");
      const auto ms =
          value.is_int64()
              ? value.as_int64()
              : static_cast<std::int64_t>(std::min<std::uint64_t>(value.as_uint64(), 1u << 31));
      if (ms <= 0 || ms > std::chrono::milliseconds(kMaxTimeout).count()) {
        return fail("'timeout_ms' must be between 1 and 300000");
      }
      r.timeout = std::chrono::milliseconds(ms);
    } else {
      return fail("unknown field '" + std::string(k) +
                  "' (known: tunnel, method, path, headers, body, body_base64, timeout_ms)");
    }
  }
  if (o.contains("body") && o.contains("body_base64")) {
    return fail("give 'body' or 'body_base64', not both");
  }
  if (r.tunnel.empty()) return fail("'tunnel' is required");
  return r;
}

std::string forward_request_head(const ForwardRequest& r, std::string_view default_host) {
  std::string out = r.method + " " + r.path + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [n, v] : r.headers) {
    if (lower(n) == "host") has_host = true;
    out += n + ": " + v + "\r\n";
  }
  if (!has_host) out += "Host: " + std::string(default_host) + "\r\n";
  // Every request states its length, so the local service never waits for a body that is not
  // coming (and GET with an empty body says 0, which every server accepts).
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n";
  return out;
}

awaitable<ForwardReply> forward_json(Context& ctx, std::string_view request_json) {
  std::string err;
  auto req = parse_forward_request(request_json, &err);
  if (!req) co_return ForwardReply{400, error_json(err)};
  auto first = ctx.registry.find(req->tunnel);
  if (!first) co_return ForwardReply{404, error_json("tunnel '" + req->tunnel + "' not found")};
  if (first->type == proto::TunnelType::Tcp) {
    co_return ForwardReply{400, error_json("tunnel '" + req->tunnel + "' is a TCP tunnel")};
  }
  // A member of the tunnel's pool, as for public requests.
  auto t = ctx.registry.pick(req->tunnel);
  if (!t) {
    co_return ForwardReply{502, error_json("tunnel '" + req->tunnel +
                                           "' has no connected agent whose local service is "
                                           "healthy")};
  }
  MemberLoad load(t);
  auto stream = t->session->open_stream({t->name, "admin", ""});
  if (!stream) {
    co_return ForwardReply{
        502, error_json("the agent of tunnel '" + req->tunnel + "' cannot take more streams")};
  }
  ++t->stats.request_count;
  const auto started = std::chrono::steady_clock::now();
  const auto timeout = req->timeout.count() > 0 ? req->timeout : ctx.cfg.forward_timeout;

  // Deadline: the timer resets the stream, which wakes any read or write with an error.
  auto timed_out = std::make_shared<bool>(false);
  net::steady_timer deadline(co_await net::this_coro::executor);
  deadline.expires_after(timeout);
  deadline.async_wait([timed_out, stream](error_code ec) {
    if (ec) return;
    *timed_out = true;
    stream->reset(proto::ErrorCode::Cancelled);
  });

  auto finish = [&](unsigned status, std::string body, unsigned last_status) {
    deadline.cancel();
    if (!stream->is_reset()) stream->reset(proto::ErrorCode::Cancelled);
    t->stats.last_status = last_status;
    if (last_status >= 500) ++t->stats.error_count;
    return ForwardReply{status, std::move(body)};
  };
  auto failure = [&](const std::string& what) {
    if (*timed_out) {
      return finish(
          504, error_json("no complete response within " + std::to_string(timeout.count()) + " ms"),
          504);
    }
    return finish(502, error_json(what), 502);
  };

  const auto head = forward_request_head(*req, t->name + "." + ctx.cfg.domain);
  if (auto ec = co_await stream->write(net::buffer(head))) {
    co_return failure("the tunnel stream failed: " + ec.message());
  }
  if (!req->body.empty()) {
    if (auto ec = co_await stream->write(net::buffer(req->body))) {
      co_return failure("the tunnel stream failed: " + ec.message());
    }
  }
  t->stats.bytes_in += head.size() + req->body.size();

  // Read the response; 1xx interim answers are skipped.
  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  auto fresh_parser = [&]() {
    parser.emplace();
    parser->header_limit(kMaxResponseHead);
    parser->body_limit(kMaxForwardBody);
    if (req->method == "HEAD") parser->skip(true);
  };
  fresh_parser();
  boost::beast::flat_buffer buf;
  std::uint64_t received = 0;
  for (;;) {
    error_code pec;
    while (buf.size() > 0) {
      const auto used = parser->put(buf.data(), pec);
      buf.consume(used);
      if (pec == bhttp::error::need_more) {
        pec = {};
        break;
      }
      if (pec) break;
      if (parser->is_done()) {
        const auto code = parser->get().result_int();
        if (code >= 100 && code < 200 && code != 101) {
          fresh_parser();
          continue;
        }
        break;
      }
      if (used == 0) break;
    }
    if (pec) {
      co_return failure(pec == bhttp::error::body_limit
                            ? "response body larger than " + std::to_string(kMaxForwardBody) +
                                  " bytes"
                            : "malformed response from the local service: " + pec.message());
    }
    if (parser->is_done()) break;
    auto [ec, n] = co_await stream->read_some(buf.prepare(kReadChunk));
    if (ec == net::error::eof) {
      error_code eec;
      parser->put_eof(eec);
      if (eec || !parser->is_done()) {
        co_return failure(received == 0 ? "the local service of tunnel '" + t->name +
                                              "' closed the connection without a response"
                                        : "the response ended early: " + eec.message());
      }
      break;
    }
    if (ec) {
      if (stream->reset_code() == proto::ErrorCode::ConnectRefused) {
        co_return failure("the local service of tunnel '" + t->name + "' refused the connection");
      }
      if (stream->reset_code() == proto::ErrorCode::ConnectTimeout) {
        co_return failure("the local service of tunnel '" + t->name + "' did not answer in time");
      }
      co_return failure("the tunnel stream failed: " + ec.message());
    }
    buf.commit(n);
    received += n;
  }
  t->stats.bytes_out += received;

  const auto& res = parser->get();
  json::object headers;
  for (const auto& f : res) {
    const auto name = lower(f.name_string());
    const json::string value(f.value());
    if (auto* existing = headers.if_contains(name)) {
      if (!existing->is_array()) {
        json::array arr;
        arr.push_back(std::move(*existing));
        *existing = std::move(arr);
      }
      existing->as_array().push_back(value);
    } else {
      headers[name] = value;
    }
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  t->stats.latency_us_total += static_cast<std::uint64_t>(ms * 1000.0);
  json::object out{{"status", res.result_int()},
                   {"headers", std::move(headers)},
                   {"duration_ms", std::round(ms * 1000.0) / 1000.0}};
  const auto& body = res.body();
  if (valid_utf8(body)) {
    out["body"] = body;
  } else {
    out["body_base64"] = base64_encode(body);
  }
  co_return finish(200, json::serialize(out), res.result_int());
}

}  // namespace proxer::gateway
