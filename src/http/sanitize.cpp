// Request-target normalisation, header-name policy, trusted networks. See sanitize.h.
#include "http/sanitize.h"

#include <arpa/inet.h>

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "http/char_class.h"

namespace proxer::http {
namespace {

constexpr std::string_view kHex = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.3.
bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void append_escape(std::string& out, unsigned char c) {
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0x0F]);
}

// Whether the path needs the slow path: an escape, a backslash or '#', a segment starting with
// '.', or (merging) an empty segment.
bool needs_work(std::string_view path, const PathOptions& o) {
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%' || c == '\\' || c == '#') return true;
    if (c == '/' && i + 1 < path.size()) {
      const char n = path[i + 1];
      if (n == '.' || (n == '/' && o.merge_slashes)) return true;
    }
  }
  return false;
}

// Step 1: escapes and backslashes, into `out`. The result has no "%00", no malformed escape, no
// raw '\', and (unless Keep) no encoded slash; every escape left is one of a byte that is not
// unreserved, in upper-case hex.
PathVerdict decode_path(std::string_view path, const PathOptions& o, std::string& out) {
  out.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\\') {
      if (o.escaped_slashes != EscapedSlashes::Decode) return PathVerdict::Backslash;
      out.push_back('/');
      continue;
    }
    if (c == '#') return PathVerdict::Fragment;
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= path.size()) return PathVerdict::BadEscape;
    const int hi = hex_value(path[i + 1]);
    const int lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) return PathVerdict::BadEscape;
    const auto v = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (v == 0) return PathVerdict::NulByte;
    if (v == '/' || v == '\\') {
      switch (o.escaped_slashes) {
        case EscapedSlashes::Keep:
          append_escape(out, v);
          break;
        case EscapedSlashes::Reject:
          return PathVerdict::EscapedSlash;
        case EscapedSlashes::Decode:
          out.push_back('/');
          break;
      }
    } else if (unreserved(v)) {
      out.push_back(static_cast<char>(v));
    } else {
      append_escape(out, v);
    }
  }
  return PathVerdict::Ok;
}

// Step 2: dot segments (and empty ones when merging). `path` starts with '/'.
PathVerdict remove_dot_segments(std::string_view path, bool merge_slashes, std::string& out) {
  out.reserve(path.size());
  std::vector<std::size_t> starts;  // offset in `out` of each kept segment's leading '/'
  auto push = [&](std::string_view segment) {
    starts.push_back(out.size());
    out.push_back('/');
    out.append(segment);
  };
  std::size_t pos = 1;
  for (;;) {
    const auto end = path.find('/', pos);
    const bool last = end == std::string_view::npos;
    const auto segment = path.substr(pos, last ? std::string_view::npos : end - pos);
    if (segment == ".") {
      if (last) push({});
    } else if (segment == "..") {
      if (starts.empty()) return PathVerdict::Traversal;
      out.resize(starts.back());
      starts.pop_back();
      if (last) push({});
    } else if (!(segment.empty() && merge_slashes && !last)) {
      push(segment);
    }
    if (last) break;
    pos = end + 1;
  }
  return PathVerdict::Ok;
}

bool parse_address(std::string_view text, std::array<std::uint8_t, 16>& bytes, bool& v6) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  text = text.substr(0, text.find('%'));  // a zone ("fe80::1%eth0")
  if (text.empty() || text.size() > 45) return false;
  const std::string s(text);
  bytes = {};
  if (s.find(':') == std::string::npos) {
    v6 = false;
    return inet_pton(AF_INET, s.c_str(), bytes.data()) == 1;
  }
  v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), bytes.data()) != 1) return false;
  // ::ffff:a.b.c.d is an IPv4 client seen by a dual-stack socket.
  bool mapped = bytes[10] == 0xFF && bytes[11] == 0xFF;
  for (std::size_t i = 0; i < 10 && mapped; ++i) mapped = bytes[i] == 0;
  if (mapped) {
    for (std::size_t i = 0; i < 4; ++i) bytes[i] = bytes[12 + i];
    for (std::size_t i = 4; i < 16; ++i) bytes[i] = 0;
    v6 = false;
  }
  return true;
}

