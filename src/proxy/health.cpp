#include "proxy/health.h"

#include <algorithm>
#include <limits>

namespace proxer::proxy {

namespace {

std::uint32_t saturating_inc(std::uint32_t v) {
  return v == std::numeric_limits<std::uint32_t>::max() ? v : v + 1;
}

}  // namespace

HealthTracker::HealthTracker(std::uint32_t healthy_threshold, std::uint32_t unhealthy_threshold)
    : healthy_threshold_(std::max<std::uint32_t>(1, healthy_threshold)),
      unhealthy_threshold_(std::max<std::uint32_t>(1, unhealthy_threshold)) {}

HealthTracker::Transition HealthTracker::record(bool passed) {
  if (passed) {
    failures_ = 0;
    passes_ = saturating_inc(passes_);
    if (!healthy_ && passes_ >= healthy_threshold_) {
      healthy_ = true;
      ++became_healthy_;
      return Transition::BecameHealthy;
    }
  } else {
    passes_ = 0;
    failures_ = saturating_inc(failures_);
    if (healthy_ && failures_ >= unhealthy_threshold_) {
      healthy_ = false;
      ++became_unhealthy_;
      return Transition::BecameUnhealthy;
    }
  }
  return Transition::None;
}

HealthTracker::Transition HealthTracker::set(bool healthy) {
  passes_ = 0;
  failures_ = 0;
  if (healthy == healthy_) return Transition::None;
  healthy_ = healthy;
  if (healthy) {
    ++became_healthy_;
    return Transition::BecameHealthy;
  }
  ++became_unhealthy_;
  return Transition::BecameUnhealthy;
}

bool status_expected(unsigned status, const config::HealthCheckConfig& cfg) {
  return std::any_of(cfg.expected_status.begin(), cfg.expected_status.end(),
                     [status](const auto& r) { return r.first <= status && status <= r.second; });
}

}  // namespace proxer::proxy
