#pragma once
// Active health checking, the decision half: what one endpoint's check results mean. The checker
// (gateway side) sends the probes on its timer and feeds each outcome here; this class only keeps
// the two runs and the verdict. Pure logic, no clock: a check's outcome is all it needs.
//
// Hysteresis: one failed probe must not take an endpoint out of rotation, and one lucky probe
// must not put a flapping one back, so a verdict changes only after a run of equal outcomes.
//   - starts healthy, so traffic flows before the first check has finished;
//   - healthy -> unhealthy after `unhealthy_threshold` failures in a row;
//   - unhealthy -> healthy after `healthy_threshold` passes in a row;
//   - a pass ends the run of failures and a failure ends the run of passes;
//   - record() reports a transition exactly once, on the outcome that causes it.
// A threshold of 0 is treated as 1 (the config validator should reject 0).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace proxer::proxy {

class HealthTracker {
 public:
  enum class Transition { None, BecameHealthy, BecameUnhealthy };

  explicit HealthTracker(const config::HealthCheckConfig& cfg)
      : HealthTracker(cfg.healthy_threshold, cfg.unhealthy_threshold) {}
  HealthTracker(std::uint32_t healthy_threshold, std::uint32_t unhealthy_threshold);

  // One check's outcome (passed: a response head arrived in time with an expected status).
  Transition record(bool passed);
  // Sets the verdict outright, for a verdict derived from others' (a pooled tunnel endpoint is
  // healthy while one of its members is): a change is reported and counted as record() does, and
  // ends both runs, so a later record() starts counting afresh.
  Transition set(bool healthy);

  bool healthy() const { return healthy_; }
  std::uint32_t consecutive_passes() const { return passes_; }
  std::uint32_t consecutive_failures() const { return failures_; }
  // Transitions since construction (for stats).
  std::uint64_t became_healthy_total() const { return became_healthy_; }
  std::uint64_t became_unhealthy_total() const { return became_unhealthy_; }

 private:
  std::uint32_t healthy_threshold_;
  std::uint32_t unhealthy_threshold_;
  bool healthy_ = true;
  std::uint32_t passes_ = 0;    // current run of passes (saturates)
  std::uint32_t failures_ = 0;  // current run of failures (saturates)
  std::uint64_t became_healthy_ = 0;
  std::uint64_t became_unhealthy_ = 0;
};

// Whether a check's response status is accepted: inside one of `cfg.expected_status`'s inclusive
// ranges. An empty list accepts nothing (every check fails); the validator should reject it.
bool status_expected(unsigned status, const config::HealthCheckConfig& cfg);

// The most a check reads of response heads (interim 1xx heads included); beyond it, without a
// complete final head, the check fails.
constexpr std::size_t kMaxCheckHead = 16 * 1024;

// The verdict on the response to one HTTP check.
struct CheckVerdict {
  bool passed = false;
  unsigned status = 0;  // the final response's status; 0 when no head was accepted
  std::string reason;   // why it failed ("status 503", "malformed response head: ..."); "" passed
  bool operator==(const CheckVerdict&) const = default;
};

// Judges the response to an HTTP check from the bytes received so far (`received` starts at the
// response's first byte). nullopt while more bytes may still decide: the caller reads on, under
// its deadline, and calls again. Each head is checked by http::parse_response_head (the status
// line is "HTTP/1.x" SP three digits, then SP and a reason or nothing, so "HTTP/1.1 200" passes;
// framing rules as for relayed responses). Interim 1xx heads (not 101) are skipped. The check:
//  - passes on a final head whose status `cfg` expects; the body is never looked at;
//  - fails on a status it does not expect, on a malformed head (as soon as a malformed status
//    line is complete, without waiting for the rest of the head), and when kMaxCheckHead bytes
//    hold no complete final head.
// Pure: the caller does the I/O, the deadline and the end-of-stream message.
std::optional<CheckVerdict> judge_check_response(std::string_view received,
                                                 const config::HealthCheckConfig& cfg);

}  // namespace proxer::proxy
