// Retry decisions: the idempotent set, parsing of `on`, attempt counting, the safety rule over
// every verb x failure x sent x replayable combination, backoff bounds and growth (fixed seed),
// and the budget at its boundaries, overflow included, read from the cluster's circuit_breaker.
#include "proxy/retry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "proxy/cluster.h"

namespace proxer::proxy {
namespace {

using namespace std::chrono_literals;
namespace bhttp = boost::beast::http;
using Duration = RetryPolicy::Duration;

std::vector<bhttp::verb> all_verbs() {
  std::vector<bhttp::verb> out;
  for (int v = static_cast<int>(bhttp::verb::unknown); v <= static_cast<int>(bhttp::verb::unlink);
       ++v) {
    out.push_back(static_cast<bhttp::verb>(v));
  }
  return out;
}

// Written out here rather than calling idempotent(): RFC 9110 §9.2.2.
const std::set<bhttp::verb> kIdempotent{bhttp::verb::get,     bhttp::verb::head,
                                        bhttp::verb::options, bhttp::verb::trace,
                                        bhttp::verb::put,     bhttp::verb::delete_};

config::RetryConfig retry_cfg(std::vector<std::string> on, std::uint32_t retries = 1) {
  config::RetryConfig c;
  c.on = std::move(on);
  c.retries = retries;
  return c;
}

Attempt attempt(Failure f, bhttp::verb m, bool sent, bool replayable, unsigned status = 0,
                std::uint32_t number = 1) {
  Attempt a;
  a.failure = f;
  a.method = m;
  a.request_sent = sent;
  a.body_replayable = replayable;
  a.status = status;
  a.attempt_number = number;
  return a;
}

TEST(Retry, IdempotentMethodsAreExactlyRfc9110s) {
  const auto verbs = all_verbs();
  ASSERT_GT(verbs.size(), 30u);
  for (auto v : verbs) {
    EXPECT_EQ(idempotent(v), kIdempotent.count(v) == 1) << bhttp::to_string(v);
  }
}

TEST(Retry, ValidateOnAcceptsTheKnownTokensAndStatusCodes) {
  for (const char* ok :
       {"connect_failure", "reset", "timeout", "5xx", "100", "429", "503", "599"}) {
    EXPECT_EQ(RetryPolicy::validate_on(ok), std::nullopt) << ok;
  }
  for (const char* bad : {"", "5XX", "4xx", "connect-failure", "Reset", "timeout ", "099", "99",
                          "600", "0503", "5031", "50a", "-503", "+503", "refused"}) {
    const auto err = RetryPolicy::validate_on(bad);
    ASSERT_TRUE(err) << bad;
    EXPECT_NE(err->find(std::string("\"") + bad + "\""), std::string::npos) << *err;
  }
}

TEST(Retry, AnInvalidTokenIsAnErrorAndThePolicyRetriesNothing) {
  const RetryPolicy p(retry_cfg({"connect_failure", "5xx", "bogus", "also-bogus"}, 5));
  ASSERT_TRUE(p.error());
  EXPECT_NE(p.error()->find("\"bogus\""), std::string::npos);
  EXPECT_FALSE(p.should_retry(attempt(Failure::ConnectFailure, bhttp::verb::get, false, true)));
  EXPECT_FALSE(p.should_retry(attempt(Failure::Status, bhttp::verb::get, true, true, 503)));
  EXPECT_FALSE(RetryPolicy(retry_cfg({"5xx", "503"})).error());
}

TEST(Retry, OnSelectsTheFailureKinds) {
  const RetryPolicy def{config::RetryConfig{}};  // on = ["connect_failure"]
  EXPECT_TRUE(def.retries_on(Failure::ConnectFailure));
  EXPECT_FALSE(def.retries_on(Failure::Reset));
  EXPECT_FALSE(def.retries_on(Failure::Timeout));
  EXPECT_FALSE(def.retries_on(Failure::Status, 503));

  const RetryPolicy fivexx(retry_cfg({"5xx"}));
  EXPECT_FALSE(fivexx.retries_on(Failure::ConnectFailure));
  EXPECT_FALSE(fivexx.retries_on(Failure::Status, 499));
  EXPECT_TRUE(fivexx.retries_on(Failure::Status, 500));
  EXPECT_TRUE(fivexx.retries_on(Failure::Status, 599));
  EXPECT_FALSE(fivexx.retries_on(Failure::Status, 600));

  const RetryPolicy codes(retry_cfg({"503", "429", "reset", "timeout"}));
  std::vector<unsigned> statuses;
  for (unsigned s = 0; s < 1000; ++s) {
    if (codes.retries_on(Failure::Status, s)) statuses.push_back(s);
  }
  EXPECT_EQ(statuses, (std::vector<unsigned>{429, 503}));
  EXPECT_TRUE(codes.retries_on(Failure::Reset));
  EXPECT_TRUE(codes.retries_on(Failure::Timeout));
  EXPECT_FALSE(codes.retries_on(Failure::ConnectFailure));

  const RetryPolicy none(retry_cfg({}));
  EXPECT_FALSE(none.error());
  EXPECT_FALSE(none.retries_on(Failure::ConnectFailure));
}

TEST(Retry, StopsWhenRetriesAreExhausted) {
  const RetryPolicy p(retry_cfg({"connect_failure"}, 2));
  std::vector<bool> got;
  for (std::uint32_t n = 0; n <= 4; ++n) {
    got.push_back(
        p.should_retry(attempt(Failure::ConnectFailure, bhttp::verb::get, false, true, 0, n)));
  }
  // Attempt 0 is a caller bug; attempts 1 and 2 may be followed by a retry; 3 = 1 + 2 retries.
  EXPECT_EQ(got, (std::vector<bool>{false, true, true, false, false}));
  const RetryPolicy zero(retry_cfg({"connect_failure"}, 0));
  EXPECT_FALSE(zero.should_retry(attempt(Failure::ConnectFailure, bhttp::verb::get, false, true)));
}

TEST(Retry, SafetyRuleHoldsForEveryVerbFailureAndFlag) {
  // Everything retryable by configuration, many retries left: only the safety rule decides.
  const RetryPolicy p(retry_cfg({"connect_failure", "reset", "timeout", "5xx"}, 10));
  int retried = 0, refused = 0;
  for (auto v : all_verbs()) {
    for (Failure f : {Failure::ConnectFailure, Failure::Reset, Failure::Timeout, Failure::Status}) {
      for (bool sent : {false, true}) {
        for (bool replayable : {false, true}) {
          const Attempt a = attempt(f, v, sent, replayable, 503, 1);
          const bool reached_upstream = sent || f == Failure::Status;
          const bool expected = !reached_upstream || (kIdempotent.count(v) == 1 && replayable);
          const bool got = p.should_retry(a);
          EXPECT_EQ(got, expected) << bhttp::to_string(v) << " failure " << static_cast<int>(f)
                                   << " sent " << sent << " replayable " << replayable;
          EXPECT_EQ(retry_safe(a), expected);
          // The rule itself, stated as an invariant.
          if (got && reached_upstream) {
            EXPECT_TRUE(kIdempotent.count(v) == 1 && replayable);
          }
          (got ? retried : refused)++;
        }
      }
    }
  }
  // Per verb, of 16 combinations: the 3 kinds that can fail before sending, unsent, either
  // replayable flag (6) are always retried; an idempotent verb adds the sent + replayable ones:
  // 3 kinds sent, and Status (sent by definition) with either request_sent flag (5).
  const int verbs = static_cast<int>(all_verbs().size());
  EXPECT_EQ(retried, verbs * 6 + 6 * 5);
  EXPECT_EQ(retried + refused, verbs * 16);
}

TEST(Retry, SafetyExamples) {
  const RetryPolicy p(retry_cfg({"connect_failure", "reset", "timeout", "5xx"}, 3));
  // A POST that never left: safe.
  EXPECT_TRUE(p.should_retry(attempt(Failure::ConnectFailure, bhttp::verb::post, false, false)));
  // A POST that reached the upstream: never, whatever else holds.
  EXPECT_FALSE(p.should_retry(attempt(Failure::Reset, bhttp::verb::post, true, true)));
  EXPECT_FALSE(p.should_retry(attempt(Failure::ConnectFailure, bhttp::verb::patch, true, true)));
  // A PUT whose streamed body is gone: no.
  EXPECT_FALSE(p.should_retry(attempt(Failure::Timeout, bhttp::verb::put, true, false)));
  EXPECT_TRUE(p.should_retry(attempt(Failure::Timeout, bhttp::verb::put, true, true)));
  // A response proves the request was sent, even if the caller says otherwise.
  EXPECT_FALSE(p.should_retry(attempt(Failure::Status, bhttp::verb::post, false, true, 503)));
  EXPECT_TRUE(p.should_retry(attempt(Failure::Status, bhttp::verb::get, false, true, 503)));
  EXPECT_FALSE(p.should_retry(attempt(Failure::Status, bhttp::verb::get, true, true, 404)));
}

// backoff_base 25ms, backoff_max 250ms (the defaults).
TEST(Retry, BackoffIsFullJitterUnderADoublingCap) {
  const RetryPolicy p{config::RetryConfig{}};
  std::mt19937_64 rng(42);
  const std::vector<std::pair<std::uint32_t, std::int64_t>> caps{
      {0, 25}, {1, 50}, {2, 100}, {3, 200}, {4, 250}, {5, 250}, {30, 250}};
  for (auto [index, cap] : caps) {
    std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = -1, sum = 0;
    constexpr int kDraws = 4000;
    for (int i = 0; i < kDraws; ++i) {
      const auto d = p.backoff(index, rng).count();
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      sum += d;
    }
    EXPECT_EQ(lo, 0) << index;    // both ends are reached...
    EXPECT_EQ(hi, cap) << index;  // ...and never passed
    EXPECT_NEAR(static_cast<double>(sum) / kDraws, static_cast<double>(cap) / 2.0,
                static_cast<double>(cap) * 0.05)
        << index;
  }
}

TEST(Retry, BackoffCapIsTheDoubledBaseWhenThatIsBelowTheMax) {
  // base 25, max 101: retry index 2 doubles to exactly 100, one below the max.
  config::RetryConfig c;
  c.backoff_base = 25ms;
  c.backoff_max = 101ms;
  const RetryPolicy p(c);
  std::mt19937_64 rng(5);
  const std::vector<std::pair<std::uint32_t, std::int64_t>> caps{{1, 50}, {2, 100}, {3, 101}};
  for (auto [index, cap] : caps) {
    std::int64_t hi = 0;
    for (int i = 0; i < 4000; ++i) hi = std::max(hi, p.backoff(index, rng).count());
    EXPECT_EQ(hi, cap) << index;
  }
}

TEST(Retry, BackoffNeverOverflows) {
  config::RetryConfig c;
  c.backoff_base = Duration{std::numeric_limits<Duration::rep>::max() / 4};
  c.backoff_max = Duration::max();
  const RetryPolicy p(c);
  std::mt19937_64 rng(7);
  for (std::uint32_t index :
       {0u, 1u, 2u, 3u, 62u, 63u, 64u, 65u, 1000u, std::numeric_limits<std::uint32_t>::max()}) {
    for (int i = 0; i < 50; ++i) {
      const auto d = p.backoff(index, rng);
      EXPECT_GE(d.count(), 0) << index;
      EXPECT_LE(d, Duration::max()) << index;
      if (index == 0) {
        EXPECT_LE(d, c.backoff_base);
      }
    }
  }
  // Small values with huge indices: the cap is exactly backoff_max.
  const RetryPolicy small{config::RetryConfig{}};
  for (std::uint32_t index :
       {62u, 63u, 64u, 65u, 100u, 1000u, std::numeric_limits<std::uint32_t>::max()}) {
    Duration hi{0};
    for (int i = 0; i < 4000; ++i) hi = std::max(hi, small.backoff(index, rng));
    EXPECT_EQ(hi, 250ms) << index;
  }
}

TEST(Retry, BackoffOfZeroIsZero) {
  config::RetryConfig c;
  c.backoff_base = 0ms;
  std::mt19937_64 rng(1);
  const RetryPolicy no_base(c);
  for (std::uint32_t i = 0; i < 70; ++i) EXPECT_EQ(no_base.backoff(i, rng), 0ms);
  c.backoff_base = 25ms;
  c.backoff_max = 0ms;
  const RetryPolicy no_max(c);
  for (std::uint32_t i = 0; i < 70; ++i) EXPECT_EQ(no_max.backoff(i, rng), 0ms);
}

TEST(Retry, BackoffIsUniformOverATinyRange) {
  config::RetryConfig c;
  c.backoff_base = 1ms;
  c.backoff_max = 1ms;
  const RetryPolicy p(c);
  std::mt19937_64 rng(3);
  int ones = 0;
  for (int i = 0; i < 10000; ++i) ones += static_cast<int>(p.backoff(0, rng).count());
  EXPECT_NEAR(ones, 5000, 200);
}

TEST(Retry, BackoffIsDeterministicForASeed) {
  const RetryPolicy p{config::RetryConfig{}};
  std::mt19937_64 a(99), b(99), c(100);
  std::vector<std::int64_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(p.backoff(3, a).count());
    sb.push_back(p.backoff(3, b).count());
    sc.push_back(p.backoff(3, c).count());
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(RetryBudget, TheMinimumHoldsWhenTrafficIsLight) {
  const RetryBudget b{config::BreakerConfig{}};  // retry_budget_percent 20, retry_budget_min 3
  EXPECT_EQ(b.percent(), 20u);
  EXPECT_EQ(b.min(), 3u);
  EXPECT_TRUE(b.allow(0, 0));
  EXPECT_TRUE(b.allow(0, 2));
  EXPECT_FALSE(b.allow(0, 3));
  // 19 requests: 20% is 3.8 -> 3, same as the minimum.
  EXPECT_TRUE(b.allow(19, 2));
  EXPECT_FALSE(b.allow(19, 3));
  // 20 requests: exactly 4.
  EXPECT_TRUE(b.allow(20, 3));
  EXPECT_FALSE(b.allow(20, 4));
}

TEST(RetryBudget, ThePercentOfActiveRequestsRoundsDown) {
  const RetryBudget b(20, 3);
  EXPECT_TRUE(b.allow(100, 19));
  EXPECT_FALSE(b.allow(100, 20));
  EXPECT_TRUE(b.allow(104, 19));
  EXPECT_FALSE(b.allow(104, 20));  // 20.8 -> 20
  EXPECT_TRUE(b.allow(105, 20));   // 21
  const RetryBudget half(50, 0);
  EXPECT_TRUE(half.allow(199, 98));
  EXPECT_FALSE(half.allow(199, 99));  // 99.5 -> 99
  EXPECT_FALSE(half.allow(1, 0));     // 0.5 -> 0, and no minimum
  EXPECT_TRUE(half.allow(2, 0));
}

TEST(RetryBudget, ZeroPercentAndZeroMinimumAllowNothing) {
  const RetryBudget b(0, 0);
  EXPECT_FALSE(b.allow(0, 0));
  EXPECT_FALSE(b.allow(std::numeric_limits<std::uint64_t>::max(), 0));
  const RetryBudget only_min(0, 2);
  EXPECT_TRUE(only_min.allow(1'000'000, 1));
  EXPECT_FALSE(only_min.allow(1'000'000, 2));
}

TEST(RetryBudget, NoOverflowWithHugeCounts) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  const RetryBudget all(100, 0);
  EXPECT_TRUE(all.allow(kMax, kMax - 1));
  EXPECT_FALSE(all.allow(kMax, kMax));
  const RetryBudget twenty(20, 3);
  // (2^64 - 1) * 20 / 100 = (2^64 - 1) / 5 = 3689348814741910323 exactly
  EXPECT_TRUE(twenty.allow(kMax, 3689348814741910322ull));
  EXPECT_FALSE(twenty.allow(kMax, 3689348814741910323ull));
  const RetryBudget huge(std::numeric_limits<std::uint32_t>::max(), 0);
  EXPECT_TRUE(huge.allow(kMax, kMax - 1));  // saturates instead of wrapping
  EXPECT_TRUE(huge.allow(kMax / 1000, kMax - 1));
}

// The budget is the cluster's: its circuit_breaker sets it, and it is compared with the
// cluster's counters, which every route of the cluster moves.
TEST(RetryBudget, IsTheClustersAndComparesItsCounters) {
  config::ClusterConfig cfg;
  cfg.name = "api";
  cfg.endpoints = {config::EndpointConfig{.url = "http://127.0.0.1:1"}};
  cfg.circuit_breaker.retry_budget_percent = 50;
  cfg.circuit_breaker.retry_budget_min = 1;
  Cluster c(cfg, 1);
  EXPECT_EQ(c.retry_budget().percent(), 50u);
  EXPECT_EQ(c.retry_budget().min(), 1u);
  EXPECT_TRUE(c.retry_budget_allows());  // the minimum, with nothing in flight
  c.active_retries = 1;
  EXPECT_FALSE(c.retry_budget_allows());
  c.active_requests = 4;  // 50% of 4 = 2
  EXPECT_TRUE(c.retry_budget_allows());
  c.active_retries = 2;
  EXPECT_FALSE(c.retry_budget_allows());

  // A cluster built from another budget (what a reload does when the config changes).
  cfg.circuit_breaker.retry_budget_percent = 0;
  cfg.circuit_breaker.retry_budget_min = 0;
  Cluster none(cfg, 1);
  EXPECT_FALSE(none.retry_budget_allows());
  none.active_requests = 1'000'000;
  EXPECT_FALSE(none.retry_budget_allows());

  // The defaults: 20%, at least 3.
  Cluster def(config::ClusterConfig{.name = "d", .endpoints = cfg.endpoints}, 1);
  def.active_retries = 2;
  EXPECT_TRUE(def.retry_budget_allows());
  def.active_retries = 3;
  EXPECT_FALSE(def.retry_budget_allows());
  def.active_requests = 20;
  EXPECT_TRUE(def.retry_budget_allows());
}

}  // namespace
}  // namespace proxer::proxy
