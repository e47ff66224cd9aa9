// Request-target normalisation, header-name policy, trusted networks. See sanitize.h.
#include "http/sanitize.h"

#include <algorithm>
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

bool CidrSet::contains(std::string_view ip) const {
  if (nets_.empty()) return false;
  const auto addr = parse_ip(ip);
  if (!addr) return false;
  return std::any_of(nets_.begin(), nets_.end(), [&](const Cidr& n) { return n.contains(*addr); });
}

}  // namespace proxer::http
