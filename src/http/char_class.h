#pragma once
// Character classes of RFC 9110 §5.6.2 (token) and §5.5 (field values) as one lookup table, so
// the per-byte checks on the request path are a load and a mask. Internal to src/http.
#include <array>
#include <bit>
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
// The high bit of each byte of `w` that is below `n` (n <= 0x80) or equals 0x7F (DEL), from the
// classic "hasless" and "haszero" word tricks. A borrow can flag a byte above a flagged one, never
// one below it, so the lowest flag is exact: with little-endian loads it is the first such byte.
template <unsigned n>
inline std::uint64_t below_or_del_mask(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  const std::uint64_t below = (w - kOnes * n) & ~w & kHighs;
  const std::uint64_t x = w ^ (kOnes * 0x7F);
  const std::uint64_t del = (x - kOnes) & ~x & kHighs;
  return below | del;
}

// The offset of the first flagged byte of a nonzero below_or_del_mask() of a little-endian load.
inline std::size_t first_flagged(std::uint64_t mask) {
  return static_cast<std::size_t>(std::countr_zero(mask)) / 8;
}

inline std::uint64_t load_le(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}
}  // namespace detail

// The first byte in [p, end) that is not a field-value character (HTAB, SP, VCHAR, obs-text),
// or end. Eight bytes at a time: a word of SP..'~' and obs-text (all of a typical value up to
// its CR) is skipped whole, else the word's mask points at the first CTL or DEL; only a HTAB
// there (a field-value character below SP) lets the scan go on.
inline const char* skip_value_chars(const char* p, const char* end) {
  while (end - p >= 8) {
    const std::uint64_t mask = detail::below_or_del_mask<0x20>(detail::load_le(p));
    if (mask == 0) {
      p += 8;
      continue;
    }
    p += detail::first_flagged(mask);
    if (*p != '\t') return p;
    ++p;
  }
  while (p != end && is_value_char(*p)) ++p;
  return p;
}

// The first byte in [p, end) that is SP, a CTL or DEL (what ends a request-target), or end.
inline const char* skip_target_chars(const char* p, const char* end) {
  while (end - p >= 8) {
    const std::uint64_t mask = detail::below_or_del_mask<0x21>(detail::load_le(p));
    if (mask != 0) return p + detail::first_flagged(mask);
    p += 8;
  }
  while (p != end && static_cast<unsigned char>(*p) > 0x20 && *p != 0x7F) ++p;
  return p;
}

// The first byte in [p, end) that is not a tchar, or end. (Byte by byte: field names are mostly
// shorter than a word, and ANDing eight table lookups per word measured no faster.)
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
