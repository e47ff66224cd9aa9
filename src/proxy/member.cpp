#include "proxy/member.h"

namespace proxer::proxy {

namespace {

// splitmix64's finaliser: spreads the bits of key ^ member id (rendezvous scores).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::optional<std::size_t> pick_member(std::span<const Member> m, Lb lb, std::uint64_t key,
                                       std::size_t& cursor) {
  const std::size_t n = m.size();
  std::size_t usable = 0;
  for (const auto& e : m) usable += e.usable ? 1 : 0;
  if (usable == 0) return std::nullopt;
  std::optional<std::size_t> best;
  switch (lb) {
    case Lb::RoundRobin:
    case Lb::Weighted:
    case Lb::LeastRequest: {
      const bool least = lb == Lb::LeastRequest;
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (cursor + k) % n;
        if (!m[i].usable) continue;
        if (!best) {
          best = i;
          if (!least) break;
        } else if (m[i].active < m[*best].active) {
          best = i;
        }
      }
      cursor = (*best + 1) % n;
      return best;
    }
    case Lb::Random: {
      std::size_t skip = static_cast<std::size_t>(key % usable);
      for (std::size_t i = 0; i < n; ++i) {
        if (!m[i].usable) continue;
        if (skip-- == 0) return i;
      }
      return std::nullopt;  // not reached: `usable` members exist
    }
    case Lb::IpHash:
    case Lb::RingHash: {
      std::uint64_t best_score = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (!m[i].usable) continue;
        const auto score = mix(key ^ m[i].id);
        if (!best || score > best_score) {
          best = i;
          best_score = score;
        }
      }
      return best;
    }
  }
  return std::nullopt;
}

}  // namespace proxer::proxy
