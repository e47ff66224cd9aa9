#include "proxy/balancer.h"

#include <algorithm>

namespace proxer::proxy {

namespace {
constexpr std::uint32_t kRingPointsPerWeight = 100;
}  // namespace

std::optional<Lb> parse_lb(std::string_view name) {
  if (name == "round_robin") return Lb::RoundRobin;
  if (name == "weighted") return Lb::Weighted;
  if (name == "least_request") return Lb::LeastRequest;
  if (name == "random") return Lb::Random;
  if (name == "ip_hash") return Lb::IpHash;
  if (name == "ring_hash") return Lb::RingHash;
  return std::nullopt;
}

std::uint64_t hash64(std::string_view data) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  // FNV's low bits mix poorly for short keys; finish with a 64-bit avalanche (murmur3 fmix).
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

Balancer::Balancer(Lb lb, std::vector<Endpoint> endpoints, std::uint64_t seed)
    : lb_(lb), endpoints_(std::move(endpoints)), current_(endpoints_.size(), 0), rng_(seed) {
  if (lb_ == Lb::RingHash) {
    for (std::size_t i = 0; i < endpoints_.size(); ++i) {
      const std::uint32_t points =
          kRingPointsPerWeight * std::max<std::uint32_t>(1, endpoints_[i].weight);
      for (std::uint32_t p = 0; p < points; ++p) {
        ring_.emplace_back(hash64(endpoints_[i].id + "#" + std::to_string(p)), i);
      }
    }
    std::sort(ring_.begin(), ring_.end());
  }
}

std::optional<std::size_t> Balancer::pick(std::span<const Candidate> c, std::uint64_t key) {
  const std::size_t n = std::min(c.size(), endpoints_.size());
  if (n == 0) return std::nullopt;
  switch (lb_) {
    case Lb::RoundRobin:
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t idx = (cursor_ + i) % n;
        if (c[idx].usable) {
          cursor_ = idx + 1;
          return idx;
        }
      }
      return std::nullopt;
    case Lb::Weighted:
      return pick_weighted(c.first(n));
    case Lb::Random:
      return pick_random(c.first(n));
    case Lb::LeastRequest:
      return pick_least(c.first(n));
    case Lb::IpHash: {
      std::vector<std::size_t> usable;
      for (std::size_t i = 0; i < n; ++i) {
        if (c[i].usable) usable.push_back(i);
      }
      if (usable.empty()) return std::nullopt;
      return usable[key % usable.size()];
    }
    case Lb::RingHash:
      return pick_ring(c.first(n), key);
  }
  return std::nullopt;
}

std::optional<std::size_t> Balancer::pick_weighted(std::span<const Candidate> c) {
  // Each pick, every usable endpoint gains its weight; the richest is chosen and pays the total.
  std::int64_t total = 0;
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!c[i].usable) continue;
    const auto w = static_cast<std::int64_t>(endpoints_[i].weight);
    current_[i] += w;
    total += w;
    if (!best || current_[i] > current_[*best]) best = i;
  }
  if (best) current_[*best] -= total;
  return best;
}

std::optional<std::size_t> Balancer::pick_random(std::span<const Candidate> c) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i].usable) total += endpoints_[i].weight;
  }
  if (total == 0) return std::nullopt;
  std::uint64_t r = std::uniform_int_distribution<std::uint64_t>(0, total - 1)(rng_);
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!c[i].usable) continue;
    if (r < endpoints_[i].weight) return i;
    r -= endpoints_[i].weight;
  }
  return std::nullopt;
}

std::optional<std::size_t> Balancer::pick_least(std::span<const Candidate> c) {
  std::vector<std::size_t> usable;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i].usable) usable.push_back(i);
  }
  if (usable.empty()) return std::nullopt;
  if (usable.size() == 1) return usable[0];
  // Two distinct positions: the second is drawn among the others.
  const std::size_t i = std::uniform_int_distribution<std::size_t>(0, usable.size() - 1)(rng_);
  std::size_t j = std::uniform_int_distribution<std::size_t>(0, usable.size() - 2)(rng_);
  if (j >= i) ++j;
  const std::size_t a = usable[i];
  const std::size_t b = usable[j];
  // Fewer in flight per unit of weight wins; equal load goes to the heavier endpoint.
  const auto load = [&](std::size_t i) {
    return static_cast<std::uint64_t>(c[i].active) * 1000 / endpoints_[i].weight;
  };
  if (load(a) != load(b)) return load(a) < load(b) ? a : b;
  return endpoints_[a].weight >= endpoints_[b].weight ? a : b;
}

std::optional<std::size_t> Balancer::pick_ring(std::span<const Candidate> c, std::uint64_t key) {
  if (ring_.empty()) return std::nullopt;
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::pair{key, std::size_t{0}});
  for (std::size_t step = 0; step < ring_.size(); ++step, ++it) {
    if (it == ring_.end()) it = ring_.begin();
    if (it->second < c.size() && c[it->second].usable) return it->second;
  }
  return std::nullopt;
}

}  // namespace proxer::proxy
