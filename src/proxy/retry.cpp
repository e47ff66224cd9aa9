#include "proxy/retry.h"

#include <algorithm>
#include <limits>

namespace proxer::proxy {

namespace bhttp = boost::beast::http;

namespace {

// A status token: exactly three digits, 100..599.
std::optional<unsigned> parse_status(const std::string& token) {
  if (token.size() != 3) return std::nullopt;
  unsigned v = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v < 100 || v > 599) return std::nullopt;
  return v;
}

// Uniform in [0, hi], by rejection sampling on the raw 64-bit draws: exact and the same with
// every standard library.
std::uint64_t uniform_inclusive(std::mt19937_64& rng, std::uint64_t hi) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  if (hi == kMax) return rng();
  const std::uint64_t range = hi + 1;
  const std::uint64_t rem = (kMax % range + 1) % range;  // 2^64 mod range
  for (;;) {
    const std::uint64_t x = rng();
    if (x <= kMax - rem) return x % range;
  }
}

}  // namespace

bool idempotent(bhttp::verb method) {
  switch (method) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::options:
    case bhttp::verb::trace:
    case bhttp::verb::put:
    case bhttp::verb::delete_:
      return true;
    default:
      return false;
  }
}

bool retry_safe(const Attempt& a) {
  const bool sent = a.request_sent || a.failure == Failure::Status;
  if (!sent) return true;
  return idempotent(a.method) && a.body_replayable;
}

RetryPolicy::RetryPolicy(const config::RetryConfig& cfg)
    : retries_(cfg.retries),
      backoff_base_(std::max(cfg.backoff_base, Duration{0})),
      backoff_max_(std::max(cfg.backoff_max, Duration{0})) {
  for (const auto& token : cfg.on) {
    if (token == "connect_failure") {
      on_connect_failure_ = true;
    } else if (token == "reset") {
      on_reset_ = true;
    } else if (token == "timeout") {
      on_timeout_ = true;
    } else if (token == "5xx") {
      on_5xx_ = true;
    } else if (auto status = parse_status(token)) {
      on_status_.set(*status);
    } else if (!error_) {
      error_ = validate_on(token);
    }
  }
}

std::optional<std::string> RetryPolicy::validate_on(const std::string& token) {
  if (token == "connect_failure" || token == "reset" || token == "timeout" || token == "5xx" ||
      parse_status(token)) {
    return std::nullopt;
  }
  return "unknown retry condition \"" + token +
         "\" (expected connect_failure, reset, timeout, 5xx or a status 100-599)";
}

bool RetryPolicy::retries_on(Failure failure, unsigned status) const {
  switch (failure) {
    case Failure::ConnectFailure:
      return on_connect_failure_;
    case Failure::Reset:
      return on_reset_;
    case Failure::Timeout:
      return on_timeout_;
    case Failure::Status:
      if (on_5xx_ && status >= 500 && status <= 599) return true;
      return status < on_status_.size() && on_status_.test(status);
  }
  return false;
}

bool RetryPolicy::should_retry(const Attempt& a) const {
  if (error_) return false;
  if (a.attempt_number == 0 || a.attempt_number > retries_) return false;
  if (!retries_on(a.failure, a.status)) return false;
  return retry_safe(a);
}

RetryPolicy::Duration RetryPolicy::backoff(std::uint32_t retry_index, std::mt19937_64& rng) const {
  const auto base = static_cast<std::uint64_t>(backoff_base_.count());
  const auto max = static_cast<std::uint64_t>(backoff_max_.count());
  std::uint64_t cap = 0;
  if (base != 0) {
    // base * 2^i > max  <=>  base > max >> i (and always once i >= 64, as base >= 1).
    cap = retry_index >= 64 || base > (max >> retry_index) ? max : base << retry_index;
  }
  return Duration{static_cast<Duration::rep>(uniform_inclusive(rng, cap))};
}

bool RetryBudget::allow(std::uint64_t active_requests, std::uint64_t active_retries) const {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  // floor(a * p / 100) with a = 100q + r is q * p + floor(r * p / 100); only q * p can overflow.
  const std::uint64_t q = active_requests / 100;
  const std::uint64_t r = active_requests % 100;
  std::uint64_t share = kMax;
  if (percent_ == 0 || q <= kMax / percent_) {
    const std::uint64_t whole = q * percent_;
    const std::uint64_t part = r * percent_ / 100;
    share = whole > kMax - part ? kMax : whole + part;
  }
  return active_retries < std::max<std::uint64_t>(min_, share);
}

}  // namespace proxer::proxy
