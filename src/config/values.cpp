// Value parsers (durations, sizes, addresses, tunnel specs) shared by the TOML loader and the CLI.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <limits>
#include <vector>

#include "config/config.h"
#include "config/detail.h"

namespace proxer::config {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::size_t kMaxTokenBytes = 4096;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Accumulates value*scale into total; false on overflow of uint64.
bool add_scaled(std::uint64_t& total, std::string_view digits, std::uint64_t scale) {
  std::uint64_t value = 0;
  for (char c : digits) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    value = value * 10 + d;
  }
  if (scale != 0 && value > std::numeric_limits<std::uint64_t>::max() / scale) return false;
  const auto scaled = value * scale;
  if (total > std::numeric_limits<std::uint64_t>::max() - scaled) return false;
  total += scaled;
  return true;
}

void set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
}

// The tunnel spec as it may appear in an error: the token part replaced by ***.
std::string redact_spec(std::string_view spec) {
  const auto at = spec.find('@');
  if (at == std::string_view::npos) return std::string(spec);
  const auto eq = spec.rfind('=');
  std::string out(spec.substr(0, at));
  out += "@***";
  if (eq != std::string_view::npos && eq > at) out += spec.substr(eq);
  return out;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Duration> {
    set_error(error, "invalid duration " + detail::quote(text) + ": " + why);
    return std::nullopt;
  };
  struct Unit {
    std::string_view name;
    std::uint64_t ms;
  };
  // Largest first: a duration lists its units in this order, each at most once.
  static constexpr std::array<Unit, 4> kUnits{
      {{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};
  if (text.empty()) return fail("empty");
  if (text.front() == '-') return fail("must not be negative");
  std::uint64_t total = 0;
  std::size_t next_unit = 0;  // index into kUnits of the smallest unit still allowed
  std::size_t i = 0;
  while (i < text.size()) {
    const auto number_start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    const auto digits = text.substr(number_start, i - number_start);
    if (i < text.size() && text[i] == '.') {
      return fail("use whole numbers (\"1s500ms\" rather than \"1.5s\")");
    }
    const auto unit_start = i;
    while (i < text.size() && is_alpha(text[i])) ++i;
    const auto unit = text.substr(unit_start, i - unit_start);
    if (digits.empty()) {
      if (unit.empty()) return fail("unexpected character " + detail::quote(text.substr(i, 1)));
      return fail("expected a number before " + detail::quote(unit));
    }
    if (unit.empty()) {
      if (i < text.size()) return fail("unexpected character " + detail::quote(text.substr(i, 1)));
      return fail("a unit is required (ms, s, m or h), e.g. \"" + std::string(digits) + "s\"");
    }
    const auto found =
        std::find_if(kUnits.begin(), kUnits.end(), [&](const Unit& u) { return u.name == unit; });
    if (found == kUnits.end()) {
      return fail("unknown unit " + detail::quote(unit) + " (use ms, s, m or h)");
    }
    const auto index = static_cast<std::size_t>(found - kUnits.begin());
    if (index < next_unit) {
      return fail("units must go from largest to smallest, each at most once (e.g. \"1m30s\")");
    }
    next_unit = index + 1;
    if (!add_scaled(total, digits, found->ms) ||
        total > static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max())) {
      return fail("too large");
    }
  }
  return Duration(static_cast<Duration::rep>(total));
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<std::uint64_t> {
    set_error(error, "invalid size " + detail::quote(text) + ": " + why);
    return std::nullopt;
  };
  struct Unit {
    std::string_view name;  // lower case
    std::uint64_t bytes;
  };
  static constexpr std::array<Unit, 9> kUnits{{{"", 1},
                                               {"b", 1},
                                               {"kb", 1000},
                                               {"mb", 1000 * 1000},
                                               {"gb", 1000 * 1000 * 1000},
                                               {"kib", kKiB},
                                               {"mib", kKiB * kKiB},
                                               {"gib", kKiB * kKiB * kKiB},
                                               {"tib", kKiB * kKiB * kKiB * kKiB}}};
  if (text.empty()) return fail("empty");
  if (text.front() == '-') return fail("must not be negative");
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  const auto digits = text.substr(0, i);
  if (digits.empty())
    return fail("expected a number of bytes with an optional unit, like \"16KiB\"");
  if (i < text.size() && text[i] == '.') {
    return fail("use whole numbers (\"1536KiB\" rather than \"1.5MiB\")");
  }
  while (i < text.size() && text[i] == ' ') ++i;  // "16 KiB" reads naturally too
  const auto unit = lower(text.substr(i));
  if (unit == "k" || unit == "m" || unit == "g") {
    return fail("ambiguous unit " + detail::quote(text.substr(i)) +
                ": use KiB (1024) or KB (1000)");
  }
  const auto found =
      std::find_if(kUnits.begin(), kUnits.end(), [&](const Unit& u) { return u.name == unit; });
  if (found == kUnits.end()) {
    return fail("unknown unit " + detail::quote(text.substr(i)) +
                " (use B, KB, MB, GB, KiB, MiB, GiB or TiB)");
  }
  std::uint64_t total = 0;
  if (!add_scaled(total, digits, found->bytes)) return fail("too large");
  return total;
}

bool split_host_port(std::string_view in, std::string& host, std::string& port) {
  std::string_view h, p;
  if (!in.empty() && in.front() == '[') {
    const auto close = in.find(']');
    if (close == std::string_view::npos || close + 1 >= in.size() || in[close + 1] != ':') {
      return false;
    }
    h = in.substr(1, close - 1);
    p = in.substr(close + 2);
  } else {
    const auto colon = in.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = in.substr(0, colon);
    p = in.substr(colon + 1);
    // An unbracketed IPv6 address is ambiguous ("::1:80"): require "[::1]:80".
    if (h.find(':') != std::string_view::npos) return false;
  }
  if (h.empty() || !all_digits(p)) return false;
  host = h;
  port = p;
  return true;
}

std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(std::string_view in,
                                                                        std::string* error) {
  const auto dash = in.find('-');
  const auto lo = in.substr(0, dash);
  const auto hi = dash == std::string_view::npos ? lo : in.substr(dash + 1);
  const auto a = detail::parse_port(lo, false);
  const auto b = detail::parse_port(hi, false);
  if (!a || !b) {
    set_error(error, "expected \"MIN-MAX\" with ports 1-65535 (e.g. \"10000-10999\"), got " +
                         detail::quote(in));
    return std::nullopt;
  }
  if (*a > *b) {
    set_error(error, "the first port must not be above the second, got " + detail::quote(in));
    return std::nullopt;
  }
  return std::make_pair(*a, *b);
}

std::optional<TunnelConfig> parse_tunnel_spec(std::string_view spec, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<TunnelConfig> {
    set_error(error, "tunnel " + detail::quote(redact_spec(spec)) + ": " + why);
    return std::nullopt;
  };
  // Split at the last '=': a URL never contains one, a (base64) token may end with some.
  const auto eq = spec.rfind('=');
  if (eq == std::string_view::npos) {
    return fail("expected NAME=URL or NAME@TOKEN=URL (e.g. \"app=3000\")");
  }
  const auto left = spec.substr(0, eq);
  const auto target = spec.substr(eq + 1);
  const auto at = left.find('@');
  TunnelConfig out;
  out.name = left.substr(0, at);
  // "db:7000=tcp://..." asks the gateway for public port 7000.
  if (const auto colon = out.name.find(':'); colon != std::string::npos) {
    const auto port = detail::parse_port(std::string_view(out.name).substr(colon + 1), false);
    if (!port) return fail("expected NAME:PORT with a port 1-65535 before '='");
    out.remote_port = *port;
    out.name.resize(colon);
  }
  if (at != std::string_view::npos) {
    const auto token = left.substr(at + 1);
    if (token.empty()) return fail("empty token after '@'");
    out.token = Secret(std::string(token));
    if (auto why = detail::token_error(out.token)) return fail("token " + *why);
  }
  if (auto why = detail::tunnel_name_error(out.name)) return fail(*why);
  if (target.empty()) return fail("missing URL after '='");
  std::string why;
  auto url = detail::parse_target(target, out, &why);
  if (!url) return fail(why);
  out.url = std::move(*url);
  if (out.remote_port != 0 && !out.tcp) return fail("only tcp:// tunnels have a public port");
  return out;
}

std::string default_public_url(std::string_view domain, std::uint16_t port) {
  std::string url = "http://";
  url += domain;
  if (port != 80) url += ":" + std::to_string(port);
  return url;
}

std::string default_public_url(const GatewayConfig& cfg) {
  std::string host, port;
  std::uint16_t number = 80;
  if (split_host_port(cfg.listen, host, port)) {
    if (auto p = detail::parse_port(port, true)) number = *p;
  }
  return default_public_url(cfg.domain, number);
}

std::string format_duration(Duration d) {
  if (d.count() < 0) return "-" + format_duration(-d);
  if (d.count() == 0) return "0s";
  struct Unit {
    const char* name;
    Duration::rep ms;
  };
  static constexpr std::array<Unit, 4> kUnits{
      {{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};
  std::string out;
  auto rest = d.count();
  for (const auto& u : kUnits) {
    if (rest >= u.ms) {
      out += std::to_string(rest / u.ms) + u.name;
      rest %= u.ms;
    }
  }
  return out;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::pair<const char*, std::uint64_t>, 4> kUnits{
      {{"TiB", kKiB * kKiB * kKiB * kKiB},
       {"GiB", kKiB * kKiB * kKiB},
       {"MiB", kKiB * kKiB},
       {"KiB", kKiB}}};
  for (const auto& [name, scale] : kUnits) {
    if (bytes != 0 && bytes % scale == 0) return std::to_string(bytes / scale) + name;
  }
  return std::to_string(bytes) + "B";
}

const std::string& tls_server_name(const AgentConfig& cfg) {
  return cfg.server_name.empty() ? cfg.gateway_host : cfg.server_name;
}

namespace detail {

std::optional<std::uint16_t> parse_port(std::string_view port, bool allow_zero) {
  if (!all_digits(port) || port.size() > 5) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : port) value = value * 10 + static_cast<std::uint32_t>(c - '0');
  if (value > 65535 || (value == 0 && !allow_zero)) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::string percent_decode(std::string_view in) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

bool ip_literal(std::string_view host) {
  const std::string h(host);
  in6_addr v6{};
  in_addr v4{};
  return inet_pton(AF_INET6, h.c_str(), &v6) == 1 || inet_pton(AF_INET, h.c_str(), &v4) == 1;
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.find(':') != std::string_view::npos) {
    // IPv6, possibly with a zone ("fe80::1%eth0"): check the address part only.
    const std::string addr(host.substr(0, host.find('%')));
    in6_addr parsed{};
    return inet_pton(AF_INET6, addr.c_str(), &parsed) == 1;
  }
  // Hostname or IPv4. '_' is allowed: container and compose service names use it.
  std::size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(is_digit(c) || is_alpha(c) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label != 0;
}

std::optional<std::string> parse_target(std::string_view url, TunnelConfig& out,
                                        std::string* error) {
  const std::string shapes =
      "expected \"http://host:port\", \"tcp://host:port\", \"host:port\" or "
      "\"port\", got " +
      quote(url);
  auto fail = [&](const std::string& why) -> std::optional<std::string> {
    set_error(error, why);
    return std::nullopt;
  };
  std::string scheme = "http";
  std::string host, port;
  if (const auto sep = url.find("://"); sep != std::string_view::npos) {
    scheme = url.substr(0, sep);
    auto rest = url.substr(sep + 3);
    if (scheme == "https") {
      return fail("https:// targets are not supported yet: use http:// or tcp:// (got " +
                  quote(url) + ")");
    }
    if (scheme != "http" && scheme != "tcp") {
      return fail("unknown scheme " + quote(scheme) + " in " + quote(url) +
                  " (use http:// or tcp://)");
    }
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#") != std::string_view::npos) {
      return fail(
          "a target is scheme://host:port without a path (the request path is "
          "forwarded as is), got " +
          quote(url));
    }
    if (rest.empty()) return fail("missing host in " + quote(url));
    const bool bracketed = rest.front() == '[';
    const bool has_port = bracketed ? rest.find("]:") != std::string_view::npos
                                    : rest.find(':') != std::string_view::npos;
    if (!has_port && scheme == "http") {
      host = bracketed && rest.back() == ']' ? rest.substr(1, rest.size() - 2) : rest;
      port = "80";
    } else if (!has_port) {
      return fail("tcp:// targets need a port, got " + quote(url));
    } else if (!split_host_port(rest, host, port)) {
      return fail(shapes);
    }
  } else if (all_digits(url)) {
    host = "127.0.0.1";
    port = url;
  } else if (!split_host_port(url, host, port)) {
    return fail(shapes);
  }
  if (!valid_host(host)) return fail("invalid host " + quote(host) + " in " + quote(url));
  if (!parse_port(port, false)) {
    return fail("port must be 1-65535, got " + quote(port) + " in " + quote(url));
  }
  out.host = host;
  out.port = port;
  out.tcp = scheme == "tcp";
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + port;
}

std::optional<std::string> tunnel_name_error(std::string_view name) {
  const auto bad = [&](const char* why) {
    return "invalid tunnel name " + quote(name) + ": " + why +
           " (use 1-63 lowercase letters, digits and '-', not starting or ending with '-')";
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 63) return bad("longer than 63 characters");
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') return bad("upper-case letter");
    if (!(is_digit(c) || (c >= 'a' && c <= 'z') || c == '-')) return bad("invalid character");
  }
  if (name.front() == '-' || name.back() == '-') return bad("starts or ends with '-'");
  return std::nullopt;
}

std::optional<std::string> token_error(const Secret& token) {
  const auto& value = token.reveal();
  if (value.size() > kMaxTokenBytes) return "must be at most 4096 bytes";
  const bool bad_char = std::any_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
  if (bad_char) return "must not contain whitespace or control characters";
  return std::nullopt;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and adjacent swaps cost 1,
  // so "nmae" is one edit away from "name".
  const auto width = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * width);
  const auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * width + j]; };
  for (std::size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (std::size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

}  // namespace detail
}  // namespace proxer::config

