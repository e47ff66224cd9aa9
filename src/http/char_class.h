#pragma once
// Character classes of RFC 9110 §5.6.2 (token) and §5.5 (field values) as one lookup table, so
// the per-byte checks on the request path are a load and a mask. Internal to src/http.
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace proxer::http::chars {

inline constexpr std::uint8_t kToken = 0x01;       // tchar
inline constexpr std::uint8_t kFieldValue = 0x02;  // HTAB, SP, VCHAR, obs-text
inline constexpr std::uint8_t kWhitespace = 0x04;  // SP, HTAB (OWS)
// What a quoted-string holds without escapes: field-value characters other than '"' and '\\'.
inline constexpr std::uint8_t kQuotable = 0x08;

inline constexpr std::array<std::uint8_t, 256> kTable = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    std::uint8_t v = 0;
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum ||
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos) {
      v |= kToken;
    }
    if (c == '\t' || (c >= 0x20 && c != 0x7F)) v |= kFieldValue;
    if (c == ' ' || c == '\t') v |= kWhitespace;
    if ((v & kFieldValue) && c != '"' && c != '\\') v |= kQuotable;
    t[static_cast<std::size_t>(c)] = v;
  }
  return t;
}();

inline bool is(char c, std::uint8_t cls) {
  return (kTable[static_cast<unsigned char>(c)] & cls) != 0;
}
inline bool is_token_char(char c) {
  return is(c, kToken);
}
inline bool is_value_char(char c) {
  return is(c, kFieldValue);
}
inline bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

namespace detail {
// Whether any byte of `w` is below `n` (n <= 0x80) or equals 0x7F (DEL). Exact as a yes/no
// answer (the classic "hasless" and "haszero" word tricks), not in which byte.
template <unsigned n>
inline bool any_below_or_del(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  const std::uint64_t below = (w - kOnes * n) & ~w & kHighs;
  const std::uint64_t x = w ^ (kOnes * 0x7F);
  const std::uint64_t del = (x - kOnes) & ~x & kHighs;
  return (below | del) != 0;
}
}  // namespace detail

// The first byte in [p, end) that is not a field-value character (HTAB, SP, VCHAR, obs-text),
// or end. Eight bytes at a time while a word holds only SP..'~' and obs-text, which is all of a
// typical value up to its CR; a word with a HTAB or the line's end is finished byte by byte.
inline const char* skip_value_chars(const char* p, const char* end) {
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    if (detail::any_below_or_del<0x20>(w)) break;
    p += 8;
  }
  while (p != end && is_value_char(*p)) ++p;
  return p;
}

// The first byte in [p, end) that is SP, a CTL or DEL (what ends a request-target), or end.
inline const char* skip_target_chars(const char* p, const char* end) {
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    if (detail::any_below_or_del<0x21>(w)) break;
    p += 8;
  }
  while (p != end && static_cast<unsigned char>(*p) > 0x20 && *p != 0x7F) ++p;
  return p;
}

// The first byte in [p, end) that is not a tchar, or end.
inline const char* skip_token_chars(const char* p, const char* end) {
  while (p != end && is_token_char(*p)) ++p;
  return p;
}

// The first byte in [p, end) that `quoted-string` cannot hold unescaped (a CTL, DEL, '"' or
// '\\'), or end.
inline const char* skip_quotable_chars(const char* p, const char* end) {
  while (p != end && is(*p, kQuotable)) ++p;
  return p;
}

inline bool is_token(std::string_view s) {
  return !s.empty() && skip_token_chars(s.data(), s.data() + s.size()) == s.data() + s.size();
}

inline char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// ASCII case-insensitive equality. Equal bytes (most of them, comparing a field name with its
// usual spelling) cost one compare; others must differ only in the case bit of a letter.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    const auto lower = static_cast<unsigned char>(x | 0x20);
    if ((x ^ y) != 0x20 || lower < 'a' || lower > 'z') return false;
  }
  return true;
}

inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(item) for each non-empty, OWS-trimmed element of a comma-separated list (RFC 9110
// §5.6.1; empty elements are allowed and skipped). Stops early when fn returns true; returns
// whether it did.
template <typename Fn>
bool any_list_item(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = trim_ows(list.substr(0, comma));
    if (!item.empty() && fn(item)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace proxer::http::chars
