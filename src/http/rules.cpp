// Routing, header hygiene and head serialisation. Framing checks live in head_check.cpp.
#include "http/rules.h"

#include <array>
#include <boost/container/small_vector.hpp>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/char_class.h"
#include "http/head_writer.h"
#include "http/response_head.h"

namespace proxer::http {
namespace {

constexpr std::string_view kProxerToken = "X-Proxer-Token";
constexpr std::string_view kXForwardedFor = "X-Forwarded-For";
constexpr std::string_view kXForwardedProto = "X-Forwarded-Proto";
constexpr std::string_view kXForwardedHost = "X-Forwarded-Host";
constexpr std::string_view kXForwardedPort = "X-Forwarded-Port";
constexpr std::string_view kXRealIp = "X-Real-IP";

// Whether any Connection line of f lists `token` (case-insensitive).
bool connection_has(const bhttp::fields& f, std::string_view token) {
  const auto range = f.equal_range(bhttp::field::connection);
  for (auto it = range.first; it != range.second; ++it) {
    if (chars::any_list_item(it->value(),
                             [&](std::string_view item) { return chars::iequals(item, token); })) {
      return true;
    }
  }
  return false;
}

// Appends item to the list header `name`, merging every existing line into one.
template <typename Name>
void append_to_list(bhttp::fields& f, Name name, std::string_view item) {
  std::string merged;
  const auto range = f.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    const auto v = chars::trim_ows(it->value());
    if (v.empty()) continue;
    merged.append(v);
    merged.append(", ");
  }
  merged.append(item);
  f.set(name, merged);
}

// A Forwarded parameter value (RFC 7239 §4): a token as is, anything else as a quoted-string.
template <typename Out>
void append_forwarded_value(Out& out, std::string_view v) {
  // One scan decides: a token goes as is, a value without '"', '\\' or CTLs is quoted in bulk
  // (the usual "host:port"), anything else byte by byte.
  const char* end = v.data() + v.size();
  const char* p = chars::skip_token_chars(v.data(), end);
  if (p == end && !v.empty()) {
    out.append(v);
    return;
  }
  out.push_back('"');
  if (chars::skip_quotable_chars(p, end) == end) {  // (the token prefix is quotable too)
    out.append(v);
  } else {
    for (char c : v) {
      if (!chars::is_value_char(c)) continue;
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// The RFC 7239 element "for=..;proto=..;host=.." for `ip` (brackets already stripped).
template <typename Out>
void append_forwarded_element(Out& out, std::string_view ip, std::string_view proto,
                              std::string_view host) {
  out.append("for=");
  if (ip.empty()) {
    out.append("unknown");
  } else if (ip.find(':') != std::string_view::npos) {
    // RFC 7239 §6: an IPv6 node is bracketed, and brackets make it a quoted-string.
    out.append("\"[");
    for (char c : ip) {
      if (chars::is_value_char(c) && c != '"' && c != '\\') out.push_back(c);
    }
    out.append("]\"");
  } else {
    append_forwarded_value(out, ip);
  }
  if (!proto.empty()) {
    out.append(";proto=");
    append_forwarded_value(out, proto);
  }
  if (!host.empty()) {
    out.append(";host=");
    append_forwarded_value(out, host);
  }
}

bool listed(std::span<const std::string> names, std::string_view name) {
  for (const auto& n : names) {
    if (chars::iequals(n, name)) return true;
  }
  return false;
}

bool listed(std::span<const std::pair<std::string, std::string>> fields, std::string_view name) {
  for (const auto& f : fields) {
    if (chars::iequals(f.first, name)) return true;
  }
  return false;
}

// Fields that are hop-by-hop whatever Connection says (RFC 9110 §7.6.1 and the proxy-only
// ones). Connection itself and Upgrade are the callers' to decide.
bool always_hop_by_hop(bhttp::field f) {
  switch (f) {
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authorization:
      return true;
    default:
      return false;
  }
}

std::string_view strip_brackets(std::string_view ip) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') return ip.substr(1, ip.size() - 2);
  return ip;
}

// Standard base64 (RFC 4648 §4), padding optional; nullopt on any character outside the alphabet.
std::optional<std::string> decode_base64(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// Appends a field value with every byte that could end the line or confuse a parser (CTLs other
// than HTAB, DEL) written as SP.
template <typename Out>
void append_sanitized(Out& out, std::string_view v) {
  const char* end = v.data() + v.size();
  const char* clean = chars::skip_value_chars(v.data(), end);
  out.append(v.data(), static_cast<std::size_t>(clean - v.data()));
  for (; clean != end; ++clean) out.push_back(chars::is_value_char(*clean) ? *clean : ' ');
}

template <typename Out>
void append_fields(Out& out, const bhttp::fields& f) {
  for (const auto& field : f) {
    const auto name = field.name_string();
    if (!chars::is_token(name)) continue;
    out.append(name);
    out.append(": ");
    append_sanitized(out, field.value());
    out.append("\r\n");
  }
}

template <typename Out>
void append_status_line(Out& out, unsigned status, std::string_view reason) {
  if (status < 100 || status > 999) status = 500;
  std::array<char, 3> code{};
  std::to_chars(code.data(), code.data() + code.size(), status);
  out.append("HTTP/1.1 ");
  out.append(code.data(), code.size());
  out.push_back(' ');
  append_sanitized(out, reason);
  out.append("\r\n");
}

std::string_view standard_reason(unsigned status) {
  const std::string_view r = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return r.starts_with('<') ? std::string_view("Unknown") : r;  // Beast says "<unknown-status>"
}

}  // namespace

// --- Lexical rules -----------------------------------------------------------------------------

bool is_token(std::string_view s) {
  return chars::is_token(s);
}

bool is_field_value(std::string_view s) {
  const char* end = s.data() + s.size();
  return chars::skip_value_chars(s.data(), end) == end;
}

// --- Routing -----------------------------------------------------------------------------------

bool valid_tunnel_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::optional<std::string_view> bare_host(std::string_view host_header) {
  auto host = chars::trim_ows(host_header);
  const auto port_at = host.starts_with('[') ? host.find("]:") : host.find(':');
  if (port_at != std::string_view::npos) {
    const auto colon = host.starts_with('[') ? port_at + 1 : port_at;
    for (char c : host.substr(colon + 1)) {
      // Also rejects an unbracketed IPv6 address (a second colon).
      if (c < '0' || c > '9') return std::nullopt;
    }
    host = host.substr(0, colon);
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  return host;
}

std::optional<std::string> tunnel_from_host(std::string_view host_header, std::string_view domain) {
  const auto bare = bare_host(host_header);
  if (!bare || bare->empty() || bare->front() == '[') return std::nullopt;  // IPv6 literal
  auto host = *bare;
  domain = chars::trim_ows(domain);
  domain = domain.substr(0, domain.find(':'));  // "localhost:8080" as configured
  if (domain.starts_with('.')) domain.remove_prefix(1);
  if (domain.ends_with('.')) domain.remove_suffix(1);
  if (domain.empty() || host.size() < domain.size() + 2) return std::nullopt;
  const auto label_len = host.size() - domain.size() - 1;
  if (host[label_len] != '.' || !chars::iequals(host.substr(label_len + 1), domain)) {
    return std::nullopt;
  }
  std::string label(host.substr(0, label_len));
  for (char& c : label) c = chars::to_lower(c);
  // A dot in the label means a deeper subdomain, which valid_tunnel_name refuses.
  if (!valid_tunnel_name(label)) return std::nullopt;
  return label;
}

std::optional<PathRoute> tunnel_from_path(std::string_view target) {
  constexpr std::string_view kPrefix = "/t/";
  if (!target.starts_with(kPrefix)) return std::nullopt;
  target.remove_prefix(kPrefix.size());
  const auto end = target.find_first_of("/?");
  const auto name = target.substr(0, end);
  if (!valid_tunnel_name(name)) return std::nullopt;
  PathRoute route{std::string(name), {}};
  if (end == std::string_view::npos) {
    route.rest = "/";
  } else if (target[end] == '?') {
    route.rest.reserve(1 + target.size() - end);
    route.rest.push_back('/');
    route.rest.append(target.substr(end));
  } else {
    route.rest.assign(target.substr(end));
  }
  return route;
}

// --- Header hygiene ----------------------------------------------------------------------------

void strip_hop_by_hop(bhttp::fields& f, bool keep_upgrade) {
  // Connection lines stay until the end: their values are the list being matched against.
  const bool has_connection = f.find(bhttp::field::connection) != f.end();
  for (auto it = f.begin(); it != f.end();) {
    bool drop = false;
    switch (it->name()) {
      case bhttp::field::connection:
      case bhttp::field::host:
      case bhttp::field::content_length:
        break;
      case bhttp::field::upgrade:
        drop = !keep_upgrade;
        break;
      default:
        drop = always_hop_by_hop(it->name()) ||
               (has_connection && connection_has(f, it->name_string()));
        break;
    }
    it = drop ? f.erase(it) : std::next(it);
  }
  f.erase(bhttp::field::connection);
  if (keep_upgrade && f.find(bhttp::field::upgrade) != f.end()) {
    f.set(bhttp::field::connection, "Upgrade");
  }
}

void add_forwarded(bhttp::fields& f, std::string_view client_ip, std::string_view proto,
                   std::string_view host, bool trusted_peer) {
  if (!trusted_peer) {
    f.erase(bhttp::field::forwarded);
    f.erase(kXForwardedFor);
    f.erase(kXForwardedProto);
    f.erase(kXForwardedHost);
    f.erase(kXForwardedPort);
    f.erase(kXRealIp);
  }
  const auto ip = strip_brackets(client_ip);
  append_to_list(f, kXForwardedFor, ip.empty() ? std::string_view("unknown") : ip);
  // A trusted peer's values describe the original request (e.g. https at a TLS terminator).
  const auto keep = [&](std::string_view name) {
    return trusted_peer && !chars::trim_ows(f[name]).empty();
  };
  if (!proto.empty() && !keep(kXForwardedProto)) f.set(kXForwardedProto, proto);
  if (!host.empty() && !keep(kXForwardedHost)) f.set(kXForwardedHost, host);

  std::string element;
  element.reserve(32 + ip.size() + proto.size() + host.size());  // one allocation
  append_forwarded_element(element, ip, proto, host);
  append_to_list(f, bhttp::field::forwarded, element);
}

std::vector<TokenCandidate> tunnel_token_sources(const bhttp::fields& f) {
  std::vector<TokenCandidate> out;
  const auto headers = f.equal_range(kProxerToken);
  for (auto it = headers.first; it != headers.second; ++it) {
    const auto v = chars::trim_ows(it->value());
    if (!v.empty()) out.push_back({std::string(v), TokenSource::Header});
  }
  const auto auths = f.equal_range(bhttp::field::authorization);
  for (auto it = auths.first; it != auths.second; ++it) {
    const auto v = chars::trim_ows(it->value());
    const auto sp = v.find(' ');
    if (sp == std::string_view::npos) continue;
    const auto scheme = v.substr(0, sp);
    const auto credentials = chars::trim_ows(v.substr(sp + 1));
    if (credentials.empty()) continue;
    if (chars::iequals(scheme, "Bearer")) {
      out.push_back({std::string(credentials), TokenSource::Bearer});
    } else if (chars::iequals(scheme, "Basic")) {
      auto decoded = decode_base64(credentials);
      if (!decoded) continue;
      const auto colon = decoded->find(':');
      if (colon == std::string::npos || colon + 1 == decoded->size()) continue;
      out.push_back({decoded->substr(colon + 1), TokenSource::Basic});
    }
  }
  return out;
}

std::vector<std::string> tunnel_token_candidates(const bhttp::fields& f) {
  std::vector<std::string> out;
  for (auto& c : tunnel_token_sources(f)) out.push_back(std::move(c.value));
  return out;
}

void strip_tunnel_token(bhttp::fields& f, bool authorization_used) {
  f.erase(kProxerToken);
  if (authorization_used) f.erase(bhttp::field::authorization);
}

// --- Serialisation -----------------------------------------------------------------------------

namespace {

template <typename Out>
void append_request_line(Out& out, std::string_view method, std::string_view target) {
  if (chars::is_token(method)) {
    out.append(method);
  } else {
    for (char c : method) {
      if (chars::is_token_char(c)) out.push_back(c);
    }
  }
  out.push_back(' ');
  // SP and CTLs would split the request line; they are percent-encoded. The clean prefix (all of
  // a target the parser accepted) is copied at once.
  const auto ok = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7F;
  };
  const auto clean = static_cast<std::size_t>(
      chars::skip_target_chars(target.data(), target.data() + target.size()) - target.data());
  out.append(target.substr(0, clean));
  target.remove_prefix(clean);
  if (clean == 0 && target.empty()) {
    out.push_back('/');
  } else {
    constexpr std::string_view kHex = "0123456789ABCDEF";
    for (char c : target) {
      const auto u = static_cast<unsigned char>(c);
      if (ok(c)) {
        out.push_back(c);
      } else {
        out.push_back('%');
        out.push_back(kHex[u >> 4]);
        out.push_back(kHex[u & 0x0F]);
      }
    }
  }
  out.append(" HTTP/1.1\r\n");
}

}  // namespace

void serialize_request_head(const bhttp::request_header<>& h, std::string& out) {
  const auto method = h.method_string();
  const auto target = h.target();
  out.reserve(out.size() + method.size() + target.size() + 512);
  append_request_line(out, method, target);
  append_fields(out, h);
  out.append("\r\n");
}

namespace {

// The forwarding headers add_forwarded() owns, by name.
enum class Fwd { None, For, Proto, Host, Forwarded, Other };

Fwd forwarding_header(std::string_view n) {
  switch (n.size()) {
    case 9:
      return chars::iequals(n, kXRealIp)      ? Fwd::Other
             : chars::iequals(n, "forwarded") ? Fwd::Forwarded
                                              : Fwd::None;
    case 15:
      return chars::iequals(n, kXForwardedFor) ? Fwd::For : Fwd::None;
    case 16:
      return chars::iequals(n, kXForwardedHost)   ? Fwd::Host
             : chars::iequals(n, kXForwardedPort) ? Fwd::Other
                                                  : Fwd::None;
    case 17:
      return chars::iequals(n, kXForwardedProto) ? Fwd::Proto : Fwd::None;
    default:
      return Fwd::None;
  }
}

// A field whose name is one of ours (a token by construction).
template <typename Out>
void append_known_field(Out& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  append_sanitized(out, value);
  out.append("\r\n");
}

// A field from the configuration (or code): left out unless its name is a token.
template <typename Out>
void append_config_field(Out& out, std::string_view name, std::string_view value) {
  if (chars::is_token(name)) append_known_field(out, name, value);
}

}  // namespace

void serialize_forward_head(const bhttp::request_header<>& req, const ForwardEdits& e,
                            std::string& out_string) {
  // First pass: the Connection tokens (every field they name is dropped), whether there is an
  // Upgrade field, and how long the fields are (the writer's estimate).
  boost::container::small_vector<std::string_view, 4> conn_tokens;
  bool has_upgrade = false;
  std::size_t fields_size = 0;
  for (const auto& f : req) {
    fields_size += f.name_string().size() + f.value().size() + 4;
    if (f.name() == bhttp::field::connection) {
      chars::any_list_item(f.value(), [&](std::string_view t) {
        conn_tokens.push_back(t);
        return false;
      });
    } else if (f.name() == bhttp::field::upgrade) {
      has_upgrade = true;
    }
  }
  const auto listed_by_connection = [&](std::string_view name) {
    for (const auto t : conn_tokens) {
      if (chars::iequals(t, name)) return true;
    }
    return false;
  };
  const auto method = req.method_string();
  // The forwarding fields take about 100 bytes plus the client's address (twice), the protocol
  // and host (twice each); the configured ones are rarely more than the rest.
  HeadWriter out(out_string, method.size() + e.target.size() + fields_size + 256 +
                                 2 * (e.client_ip.size() + e.proto.size() + e.host.size()));
  append_request_line(out, method, e.target);
  // From a trusted peer: the first X-Forwarded-Proto / -Host that Connection does not drop.
  std::optional<std::string_view> first_proto, first_host;
  if (e.trusted_peer) {
    for (const auto& f : req) {
      if (f.name() != bhttp::field::unknown) continue;
      const auto kind = forwarding_header(f.name_string());
      if (kind != Fwd::Proto && kind != Fwd::Host) continue;
      if (listed_by_connection(f.name_string())) continue;
      auto& first = kind == Fwd::Proto ? first_proto : first_host;
      if (!first) first = chars::trim_ows(f.value());
    }
  }
  const auto edited = [&](std::string_view name) {
    return listed(e.remove, name) || listed(e.set, name);
  };
  // A trusted peer's X-Forwarded-Proto / -Host stay as they are when the first one has a value.
  const bool keep_proto = e.trusted_peer && first_proto && !first_proto->empty();
  const bool keep_host = e.trusted_peer && first_host && !first_host->empty();
  const bool upgrade_kept = e.keep_upgrade && has_upgrade;

  // Second pass: the client's fields that go on, in their order; a trusted peer's
  // X-Forwarded-For and Forwarded lines are merged into one each, written below.
  std::string merged_for, merged_forwarded;
  const auto merge = [](std::string& into, std::string_view value) {
    const auto v = chars::trim_ows(value);
    if (v.empty()) return;
    into.append(v);
    into.append(", ");
  };
  for (const auto& f : req) {
    const auto name = f.name_string();
    if (always_hop_by_hop(f.name())) continue;
    switch (f.name()) {
      case bhttp::field::expect:  // answered by the gateway (100 Continue)
      case bhttp::field::connection:
        continue;
      case bhttp::field::upgrade:
        if (!e.keep_upgrade) continue;
        break;
      case bhttp::field::host:
      case bhttp::field::content_length:
        break;  // never dropped because Connection names them
      case bhttp::field::forwarded:
        if (listed_by_connection(name)) continue;
        if (e.trusted_peer) merge(merged_forwarded, f.value());
        continue;  // written below, after the client's fields
      case bhttp::field::unknown:
        if (!conn_tokens.empty() && listed_by_connection(name)) continue;
        switch (forwarding_header(name)) {
          case Fwd::None:
            break;
          case Fwd::For:
            if (e.trusted_peer) merge(merged_for, f.value());
            continue;
          case Fwd::Proto:
            if (!keep_proto) continue;
            break;
          case Fwd::Host:
            if (!keep_host) continue;
            break;
          case Fwd::Forwarded:
          case Fwd::Other:
            if (!e.trusted_peer) continue;
            break;
        }
        break;
      default:
        if (!conn_tokens.empty() && listed_by_connection(name)) continue;
        break;
    }
    if (edited(name)) continue;
    append_config_field(out, name, f.value());
  }

  if (upgrade_kept) out.append("Connection: Upgrade\r\n");
  const auto ip = strip_brackets(e.client_ip);
  // Which forwarding fields are written: with nothing merged from a trusted peer, they depend on
  // these, the address, the scheme and the Host only.
  const unsigned written =
      (edited(kXForwardedFor) ? 0U : 1U) |
      (!e.proto.empty() && !keep_proto && !edited(kXForwardedProto) ? 2U : 0U) |
      (!e.host.empty() && !keep_host && !edited(kXForwardedHost) ? 4U : 0U) |
      (edited("Forwarded") ? 0U : 8U);
  const auto write_forwarding = [&](auto& to) {
    if (written & 1U) {
      to.append(kXForwardedFor);
      to.append(": ");
      append_sanitized(to, merged_for);
      append_sanitized(to, ip.empty() ? std::string_view("unknown") : ip);
      to.append("\r\n");
    }
    if (written & 2U) append_known_field(to, kXForwardedProto, e.proto);
    if (written & 4U) append_known_field(to, kXForwardedHost, e.host);
    if (written & 8U) {
      to.append("Forwarded: ");
      append_sanitized(to, merged_forwarded);
      // Writes only value characters: tokens, quoted strings without CTLs.
      append_forwarded_element(to, ip, e.proto, e.host);
      to.append("\r\n");
    }
  };
  if (e.memo && merged_for.empty() && merged_forwarded.empty()) {
    auto& m = *e.memo;
    if (!m.valid || m.written != written || m.ip != ip || m.proto != e.proto || m.host != e.host) {
      m.valid = true;
      m.written = written;
      m.ip.assign(ip);
      m.proto.assign(e.proto);
      m.host.assign(e.host);
      m.fields.clear();
      write_forwarding(m.fields);
    }
    out.append(m.fields);
  } else {
    write_forwarding(out);
  }
  for (const auto& [name, value] : e.set) append_config_field(out, name, value);
  for (const auto& [name, value] : e.add) append_config_field(out, name, value);
  if (e.chunked) out.append("Transfer-Encoding: chunked\r\n");
  out.append("\r\n");
}

void serialize_response_head(const bhttp::response_header<>& h, std::string& out) {
  out.reserve(out.size() + 512);
  const auto status = h.result_int();
  auto reason = h.reason();
  // Beast reports a missing reason as "<unknown-status>" for codes it does not know; a real
  // reason that starts with '<' is a reason like any other (the raw relay keeps it too).
  if (reason.empty() || reason == "<unknown-status>") reason = standard_reason(status);
  append_status_line(out, status, reason);
  append_fields(out, h);
  out.append("\r\n");
}

// --- Raw response heads (response_head.h) --------------------------------------------------------

bool ResponseHead::connection_has(std::string_view token) const {
  if (chars::iequals(token, "close")) return connection_close;
  if (chars::iequals(token, "keep-alive")) return connection_keep_alive;
  for (const auto t : connection_tokens) {
    if (chars::iequals(t, token)) return true;
  }
  return false;
}

bool ResponseHead::keep_alive() const {
  if (connection_close) return false;
  return !http10 || connection_keep_alive;
}

const HeadField* ResponseHead::find(std::string_view name) const {
  for (const auto& f : fields) {
    if (chars::iequals(f.name, name)) return &f;
  }
  return nullptr;
}

namespace {

// Whether a field is hop-by-hop for strip_hop_by_hop() (Upgrade decided by the caller). Host,
// Content-Length and Connection itself are never dropped because Connection names them;
// Connection lines are dropped separately.
bool hop_by_hop_name(std::string_view n) {
  switch (n.size()) {
    case 2:
      return chars::iequals(n, "te");
    case 7:
      return chars::iequals(n, "trailer");
    case 10:
      return chars::iequals(n, "keep-alive") || chars::iequals(n, "connection");
    case 16:
      return chars::iequals(n, "proxy-connection");
    case 17:
      return chars::iequals(n, "transfer-encoding");
    case 18:
      return chars::iequals(n, "proxy-authenticate");
    case 19:
      return chars::iequals(n, "proxy-authorization");
    default:
      return false;
  }
}

template <typename Out>
void append_field(Out& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void serialize_response_head(const ResponseHead& h, const ResponseEdits& e,
                             std::string& out_string) {
  std::size_t fields_size = 0;
  for (const auto& f : h.fields) fields_size += f.name.size() + f.value.size() + 4;
  HeadWriter out(out_string, fields_size + h.reason.size() + 128);
  const auto reason = h.reason.empty() ? standard_reason(h.status) : h.reason;
  append_status_line(out, h.status, reason);
  // Whether Connection may name a kept field ("keep-alive" names a hop-by-hop one anyway; a
  // field called "close" is unlikely but possible).
  const bool named_fields =
      e.strip_hop_by_hop && (h.connection_close || !h.connection_tokens.empty());
  bool upgrade_kept = false;
  for (const auto& f : h.fields) {
    if (e.strip_hop_by_hop) {
      if (hop_by_hop_name(f.name)) continue;
      const bool upgrade = f.name.size() == 7 && chars::iequals(f.name, "upgrade");
      if (upgrade && !e.keep_upgrade) continue;
      if (named_fields && !upgrade && !chars::iequals(f.name, "host") &&
          !chars::iequals(f.name, "content-length") && h.connection_has(f.name)) {
        continue;
      }
      if (listed(e.hide, f.name) || listed(e.remove, f.name) || listed(e.set, f.name)) continue;
      upgrade_kept = upgrade_kept || upgrade;
    } else if (listed(e.hide, f.name) || listed(e.remove, f.name) || listed(e.set, f.name)) {
      continue;
    }
    append_field(out, f.name, f.value);
  }
  for (const auto* list : {&e.set, &e.add}) {
    for (const auto& [name, value] : *list) {
      if (!chars::is_token(name)) continue;
      out.append(name);
      out.append(": ");
      append_sanitized(out, value);
      out.append("\r\n");
    }
  }
  if (upgrade_kept) out.append("Connection: Upgrade\r\n");
  if (e.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (e.connection_close) out.append("Connection: close\r\n");
  out.append("\r\n");
}

std::string error_response(unsigned status, std::string_view error_code, std::string_view message,
                           bool keep_alive) {
  std::array<char, 20> len{};
  const auto len_end = std::to_chars(len.data(), len.data() + len.size(), message.size() + 1).ptr;
  std::string out;
  out.reserve(160 + error_code.size() + message.size());
  append_status_line(out, status, standard_reason(status));
  out.append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  out.append(len.data(), len_end);
  out.append("\r\nCache-Control: no-store\r\nX-Proxer-Error: ");
  for (char c : error_code) out.push_back(chars::is_token_char(c) ? c : '_');
  out.append("\r\n");
  if (!keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(message);
  out.push_back('\n');
  return out;
}

bool wants_keep_alive(const bhttp::request_header<>& h) {
  if (connection_has(h, "close")) return false;
  return h.version() >= 11 || connection_has(h, "keep-alive");
}

bool is_upgrade(const bhttp::request_header<>& h) {
  if (h.version() < 11 || !connection_has(h, "upgrade")) return false;
  const auto it = h.find(bhttp::field::upgrade);
  return it != h.end() && !chars::trim_ows(it->value()).empty();
}

}  // namespace proxer::http
