#pragma once
// IP networks in CIDR notation ("10.0.0.0/8", "2001:db8::/32"): the one parser behind
// `http.trusted_proxies`, used by the config validator (for its messages) and by the request
// path (to match client addresses), so that both accept exactly the same texts. Built on
// Boost.Asio's network_v4/network_v6; no I/O.
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace proxer {

class Cidr {
 public:
  // Parses an address followed by an optional "/prefix". A bare address is a single host: a /32
  // (IPv4) or /128 (IPv6). The prefix length is 1-3 decimal digits ("/08" is 8, "/0008" is
  // refused), at most 32 or 128. Refused, with the reason in *why when given (a sentence for a
  // config error that quotes `text`):
  // - anything but that: host names, brackets ("[::1]"), zone ids ("fe80::1%eth0"), spaces,
  //   an empty prefix ("10.0.0.0/");
  // - a prefix length beyond 32 (IPv4) or 128 (IPv6);
  // - an IPv4-mapped IPv6 address ("::ffff:10.0.0.0/104", "::ffff:a00:1"): contains() matches
  //   an IPv4-mapped client as its IPv4 address, so such a network would never match anyone;
  //   the message gives the IPv4 form. Other IPv6 addresses with a dotted tail
  //   ("64:ff9b::192.0.2.0/120") are ordinary IPv6 networks;
  // - bits set beyond the prefix length ("10.0.0.1/8"): whether the network or the one host
  //   was meant is ambiguous, so nothing is guessed; the message names both readings.
  static std::optional<Cidr> parse(std::string_view text, std::string* why = nullptr);

  // Whether `ip` is in the network. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a
  // dual-stack listener sees an IPv4 client) is matched as its IPv4 address. Otherwise IPv4
  // addresses are only in IPv4 networks and IPv6 addresses only in IPv6 ones ("::/0" holds no
  // IPv4 client). An IPv6 zone (scope id) is ignored.
  bool contains(const boost::asio::ip::address& ip) const;

  bool is_v6() const { return std::holds_alternative<boost::asio::ip::network_v6>(net_); }
  unsigned prefix_length() const;
  std::string to_string() const;  // "10.0.0.0/8"; a single host keeps its "/32" or "/128"
  bool operator==(const Cidr&) const = default;

 private:
  explicit Cidr(boost::asio::ip::network_v4 n) : net_(n) {}
  explicit Cidr(boost::asio::ip::network_v6 n) : net_(n) {}
  std::variant<boost::asio::ip::network_v4, boost::asio::ip::network_v6> net_;
};

// A peer address as text: IPv4, or IPv6 with or without brackets ("[2001:db8::1]") and with or
// without a zone id ("fe80::1%eth0"; the zone is dropped). nullopt for anything else ("unknown").
std::optional<boost::asio::ip::address> parse_ip(std::string_view text);

}  // namespace proxer
