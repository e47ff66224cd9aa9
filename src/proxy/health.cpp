#include "proxy/health.h"

#include <algorithm>
#include <limits>

#include "http/response_head.h"
#include "http/rules.h"

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

std::optional<CheckVerdict> judge_check_response(std::string_view received,
                                                 const config::HealthCheckConfig& cfg) {
  const auto failed = [](std::string reason) { return CheckVerdict{false, 0, std::move(reason)}; };
  const auto malformed = [&](const std::string& why) {
    return failed("malformed response head: " + why);
  };
  http::ResponseHead head;
  std::size_t at = 0;  // the start of the head being judged (after interim heads)
  for (;;) {
    const auto rest = received.substr(at);
    const auto end = http::find_head_end(rest);
    if (end == std::string_view::npos || at + end > kMaxCheckHead) {
      if (received.size() > kMaxCheckHead) {
        return failed("response head larger than " + std::to_string(kMaxCheckHead / 1024) + " KiB");
      }
      // A complete status line can be judged alone: as the whole of a head without fields.
      if (const auto eol = rest.find("\r\n"); eol != std::string_view::npos) {
        const auto line_only = std::string(rest.substr(0, eol)) + "\r\n\r\n";
        if (auto why = http::parse_response_head(line_only, head)) return malformed(*why);
      }
      return std::nullopt;
    }
    if (auto why = http::parse_response_head(rest.substr(0, end), head)) return malformed(*why);
    if (head.status >= 100 && head.status < 200 && head.status != 101) {
      at += end;  // interim (100 Continue, 103 Early Hints): the final head follows
      continue;
    }
    if (!status_expected(head.status, cfg)) {
      return CheckVerdict{false, head.status, "status " + std::to_string(head.status)};
    }
    return CheckVerdict{true, head.status, {}};
  }
}

}  // namespace proxer::proxy
