#include "core/cidr.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace proxer {
namespace {

namespace ip = boost::asio::ip;

// The network's text, or "!" and why it was refused.
std::string parsed(std::string_view text) {
  std::string why;
  const auto c = Cidr::parse(text, &why);
  if (!c) {
    EXPECT_FALSE(why.empty()) << text;
    return "!" + why;
  }
  EXPECT_TRUE(why.empty()) << text;
  return c->to_string();
}

ip::address addr(const char* text) {
  return ip::make_address(text);
}

bool in(const char* network, const char* address) {
  const auto c = Cidr::parse(network);
  EXPECT_TRUE(c) << network;
  return c && c->contains(addr(address));
}

TEST(Cidr, ParsesIpv4Networks) {
  EXPECT_EQ(parsed("10.0.0.0/8"), "10.0.0.0/8");
  EXPECT_EQ(parsed("0.0.0.0/0"), "0.0.0.0/0");
  EXPECT_EQ(parsed("172.16.0.0/12"), "172.16.0.0/12");
  EXPECT_EQ(parsed("192.0.2.7/32"), "192.0.2.7/32");
  EXPECT_EQ(parsed("192.0.2.6/31"), "192.0.2.6/31");
  EXPECT_EQ(parsed("10.0.0.0/08"), "10.0.0.0/8");  // at most three digits, leading zeros too
  const auto c = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->is_v6());
  EXPECT_EQ(c->prefix_length(), 8u);
}

TEST(Cidr, ParsesIpv6Networks) {
  EXPECT_EQ(parsed("2001:db8::/32"), "2001:db8::/32");
  EXPECT_EQ(parsed("::/0"), "::/0");
  EXPECT_EQ(parsed("FE80::/10"), "fe80::/10");
  EXPECT_EQ(parsed("2001:db8::1/128"), "2001:db8::1/128");
  // A dotted tail that is not IPv4-mapped is an ordinary IPv6 network (NAT64 here).
  EXPECT_EQ(parsed("64:ff9b::192.0.2.0/120"), "64:ff9b::c000:200/120");
  const auto c = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->is_v6());
  EXPECT_EQ(c->prefix_length(), 32u);
}

TEST(Cidr, ABareAddressIsOneHost) {
  EXPECT_EQ(parsed("192.0.2.7"), "192.0.2.7/32");
  EXPECT_EQ(parsed("::1"), "::1/128");
  EXPECT_EQ(Cidr::parse("192.0.2.7")->prefix_length(), 32u);
  EXPECT_EQ(Cidr::parse("::1")->prefix_length(), 128u);
  EXPECT_EQ(Cidr::parse("192.0.2.7"), Cidr::parse("192.0.2.7/32"));
  EXPECT_EQ(Cidr::parse("::1"), Cidr::parse("::1/128"));
  EXPECT_NE(Cidr::parse("192.0.2.7"), Cidr::parse("192.0.2.8"));
}

TEST(Cidr, WhyIsOptional) {
  EXPECT_FALSE(Cidr::parse("10.0.0.1/8"));
  EXPECT_FALSE(Cidr::parse("nope"));
}

// Each error says what was wrong, quoting the text (config errors show it after the key path).
TEST(Cidr, RefusesWhatIsNotAnAddress) {
  EXPECT_EQ(parsed("proxy.local"),
            "!expected an IP address or network like \"10.0.0.0/8\" or \"2001:db8::/32\", got "
            "\"proxy.local\"");
  for (std::string_view bad :
       {"", "/8", "host.example", "10.0.0", "10.0.0.256", "010.0.0.0/8", "1.2.3.4.5", " 10.0.0.0/8",
        "[::1]", "[::1]/128", "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", ":::", "g::1", "10.0.0.0 /8"}) {
    EXPECT_TRUE(parsed(bad).starts_with("!expected an IP address or network"))
        << bad << ": " << parsed(bad);
  }
  // An embedded NUL does not cut the text short, and is shown escaped.
  const std::string with_nul("10.0.0.1\0garbage", 16);
  EXPECT_FALSE(Cidr::parse(with_nul));
  EXPECT_NE(parsed(with_nul).find("got \"10.0.0.1\\x00garbage\""), std::string::npos);
  EXPECT_FALSE(Cidr::parse(std::string_view("10.0.0.0\0/8", 11)));
  EXPECT_FALSE(Cidr::parse(std::string_view("10.0.0.0/8\0", 11)));
}

