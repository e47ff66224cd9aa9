#include "discovery/provider.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <charconv>
#include <tuple>

#include "discovery/common.h"

namespace proxer::discovery {

Provider::~Provider() = default;

namespace {

namespace json = boost::json;

void set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A DNS name (letters, digits, '-', '_', '.'; at most 253 characters) or an IP literal, IPv6 with
// or without brackets. Returns the normalised host (lower case, no brackets) or nullopt.
std::optional<std::string> check_host(std::string_view host, std::string* error) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      set_error(error, "bad IPv6 address '" + std::string(host) + "'");
      return std::nullopt;
    }
    return a.to_string();
  }
  if (host.find(':') != std::string_view::npos) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      set_error(error, "bad host '" + std::string(host) + "'");
      return std::nullopt;
    }
    return a.to_string();
  }
  if (host.empty() || host.size() > 253) {
    set_error(error, host.empty() ? "empty host" : "host name too long");
    return std::nullopt;
  }
  std::string out;
  out.reserve(host.size());
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '-' && c != '_' && c != '.') {
      set_error(error, "bad character in host '" + std::string(host) + "'");
      return std::nullopt;
    }
    out.push_back(static_cast<char>(std::tolower(u)));
  }
  return out;
}

template <typename T>
bool parse_uint(std::string_view s, T& out) {
  if (s.empty() || s.size() > 10) return false;
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  if (v > std::numeric_limits<T>::max()) return false;
  out = static_cast<T>(v);
  return true;
}

bool check_port(std::uint64_t port, std::string* error) {
  if (port < 1 || port > 65535) {
    set_error(error, "port out of range 1-65535");
    return false;
  }
  return true;
}

bool check_weight(std::int64_t w, std::string* error) {
  if (w < kMinWeight || w > kMaxWeight) {
    set_error(error, "weight " + std::to_string(w) + " out of range 1-1000");
    return false;
  }
  return true;
}

// "host:port" or "[v6]:port".
std::optional<Target> parse_host_port(std::string_view in, std::string* error) {
  const auto colon = in.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == in.size()) {
    set_error(error, "expected host:port, got '" + std::string(in) + "'");
    return std::nullopt;
  }
  const auto host_part = in.substr(0, colon);
  if (host_part.find(':') != std::string_view::npos && host_part.front() != '[') {
    set_error(error, "IPv6 addresses need brackets: '[addr]:port'");
    return std::nullopt;
  }
  std::uint32_t port = 0;
  if (!parse_uint(in.substr(colon + 1), port)) {
    set_error(error, "bad port '" + std::string(in.substr(colon + 1)) + "'");
    return std::nullopt;
  }
  if (!check_port(port, error)) return std::nullopt;
  auto host = check_host(host_part, error);
  if (!host) return std::nullopt;
  return Target{std::move(*host), static_cast<std::uint16_t>(port), 1};
}

