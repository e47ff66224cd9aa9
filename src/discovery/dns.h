#pragma once
// DNS discovery with c-ares, driven by the executor (no helper thread, no polling): c-ares tells
// which sockets to watch through its socket-state callback, each socket waits in a
// posix::stream_descriptor, and ares_timeout() arms a steady_timer for retransmissions.
//
// What a resolution yields:
// - A / AAAA / A+AAAA: one Target per address, with `port` and weight 1.
// - SRV: one Target per record of the lowest priority value, with the record's target host name
//   (not resolved here: the proxy resolves it when it connects, and TLS keeps the name to verify),
//   its port, and its weight clamped to 1-1000 (SRV weight 0 counts as 1). Records of higher
//   priority values are backups, left out. A target of "." (service decidedly absent) is no
//   endpoint.
// - A successful answer with no records (NOERROR/NODATA) and NXDOMAIN are authoritative: they
//   give an empty set (NXDOMAIN is logged once). A timeout, SERVFAIL, REFUSED, an unreachable
//   server or a malformed answer is an error: the last set stays, and the query is retried with
//   backoff from min_refresh up to min(max_refresh, 30 s).
// - The next resolution runs when the smallest TTL of the answer expires (the answer records, or
//   the authority records of an empty answer), clamped to [min_refresh, max_refresh]; with no
//   TTL at all, after min_refresh.
//
// The system resolver configuration (/etc/resolv.conf: servers, search list, ndots) is read once,
// at start(). A name ending in '.' is not expanded with the search list. /etc/hosts is not used.
#include <chrono>
#include <memory>
#include <string>

#include "core/asio.h"
#include "discovery/provider.h"

namespace proxer::discovery {

enum class DnsType { A, AAAA, A_AAAA, SRV };

struct DnsOptions {
  std::string name;        // the name to resolve ("web.internal", "_http._tcp.web.internal")
  std::uint16_t port = 0;  // the targets' port for A/AAAA/A_AAAA (required); unused for SRV
  DnsType type = DnsType::A;
  std::string nameserver;  // "127.0.0.1:5353", "[::1]:53", "10.0.0.2" (port 53); "" = system
  std::chrono::milliseconds min_refresh{1'000};    // lower bound of the TTL-driven refresh
  std::chrono::milliseconds max_refresh{300'000};  // upper bound (also for huge TTLs)
  std::chrono::milliseconds query_timeout{5'000};  // one whole resolution, retries included
};

// Parses "a", "aaaa", "a+aaaa" (or "any") and "srv" (any case). False if unknown.
bool parse_dns_type(std::string_view s, DnsType& out);

// "" when the options are usable, else the first problem ("dns: name is empty").
std::string validate(const DnsOptions& opts);

class DnsProvider final : public Provider {
 public:
  // Throws std::invalid_argument with validate()'s message for unusable options.
  DnsProvider(net::any_io_executor ex, DnsOptions opts);
  ~DnsProvider() override;
  void start(OnUpdate on_update) override;
  void stop() override;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The smallest TTL of the answer records of a raw DNS message, or of its authority records when
// the answer section is empty; nullopt when the message has neither or is malformed. Exposed for
// tests; c-ares 1.18's SRV parser reports no TTL, so every type takes its TTL from here.
std::optional<std::uint32_t> min_ttl(const unsigned char* msg, std::size_t len);

}  // namespace proxer::discovery