TEST(Cidr, RefusesBadPrefixLengths) {
  EXPECT_EQ(parsed("10.0.0.0/33"), "!the prefix length of \"10.0.0.0/33\" must be 0-32");
  EXPECT_EQ(parsed("::/129"), "!the prefix length of \"::/129\" must be 0-128");
  for (std::string_view bad :
       {"10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/ 8",
        "10.0.0.0/8 ", "10.0.0.0/0008", "10.0.0.0/4294967304", "10.0.0.0/8/8", "0.0.0.0/100"}) {
    EXPECT_NE(parsed(bad).find("must be 0-32"), std::string::npos) << bad << ": " << parsed(bad);
  }
  for (std::string_view bad : {"::/129", "::1/", "2001:db8::/1000", "fe80::/10%eth0", "::/0x10"}) {
    EXPECT_NE(parsed(bad).find("must be 0-128"), std::string::npos) << bad << ": " << parsed(bad);
  }
}

// Host bits set beyond the prefix are refused (nothing is masked away silently), with the two
// readings in the message.
TEST(Cidr, RefusesHostBitsBeyondThePrefix) {
  EXPECT_EQ(parsed("10.0.0.1/8"),
            "!\"10.0.0.1/8\" has address bits set beyond its prefix length: write \"10.0.0.0/8\" "
            "for the network or \"10.0.0.1\" for the one address");
  EXPECT_EQ(parsed("2001:db8::1/32"),
            "!\"2001:db8::1/32\" has address bits set beyond its prefix length: write "
            "\"2001:db8::/32\" for the network or \"2001:db8::1\" for the one address");
  for (std::string_view bad :
       {"10.1.0.0/8", "192.0.2.7/31", "0.0.0.1/0", "::1/127", "::1/0", "128.0.0.0/0", "8000::/0"}) {
    EXPECT_NE(parsed(bad).find("has address bits set beyond its prefix length"), std::string::npos)
        << bad << ": " << parsed(bad);
  }
}

TEST(Cidr, RefusesIpv4MappedNetworksAndGivesTheIpv4Form) {
  EXPECT_EQ(parsed("::ffff:10.0.0.1"),
            "!write an IPv4 network in IPv4 form (\"10.0.0.1\"), not as \"::ffff:10.0.0.1\": "
            "clients seen as ::ffff:a.b.c.d are matched by their IPv4 address, so this form "
            "would match none");
  EXPECT_TRUE(parsed("::ffff:10.0.0.0/104")
                  .starts_with("!write an IPv4 network in IPv4 form (\"10.0.0.0/8\"), not as "
                               "\"::ffff:10.0.0.0/104\""));
  EXPECT_TRUE(
      parsed("::ffff:a00:1").starts_with("!write an IPv4 network in IPv4 form (\"10.0.0.1\")"));
  EXPECT_TRUE(
      parsed("::FFFF:0:0/96").starts_with("!write an IPv4 network in IPv4 form (\"0.0.0.0/0\")"));
  EXPECT_TRUE(parsed("::ffff:10.0.0.1/128")
                  .starts_with("!write an IPv4 network in IPv4 form (\"10.0.0.1/32\")"));
  // A prefix shorter than the mapped part has no IPv4 form to suggest.
  EXPECT_TRUE(parsed("::ffff:0:0/90")
                  .starts_with("!write an IPv4 network in IPv4 form, not as \"::ffff:0:0/90\""));
  // A bad prefix length is reported first.
  EXPECT_NE(parsed("::ffff:10.0.0.1/129").find("must be 0-128"), std::string::npos);
}

TEST(Cidr, ContainsIpv4) {
  EXPECT_TRUE(in("10.0.0.0/8", "10.0.0.0"));
  EXPECT_TRUE(in("10.0.0.0/8", "10.255.255.255"));
  EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.0"));
  EXPECT_FALSE(in("10.0.0.0/8", "9.255.255.255"));
  EXPECT_TRUE(in("192.0.2.6/31", "192.0.2.7"));
  EXPECT_FALSE(in("192.0.2.6/31", "192.0.2.8"));
  // Other IPv6 addresses are never in an IPv4 network, whatever their low bits.
  EXPECT_FALSE(in("10.0.0.0/8", "::a01:203"));
  EXPECT_FALSE(in("10.0.0.0/8", "2001:db8::1"));
}

