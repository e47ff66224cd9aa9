#pragma once
// Circuit breaking as counted resources (Envoy's model): a cluster has a limit on upstream
// connections, requests waiting for a connection, requests in flight and retries in flight. A
// request that would go over a limit is refused at once (the caller answers 503) instead of
// queueing behind an upstream that is already saturated. No time windows, no state machine: the
// breaker is "open" for a resource exactly while that resource is at its limit.
//
// A slot is held by a Token (RAII, move-only): acquiring counts it, destroying (or release())
// gives it back, so a coroutine that is cancelled or throws cannot leak a slot.
//
// Lifetime rule: a Token points at its breaker, so the breaker must outlive every Token it
// handed out. The breaker is neither copyable nor movable, so its address is stable; whoever
// owns it (the Cluster) must be kept alive by the requests holding tokens, e.g. across a config
// reload that replaces the cluster. Single-threaded, like the Cluster.
//
// A limit of 0 refuses every acquisition of that resource (max_retries = 0: no retries at all).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "config/config.h"

namespace proxer::proxy {

class CircuitBreaker {
 public:
  enum class Resource : std::uint8_t { Connections, Pending, Requests, Retries };
  static constexpr std::size_t kResources = 4;

  // One held slot of one resource. Move-only; an empty (moved-from or released) token holds
  // nothing and releases nothing.
  class Token {
   public:
    Token(Token&& other) noexcept : breaker_(other.breaker_), resource_(other.resource_) {
      other.breaker_ = nullptr;
    }
    Token& operator=(Token&& other) noexcept;
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    ~Token() { release(); }

    // Gives the slot back now (e.g. a pending request got its connection). Idempotent.
    void release();
    bool held() const { return breaker_ != nullptr; }
    Resource resource() const { return resource_; }

   private:
    friend class CircuitBreaker;
    Token(CircuitBreaker* breaker, Resource resource) : breaker_(breaker), resource_(resource) {}
    CircuitBreaker* breaker_;
    Resource resource_;
  };

  explicit CircuitBreaker(const config::BreakerConfig& cfg);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // A slot of `r`, or nullopt when `r` is at its limit (and overflow(r) counts the refusal).
  std::optional<Token> try_acquire(Resource r);

  // At the limit: the next try_acquire(r) would fail (a gauge for stats).
  bool open(Resource r) const { return active(r) >= limit(r); }
  std::uint32_t active(Resource r) const { return active_[index(r)]; }
  std::uint32_t limit(Resource r) const { return limit_[index(r)]; }
  // Refused acquisitions since construction.
  std::uint64_t overflow(Resource r) const { return overflow_[index(r)]; }

 private:
  static std::size_t index(Resource r) { return static_cast<std::size_t>(r); }

  std::array<std::uint32_t, kResources> limit_;
  std::array<std::uint32_t, kResources> active_{};
  std::array<std::uint64_t, kResources> overflow_{};
};

}  // namespace proxer::proxy
