#pragma once
// Retries: whether a failed attempt may be tried again, how long to wait first, and whether the
// cluster can afford another retry right now. Pure logic; the forwarder supplies the facts of the
// attempt, the clock and the random source.
//
// The safety rule comes before configuration and nothing overrides it: an attempt whose request
// reached an upstream (any byte of it was written) may have had an effect there, so it is
// repeated only when its method is idempotent (RFC 9110 §9.2.2) AND the whole body is still held
// to send again. An attempt whose request never left (a connect failure, or a reset or timeout
// before the first byte) had no effect and is always safe to repeat. A response (Failure::Status)
// proves the request was sent, whatever `request_sent` says.
#include <bitset>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "config/config.h"

namespace proxer::proxy {

// GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110 §9.2.2).
bool idempotent(boost::beast::http::verb method);

// How an attempt failed. ConnectFailure: no connection to the upstream (refused, connect or TLS
// handshake timeout). Reset: the connection broke before a complete response head. Timeout: no
// response head within the (per-try) deadline. Status: a response head arrived; see `status`.
enum class Failure { ConnectFailure, Reset, Timeout, Status };

struct Attempt {
  Failure failure = Failure::ConnectFailure;
  unsigned status = 0;           // the response status, for Failure::Status
  bool request_sent = false;     // any byte of the request reached the upstream
  bool body_replayable = false;  // the whole request body is still held (true when none)
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::uint32_t attempt_number = 1;  // attempts made so far, this one included (1-based)
};

// The safety rule alone (see the top of this file), independent of any configuration.
bool retry_safe(const Attempt& a);

class RetryPolicy {
 public:
  using Duration = config::Duration;

  // Parses cfg.on once. The config is expected to be valid (every token accepted by
  // validate_on); if it is not, error() says why and the policy retries nothing: a typo in
  // `on` must not silently retry something else, nor be dropped.
  explicit RetryPolicy(const config::RetryConfig& cfg);

  // nullopt when `token` is a valid `on` entry: "connect_failure", "reset", "timeout", "5xx", or
  // a status code of exactly three digits in 100..599 ("503"). Otherwise an error message naming
  // the token (without the key: callers prefix it).
  static std::optional<std::string> validate_on(const std::string& token);

  // Whether the failed attempt `a` should be tried again: retries left (attempt_number <=
  // retries; attempt 0 is a caller bug and is never retried), the failure is listed in `on`
  // ("5xx" covers 500..599, a number that one status), and retry_safe(a).
  bool should_retry(const Attempt& a) const;

  // The wait before retry number retry_index + 1 (retry_index 0 is the first retry): full
  // jitter, uniform over [0, min(backoff_max, backoff_base * 2^retry_index)] in whole
  // milliseconds, both ends included. Saturates instead of overflowing for any retry_index.
  // Draws from `rng` with an exact, portable mapping (not std::uniform_int_distribution, whose
  // results differ between standard libraries), so a seed gives the same waits everywhere.
  Duration backoff(std::uint32_t retry_index, std::mt19937_64& rng) const;

  // Whether the policy retries this kind of failure at all (ignoring attempts and safety).
  bool retries_on(Failure failure, unsigned status = 0) const;
  std::uint32_t retries() const { return retries_; }
  const std::optional<std::string>& error() const { return error_; }

 private:
  std::uint32_t retries_;
  Duration backoff_base_;
  Duration backoff_max_;
  bool on_connect_failure_ = false;
  bool on_reset_ = false;
  bool on_timeout_ = false;
  bool on_5xx_ = false;
  std::bitset<600> on_status_;  // indexed by status code, 100..599 used
  std::optional<std::string> error_;
};

// Limits retries in flight to a share of the requests in flight, so that retries cannot multiply
// the load on a cluster that is already failing (a retry storm). retry_budget_min keeps retries
// possible when traffic is light. The counters are the cluster's (every route of it), so the
// budget is too: [clusters.NAME.circuit_breaker], and the Cluster holds it.
class RetryBudget {
 public:
  explicit RetryBudget(const config::BreakerConfig& cfg)
      : percent_(cfg.retry_budget_percent), min_(cfg.retry_budget_min) {}
  RetryBudget(std::uint32_t percent, std::uint32_t min) : percent_(percent), min_(min) {}

  // Whether one more retry may start: active_retries < max(retry_budget_min,
  // floor(active_requests * retry_budget_percent / 100)), computed without overflow.
  // active_requests: requests in flight (including those waiting for a connection);
  // active_retries: retries in flight, not counting the one being asked for.
  bool allow(std::uint64_t active_requests, std::uint64_t active_retries) const;

  std::uint32_t percent() const { return percent_; }
  std::uint32_t min() const { return min_; }

 private:
  std::uint32_t percent_;
  std::uint32_t min_;
};

}  // namespace proxer::proxy
