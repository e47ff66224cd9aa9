#include "core/quote.h"

#include <cstddef>

namespace proxer {

namespace {
constexpr std::size_t kMaxQuoted = 64;
}  // namespace

std::string quote(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  const auto shown = value.substr(0, kMaxQuoted);
  for (char c : shown) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (shown.size() < value.size()) out += "...";
  out += '"';
  return out;
}

}  // namespace proxer
