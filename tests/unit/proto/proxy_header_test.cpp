#include "proto/proxy_header.h"

#include <gtest/gtest.h>

#include "test_bytes.h"

namespace proxer::proto {
namespace {

using test_bytes::span_of;
using test_bytes::to_hex;

TEST(ProxyHeader, Version1Ipv4) {
  EXPECT_EQ(proxy_header(1, "203.0.113.7:51000", "198.51.100.1:10001"),
            "PROXY TCP4 203.0.113.7 198.51.100.1 51000 10001\r\n");
}

TEST(ProxyHeader, Version1Ipv6AndMixedFamilies) {
  EXPECT_EQ(proxy_header(1, "[2001:db8::7]:443", "[::1]:10001"),
            "PROXY TCP6 2001:db8::7 ::1 443 10001\r\n");
  // An IPv4 client on an IPv6 listener (or the reverse): both written as IPv6, v4 mapped.
  EXPECT_EQ(proxy_header(1, "192.0.2.1:5", "[::]:10001"),
            "PROXY TCP6 ::ffff:192.0.2.1 :: 5 10001\r\n");
}

TEST(ProxyHeader, Version1UnknownWhenAnAddressIsMissingOrNotIp) {
  EXPECT_EQ(proxy_header(1, "", "127.0.0.1:1"), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(proxy_header(1, "host.example:80", "127.0.0.1:1"), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(proxy_header(1, "1.2.3.4:70000", "127.0.0.1:1"), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(proxy_header(1, "1.2.3.4", "127.0.0.1:1"), "PROXY UNKNOWN\r\n");
}

TEST(ProxyHeader, Version2Ipv4IsTheSpecLayout) {
  const auto h = proxy_header(2, "203.0.113.7:51000", "198.51.100.1:10001");
  EXPECT_EQ(to_hex(span_of(h)),
            "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a "  // signature
            "21 11 00 0c "                          // v2 PROXY, TCP/IPv4, 12 bytes follow
            "cb 00 71 07 c6 33 64 01 "              // 203.0.113.7, 198.51.100.1
            "c7 38 27 11");                         // 51000, 10001
}

TEST(ProxyHeader, Version2Ipv6) {
  const auto h = proxy_header(2, "[2001:db8::7]:443", "[::1]:10001");
  ASSERT_EQ(h.size(), 16u + 36u);
  EXPECT_EQ(static_cast<unsigned char>(h[12]), 0x21);
  EXPECT_EQ(static_cast<unsigned char>(h[13]), 0x21);  // TCP over IPv6
  EXPECT_EQ(static_cast<unsigned char>(h[14]), 0x00);
  EXPECT_EQ(static_cast<unsigned char>(h[15]), 36);
  EXPECT_EQ(static_cast<unsigned char>(h[16]), 0x20);       // 2001:...
  EXPECT_EQ(static_cast<unsigned char>(h[16 + 31]), 0x01);  // ...::1
  EXPECT_EQ(static_cast<unsigned char>(h[48]), 0x01);       // port 443 = 0x01bb
  EXPECT_EQ(static_cast<unsigned char>(h[49]), 0xbb);
}

TEST(ProxyHeader, Version2LocalWhenUnknown) {
  EXPECT_EQ(to_hex(span_of(proxy_header(2, "", ""))),
            "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a 20 00 00 00");
}

}  // namespace
}  // namespace proxer::proto