// A JSON integer field (an integer-valued double too, as some writers emit 8080.0).
std::optional<std::int64_t> json_int(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= 0xffffffffu)
    return static_cast<std::int64_t>(v.as_uint64());
  if (v.is_double()) {
    const double d = v.as_double();
    if (d >= 0 && d <= 4294967295.0 && static_cast<double>(static_cast<std::int64_t>(d)) == d)
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::optional<Target> parse_json_target(std::string_view text, std::string* error) {
  boost::system::error_code ec;
  const auto v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) {
    set_error(error, "not a JSON object");
    return std::nullopt;
  }
  const auto& o = v.as_object();
  for (const auto& kv : o) {
    const auto k = kv.key();
    if (k != "host" && k != "port" && k != "weight" && k != "url") {
      set_error(error, "unknown field '" + std::string(k) + "'");
      return std::nullopt;
    }
  }
  std::optional<Target> t;
  if (const auto* url = o.if_contains("url")) {
    if (o.contains("host") || o.contains("port")) {
      set_error(error, "give either url or host/port");
      return std::nullopt;
    }
    if (!url->is_string()) {
      set_error(error, "url is not a string");
      return std::nullopt;
    }
    std::string_view u(url->as_string().data(), url->as_string().size());
    constexpr std::string_view kHttp = "http://";
    if (u.substr(0, kHttp.size()) != kHttp) {
      set_error(error, "url must start with http:// (the cluster decides about TLS)");
      return std::nullopt;
    }
    u.remove_prefix(kHttp.size());
    if (!u.empty() && u.back() == '/') u.remove_suffix(1);
    if (u.find('/') != std::string_view::npos || u.find('@') != std::string_view::npos ||
        u.find('?') != std::string_view::npos) {
      set_error(error, "url must be http://host[:port] with no path");
      return std::nullopt;
    }
    const auto bracket = u.rfind(']');
    const auto colon = u.rfind(':');
    const bool has_port =
        colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
    t = parse_host_port(has_port ? std::string(u) : std::string(u) + ":80", error);
    if (!t) return std::nullopt;
  } else {
    const auto* host = o.if_contains("host");
    const auto* port = o.if_contains("port");
    if (!host || !host->is_string() || !port) {
      set_error(error, "needs a string \"host\" and a \"port\" (or a \"url\")");
      return std::nullopt;
    }
    const auto p = json_int(*port);
    if (!p) {
      set_error(error, "port is not an integer");
      return std::nullopt;
    }
    if (!check_port(static_cast<std::uint64_t>(*p), error)) return std::nullopt;
    auto h =
        check_host(std::string_view(host->as_string().data(), host->as_string().size()), error);
    if (!h) return std::nullopt;
    t = Target{std::move(*h), static_cast<std::uint16_t>(*p), 1};
  }
  if (const auto* w = o.if_contains("weight")) {
    const auto n = json_int(*w);
    if (!n) {
      set_error(error, "weight is not an integer");
      return std::nullopt;
    }
    if (!check_weight(*n, error)) return std::nullopt;
    t->weight = static_cast<std::uint32_t>(*n);
  }
  return t;
}

}  // namespace

std::string to_string(const Target& t) {
  if (t.host.find(':') != std::string::npos) return "[" + t.host + "]:" + std::to_string(t.port);
  return t.host + ":" + std::to_string(t.port);
}

std::vector<Target> normalize(std::vector<Target> set) {
  std::sort(set.begin(), set.end(), [](const Target& a, const Target& b) {
    return std::tie(a.host, a.port, b.weight) < std::tie(b.host, b.port, a.weight);
  });
  set.erase(std::unique(set.begin(), set.end(),
                        [](const Target& a, const Target& b) {
                          return a.host == b.host && a.port == b.port;
                        }),
            set.end());
  return set;
}

std::optional<Target> parse_target(std::string_view value, std::string* error) {
  value = trim(value);
  if (value.empty()) {
    set_error(error, "empty value");
    return std::nullopt;
  }
  if (value.size() > 4096) {
    set_error(error, "value longer than 4096 bytes");
    return std::nullopt;
  }
  if (value.front() == '{') return parse_json_target(value, error);
  return parse_host_port(value, error);
}

// ---- common.h ----

Health::Health(std::string what) : log_(log::get("discovery")), what_(std::move(what)) {}

void Health::fail(const std::string& error) {
  if (failing_ && error == error_) return;
  failing_ = true;
  error_ = error;
  log_->warn("{}: {}; keeping the last endpoint set", what_, error);
}

void Health::ok() {
  if (!failing_) return;
  failing_ = false;
  log_->info("{}: recovered (was: {})", what_, error_);
  error_.clear();
}

bool Publisher::publish(std::vector<Target> set) {
  set = normalize(std::move(set));
  if (last_ && *last_ == set) return false;
  last_ = std::move(set);
  if (!on_update_) return true;
  // Copies: the callback may stop the provider, which drops on_update_ and may publish again.
  auto cb = on_update_;
  const auto snapshot = *last_;
  cb(snapshot);
  return true;
}

}  // namespace proxer::discovery
