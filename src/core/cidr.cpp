#include "core/cidr.h"

#include <algorithm>

#include "core/quote.h"

namespace proxer {

namespace ip = boost::asio::ip;

namespace {

// The longest IPv6 text ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
constexpr std::size_t kMaxAddressText = 45;

// The characters of an IPv4 or IPv6 address in text (no zone): checked before the text reaches
// inet_pton, which would stop at an embedded NUL and accept what precedes it.
bool address_chars(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
  });
}

// An address without brackets or zone: IPv4 when it has no ':', else IPv6.
std::optional<ip::address> plain_address(std::string_view text) {
  if (text.empty() || text.size() > kMaxAddressText || !address_chars(text)) return std::nullopt;
  const std::string s(text);
  boost::system::error_code ec;
  ip::address addr;
  if (s.find(':') == std::string::npos) {
    addr = ip::make_address_v4(s, ec);
  } else {
    addr = ip::make_address_v6(s, ec);
  }
  if (ec) return std::nullopt;
  return addr;
}

// 1-3 decimal digits.
std::optional<unsigned> prefix_digits(std::string_view digits) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  unsigned v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

std::optional<Cidr> fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* why) {
  const auto slash = text.find('/');
  const auto addr = plain_address(text.substr(0, slash));
  if (!addr) {
    return fail(why,
                "expected an IP address or network like \"10.0.0.0/8\" or \"2001:db8::/32\", got " +
                    quote(text));
  }
  const unsigned bits = addr->is_v4() ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string_view::npos) {
    const auto p = prefix_digits(text.substr(slash + 1));
    if (!p || *p > bits) {
      return fail(why,
                  "the prefix length of " + quote(text) + " must be 0-" + std::to_string(bits));
    }
    prefix = *p;
  }
  const auto len = static_cast<unsigned short>(prefix);
  if (addr->is_v6() && addr->to_v6().is_v4_mapped()) {
    // The IPv4 form, when the prefix covers the whole ::ffff:0:0/96 part.
    std::string v4;
    if (prefix >= 96) {
      v4 = ip::make_address_v4(ip::v4_mapped, addr->to_v6()).to_string();
      if (slash != std::string_view::npos) v4 += "/" + std::to_string(prefix - 96);
      v4 = " (" + quote(v4) + ")";
    }
    return fail(why, "write an IPv4 network in IPv4 form" + v4 + ", not as " + quote(text) +
                         ": clients seen as ::ffff:a.b.c.d are matched by their IPv4 address, "
                         "so this form would match none");
  }
  // Both readings of a text with bits beyond the prefix, for the message.
  const auto ambiguous = [&](const std::string& network) {
    return fail(why, quote(text) + " has address bits set beyond its prefix length: write " +
                         quote(network) + " for the network or " + quote(addr->to_string()) +
                         " for the one address");
  };
  if (addr->is_v4()) {
    const ip::network_v4 net(addr->to_v4(), len);
    if (net != net.canonical()) return ambiguous(net.canonical().to_string());
    return Cidr(net);
  }
  const ip::network_v6 net(addr->to_v6(), len);
  if (net != net.canonical()) return ambiguous(net.canonical().to_string());
  return Cidr(net);
}

bool Cidr::contains(const ip::address& ip) const {
  if (const auto* net = std::get_if<ip::network_v4>(&net_)) {
    ip::address_v4 a;
    if (ip.is_v4()) {
      a = ip.to_v4();
    } else if (ip.to_v6().is_v4_mapped()) {
      a = ip::make_address_v4(ip::v4_mapped, ip.to_v6());
    } else {
      return false;
    }
    return ip::network_v4(a, net->prefix_length()).canonical() == *net;
  }
  const auto& net = std::get<ip::network_v6>(net_);
  if (!ip.is_v6() || ip.to_v6().is_v4_mapped()) return false;
  const ip::address_v6 a(ip.to_v6().to_bytes());  // without the zone: the network has none
  return ip::network_v6(a, net.prefix_length()).canonical() == net;
}

unsigned Cidr::prefix_length() const {
  return std::visit([](const auto& n) -> unsigned { return n.prefix_length(); }, net_);
}

std::string Cidr::to_string() const {
  return std::visit([](const auto& n) { return n.to_string(); }, net_);
}

std::optional<ip::address> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  text = text.substr(0, text.find('%'));  // a zone ("fe80::1%eth0")
  return plain_address(text);
}

}  // namespace proxer
