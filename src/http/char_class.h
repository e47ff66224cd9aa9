#pragma once
// Character classes of RFC 9110 §5.6.2 (token) and §5.5 (field values) as one lookup table, so
// the per-byte checks on the request path are a load and a mask. Internal to src/http.
#include <array>
#include <cstdint>
#include <string_view>

namespace proxer::http::chars {

inline constexpr std::uint8_t kToken = 0x01;       // tchar
inline constexpr std::uint8_t kFieldValue = 0x02;  // HTAB, SP, VCHAR, obs-text
inline constexpr std::uint8_t kWhitespace = 0x04;  // SP, HTAB (OWS)

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

inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

inline char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// ASCII case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
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
