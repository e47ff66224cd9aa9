#pragma once
// Capped exponential backoff with full jitter ("Exponential Backoff and Jitter", AWS, 2015):
// the n-th delay is uniform in [base*2^n / 2, base*2^n], capped at `max`.
#include <algorithm>
#include <chrono>
#include <random>

namespace proxer {

class Backoff {
 public:
  using duration = std::chrono::milliseconds;
  Backoff(duration base, duration max, std::uint64_t seed = std::random_device{}())
      : base_(base), max_(max), rng_(seed) {}

  duration next() {
    const auto ceiling = std::min<long long>(max_.count(), base_.count() << std::min(attempt_, 20));
    ++attempt_;
    std::uniform_int_distribution<long long> dist(ceiling / 2, std::max<long long>(ceiling, 1));
    return duration(dist(rng_));
  }
  void reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  duration base_;
  duration max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace proxer