TEST(Cidr, ContainsIpv6) {
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8::1"));
  EXPECT_TRUE(in("2001:db8::/32", "2001:db8:ffff:ffff::1"));
  EXPECT_FALSE(in("2001:db8::/32", "2001:db9::1"));
  EXPECT_FALSE(in("2001:db8::/32", "10.0.0.1"));
  EXPECT_TRUE(in("64:ff9b::192.0.2.0/120", "64:ff9b::c000:2ff"));
  // A zone (scope id) does not keep a link-local address out of its network.
  ip::address_v6 scoped = ip::make_address_v6("fe80::1");
  scoped.scope_id(2);
  EXPECT_TRUE(Cidr::parse("fe80::/10")->contains(ip::address(scoped)));
}

// An IPv4 client on a dual-stack listener (::ffff:a.b.c.d) is matched as its IPv4 address.
TEST(Cidr, ContainsIpv4MappedClientsAsIpv4) {
  EXPECT_TRUE(in("10.0.0.0/8", "::ffff:10.1.2.3"));
  EXPECT_FALSE(in("10.0.0.0/8", "::ffff:11.1.2.3"));
  EXPECT_TRUE(in("192.0.2.7", "::ffff:192.0.2.7"));
  EXPECT_TRUE(in("0.0.0.0/0", "::ffff:203.0.113.9"));
  // ...and so is never in an IPv6 network, not even ::/0.
  EXPECT_FALSE(in("::/0", "::ffff:203.0.113.9"));
  EXPECT_FALSE(in("::/96", "::ffff:203.0.113.9"));
}

TEST(Cidr, ContainsWithPrefixZero) {
  for (const char* a : {"0.0.0.0", "10.1.2.3", "255.255.255.255", "::ffff:1.2.3.4"}) {
    EXPECT_TRUE(in("0.0.0.0/0", a)) << a;
  }
  EXPECT_FALSE(in("0.0.0.0/0", "::1"));
  for (const char* a : {"::", "::1", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}) {
    EXPECT_TRUE(in("::/0", a)) << a;
  }
  EXPECT_FALSE(in("::/0", "203.0.113.9"));
}

TEST(Cidr, ContainsWithAFullPrefix) {
  EXPECT_TRUE(in("192.0.2.7/32", "192.0.2.7"));
  EXPECT_FALSE(in("192.0.2.7/32", "192.0.2.6"));
  EXPECT_FALSE(in("192.0.2.7/32", "192.0.2.8"));
  EXPECT_TRUE(in("255.255.255.255/32", "255.255.255.255"));
  EXPECT_TRUE(in("2001:db8::1/128", "2001:db8::1"));
  EXPECT_FALSE(in("2001:db8::1/128", "2001:db8::"));
  EXPECT_FALSE(in("2001:db8::1/128", "2001:db8::2"));
  EXPECT_TRUE(in("::1", "::1"));
  EXPECT_FALSE(in("::1", "127.0.0.1"));
}

TEST(ParseIp, AcceptsPeerAddressForms) {
  EXPECT_EQ(parse_ip("10.1.2.3"), addr("10.1.2.3"));
  EXPECT_EQ(parse_ip("2001:db8::1"), addr("2001:db8::1"));
  EXPECT_EQ(parse_ip("[2001:db8::1]"), addr("2001:db8::1"));
  EXPECT_EQ(parse_ip("fe80::1%eth0"), addr("fe80::1"));
  EXPECT_EQ(parse_ip("[fe80::1%2]"), addr("fe80::1"));
  EXPECT_EQ(parse_ip("::ffff:10.9.8.7"), addr("::ffff:10.9.8.7"));
  for (std::string_view bad : {"", "unknown", "[]", "[10.0.0.1", "10.0.0.1/32", " 10.0.0.1",
                               "10.0.0.1:80", "%eth0", "010.0.0.1"}) {
    EXPECT_FALSE(parse_ip(bad)) << bad;
  }
  EXPECT_FALSE(parse_ip(std::string_view("10.0.0.1\0x", 10)));
}

}  // namespace
}  // namespace proxer
