#pragma once
// Service discovery: a Provider produces the endpoint set of one cluster (DNS, etcd v3, a watched
// file) and reports it whenever it changes. Providers are confined to one executor (the gateway's
// single loop) like the rest of proxer: construct, start and stop them on that executor's thread.
//
//   discovery::DnsProvider dns(ioc.get_executor(), {.name = "web.internal", .port = 8080});
//   dns.start([&](const std::vector<discovery::Target>& set) { cluster.replace(set); });
//
// The contract shared by every provider:
// - The callback receives the whole current set, sorted and deduplicated (normalize()), and only
//   when it differs from the previous one. The first successful read is always reported, even
//   when it is empty, so the caller can tell "no endpoints" from "not known yet".
// - It is never called with a transient error: when the source cannot be read, the last good set
//   stays and a warning is logged once per distinct error; the recovery is logged at info.
// - It runs on the provider's executor, never from inside start(), and never after stop().
//   The callback may call stop() or destroy the provider.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxer::discovery {

// The range of a weight, the same as a configured endpoint's (config: weight 1-1000).
inline constexpr std::uint32_t kMinWeight = 1;
inline constexpr std::uint32_t kMaxWeight = 1000;

struct Target {
  std::string host;  // a lower-case DNS name or an IP literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::uint32_t weight = 1;
  bool operator==(const Target&) const = default;
};

// "host:port" for logs; IPv6 literals in brackets.
std::string to_string(const Target& t);

using OnUpdate = std::function<void(const std::vector<Target>&)>;

class Provider {
 public:
  virtual ~Provider();
  // Starts discovery; `on_update` is called as described above. Call once.
  virtual void start(OnUpdate on_update) = 0;
  // Stops every read, wait and timer; no callback after it returns. Idempotent; the destructor
  // calls it.
  virtual void stop() = 0;
};

// Sorts by (host, port) and keeps one target per (host, port): the one with the largest weight.
std::vector<Target> normalize(std::vector<Target> set);

// Parses one endpoint value, as stored in etcd or written in a file:
//   "host:port", "[v6]:port"
//   {"host": "10.0.0.1", "port": 8080, "weight": 5}        (weight optional, default 1)
//   {"url": "http://10.0.0.1:8080", "weight": 5}           (http only; port default 80)
// Surrounding whitespace is ignored. Host names are lower-cased; a weight must be 1-1000.
// On failure returns nullopt and sets `*error` (when given) to a one-line reason.
std::optional<Target> parse_target(std::string_view value, std::string* error = nullptr);

}  // namespace proxer::discovery
