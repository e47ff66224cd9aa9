#include "proto/proxy_header.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

namespace proxer::proto {

namespace {

struct Endpoint {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};  // v4 in the first 4 bytes
  std::uint16_t port = 0;
};

std::optional<Endpoint> parse(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  std::uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (p > 65535) return std::nullopt;
  Endpoint e;
  e.port = static_cast<std::uint16_t>(p);
  const std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), e.addr.data()) == 1) return e;
  if (inet_pton(AF_INET6, h.c_str(), e.addr.data()) == 1) {
    e.v6 = true;
    return e;
  }
  return std::nullopt;
}

Endpoint to_v6(Endpoint e) {
  if (e.v6) return e;
  std::array<std::uint8_t, 16> mapped{};
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  std::memcpy(mapped.data() + 12, e.addr.data(), 4);
  e.addr = mapped;
  e.v6 = true;
  return e;
}

std::string text(const Endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.v6 ? AF_INET6 : AF_INET, e.addr.data(), buf, sizeof buf);
  return buf;
}

constexpr std::array<std::uint8_t, 12> kV2Signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

}  // namespace

std::string proxy_header(int version, std::string_view client, std::string_view server) {
  auto src = parse(client);
  auto dst = parse(server);
  if (src && dst && src->v6 != dst->v6) {
    src = to_v6(*src);
    dst = to_v6(*dst);
  }
  if (version == 1) {
    if (!src || !dst) return "PROXY UNKNOWN\r\n";
    return std::string("PROXY ") + (src->v6 ? "TCP6 " : "TCP4 ") + text(*src) + " " + text(*dst) +
           " " + std::to_string(src->port) + " " + std::to_string(dst->port) + "\r\n";
  }
  std::string out(kV2Signature.begin(), kV2Signature.end());
  if (!src || !dst) {
    out += '\x20';  // version 2, LOCAL
    out += '\x00';  // unspecified family
    out.append(2, '\0');
    return out;
  }
  const std::size_t alen = src->v6 ? 16 : 4;
  out += '\x21';                     // version 2, PROXY
  out += src->v6 ? '\x21' : '\x11';  // TCP over IPv6 / IPv4
  const auto len = static_cast<std::uint16_t>(2 * alen + 4);
  out += static_cast<char>(len >> 8);
  out += static_cast<char>(len & 0xff);
  out.append(reinterpret_cast<const char*>(src->addr.data()), alen);
  out.append(reinterpret_cast<const char*>(dst->addr.data()), alen);
  for (auto p : {src->port, dst->port}) {
    out += static_cast<char>(p >> 8);
    out += static_cast<char>(p & 0xff);
  }
  return out;
}

}  // namespace proxer::proto
