#pragma once
// PROXY protocol headers (HAProxy's spec, versions 1 and 2), which a TCP tunnel's agent may send
// to its local target first so that the target sees the public client's address instead of the
// agent's. Only the TCP proxy command is produced; no TLVs. No I/O.
#include <string>
#include <string_view>

namespace proxer::proto {

// The header for a connection from `client` to `server`, both "ip:port" or "[v6]:port". When
// either is missing or not an IP address, v1 says "PROXY UNKNOWN" and v2 uses the LOCAL command
// (the target then uses the connection's own addresses). Mixed families are written as IPv6,
// with the IPv4 side mapped (::ffff:a.b.c.d). `version` is 1 or 2.
std::string proxy_header(int version, std::string_view client, std::string_view server);

}  // namespace proxer::proto