bool prefix_matches(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                    unsigned prefix) {
  std::size_t i = 0;
  for (; prefix >= 8; prefix -= 8, ++i) {
    if (a[i] != b[i]) return false;
  }
  if (prefix == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - prefix));
  return (a[i] & mask) == (b[i] & mask);
}

}  // namespace

std::string_view verdict_code(PathVerdict v) {
  return v == PathVerdict::Traversal ? "path_traversal" : "bad_path";
}

std::string_view verdict_message(PathVerdict v) {
  switch (v) {
    case PathVerdict::Ok:
      return "ok";
    case PathVerdict::BadTarget:
      return "the request target must be a path starting with '/'";
    case PathVerdict::BadEscape:
      return "malformed percent-encoding in the path";
    case PathVerdict::NulByte:
      return "the path contains an encoded NUL byte (%00)";
    case PathVerdict::EscapedSlash:
      return "the path contains an encoded slash (%2F or %5C)";
    case PathVerdict::Backslash:
      return "the path contains a backslash";
    case PathVerdict::Fragment:
      return "the request target contains a fragment ('#')";
    case PathVerdict::Traversal:
      return "the path climbs above the root ('..')";
  }
  return "bad path";
}

NormalizedTarget normalize_target(std::string_view target, const PathOptions& options) {
  NormalizedTarget r;
  if (!options.normalize || target == "*") return r;
  if (target.empty() || target.front() != '/') {
    r.verdict = PathVerdict::BadTarget;
    return r;
  }
  const auto query_at = target.find('?');
  const auto path = target.substr(0, query_at);
  if (!needs_work(path, options)) return r;
  std::string decoded;
  r.verdict = decode_path(path, options, decoded);
  if (r.verdict != PathVerdict::Ok) return r;
  std::string out;
  r.verdict = remove_dot_segments(decoded, options.merge_slashes, out);
  if (r.verdict != PathVerdict::Ok) return r;
  if (query_at != std::string_view::npos) out.append(target.substr(query_at));
  if (out != target) {
    r.changed = true;
    r.target = std::move(out);
  }
  return r;
}

std::optional<std::string> apply_underscore_policy(bhttp::fields& f, UnderscoreHeaders policy) {
  if (policy == UnderscoreHeaders::Allow) return std::nullopt;
  for (auto it = f.begin(); it != f.end();) {
    const auto name = it->name_string();
    if (name.find('_') == std::string_view::npos) {
      ++it;
      continue;
    }
    if (policy == UnderscoreHeaders::Reject) return std::string(name);
    it = f.erase(it);
  }
  return std::nullopt;
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  Cidr c;
  if (!parse_address(text.substr(0, slash), c.bytes, c.v6)) return std::nullopt;
  // "::ffff:10.0.0.0/104" would silently become an IPv4 network with a wrong prefix: refuse
  // mapped addresses in networks (write the IPv4 form).
  if (!c.v6 && text.substr(0, slash).find(':') != std::string_view::npos) return std::nullopt;
  const unsigned bits = c.v6 ? 128 : 32;
  c.prefix = bits;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
    if (ec != std::errc() || end != digits.data() + digits.size() || p > bits) return std::nullopt;
    c.prefix = p;
  }
  // No bits beyond the prefix.
  for (unsigned bit = c.prefix; bit < bits; ++bit) {
    if (c.bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  }
  return c;
}

bool CidrSet::contains(std::string_view ip) const {
  if (nets_.empty()) return false;
  std::array<std::uint8_t, 16> bytes{};
  bool v6 = false;
  if (!parse_address(ip, bytes, v6)) return false;
  for (const auto& n : nets_) {
    if (n.v6 == v6 && prefix_matches(n.bytes, bytes, n.prefix)) return true;
  }
  return false;
}

}  // namespace proxer::http