namespace proxer::config {

bool parse_endpoint(EndpointConfig& ep, std::string* error) {
  using detail::quote;
  ep.tunnel = false;
  ep.tls = false;
  ep.host.clear();
  ep.port.clear();
  ep.tunnel_name.clear();
  const std::string_view url = ep.url;
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  if (url.starts_with("tunnel:")) {
    const auto name = url.substr(7);
    if (auto why = detail::tunnel_name_error(name)) return fail(*why);
    ep.tunnel = true;
    ep.tunnel_name = std::string(name);
    return true;
  }
  const auto sep = url.find("://");
  const auto scheme = sep == std::string_view::npos ? std::string_view() : url.substr(0, sep);
  if (scheme != "http" && scheme != "https") {
    return fail("expected \"http://host:port\", \"https://host[:port]\" or \"tunnel:NAME\", got " +
                quote(url));
  }
  auto rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of("/?#@") != std::string_view::npos) {
    return fail("an endpoint is scheme://host[:port] without a path or credentials, got " +
                quote(url));
  }
  const bool bracketed = rest.front() == '[';
  const bool has_port = bracketed ? rest.find("]:") != std::string_view::npos
                                  : rest.find(':') != std::string_view::npos;
  std::string host, port;
  if (!has_port) {
    host = std::string(bracketed && rest.back() == ']' ? rest.substr(1, rest.size() - 2) : rest);
    port = scheme == "https" ? "443" : "80";
  } else if (!split_host_port(rest, host, port)) {
    return fail("expected scheme://host:port, got " + quote(url));
  }
  if (!detail::valid_host(host)) return fail("invalid host " + quote(host) + " in " + quote(url));
  if (!detail::parse_port(port, false)) {
    return fail("port must be 1-65535, got " + quote(port) + " in " + quote(url));
  }
  ep.tls = scheme == "https";
  ep.host = std::move(host);
  ep.port = std::move(port);
  return true;
}

}  // namespace proxer::config
