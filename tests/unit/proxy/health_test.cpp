// HealthTracker: exact transition sequences at and around both thresholds, runs that a single
// opposite outcome resets, one report per transition; status_expected at the range edges.
#include "proxy/health.h"

#include <gtest/gtest.h>

#include <vector>

namespace proxer::proxy {
namespace {

using T = HealthTracker::Transition;

// The transitions produced by feeding `outcomes` ('P' pass, 'F' fail) in order.
std::vector<T> feed(HealthTracker& h, const char* outcomes) {
  std::vector<T> out;
  for (const char* c = outcomes; *c != '\0'; ++c) out.push_back(h.record(*c == 'P'));
  return out;
}

constexpr T N = T::None;
constexpr T U = T::BecameUnhealthy;
constexpr T H = T::BecameHealthy;

TEST(HealthTracker, StartsHealthySoTrafficFlowsBeforeTheFirstCheck) {
  HealthTracker h(2, 3);
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.became_healthy_total(), 0u);
  EXPECT_EQ(h.became_unhealthy_total(), 0u);
  // Passes while healthy change nothing and report nothing.
  EXPECT_EQ(feed(h, "PPPP"), (std::vector<T>{N, N, N, N}));
  EXPECT_EQ(h.became_healthy_total(), 0u);
}

TEST(HealthTracker, BecomesUnhealthyExactlyAtTheFailureThresholdAndReportsItOnce) {
  HealthTracker h(2, 3);
  EXPECT_EQ(h.record(false), N);
  EXPECT_EQ(h.record(false), N);
  EXPECT_TRUE(h.healthy());  // one below the threshold
  EXPECT_EQ(h.consecutive_failures(), 2u);
  EXPECT_EQ(h.record(false), U);
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(feed(h, "FFFFF"), (std::vector<T>{N, N, N, N, N}));
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.became_unhealthy_total(), 1u);
  EXPECT_EQ(h.became_healthy_total(), 0u);
}

TEST(HealthTracker, APassEndsTheRunOfFailures) {
  HealthTracker h(2, 3);
  EXPECT_EQ(feed(h, "FFPFFPFF"), (std::vector<T>(8, N)));
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.consecutive_failures(), 2u);
  EXPECT_EQ(h.record(false), U);
}

TEST(HealthTracker, RecoversOnlyAfterHealthyThresholdPassesInARow) {
  HealthTracker h(2, 3);
  ASSERT_EQ(feed(h, "FFF"), (std::vector<T>{N, N, U}));
  // A failure ends the run of passes: P F P is not two in a row.
  EXPECT_EQ(feed(h, "PFP"), (std::vector<T>{N, N, N}));
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.consecutive_passes(), 1u);
  EXPECT_EQ(h.record(true), H);
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(feed(h, "PPP"), (std::vector<T>{N, N, N}));
  EXPECT_EQ(h.became_healthy_total(), 1u);
  EXPECT_EQ(h.became_unhealthy_total(), 1u);
}

TEST(HealthTracker, ExactSequenceOverSeveralFlaps) {
  HealthTracker h(2, 2);
  EXPECT_EQ(feed(h, "FPFFPPFFFPFPPFF"),
            (std::vector<T>{N, N, N, U, N, H, N, U, N, N, N, N, H, N, U}));
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.became_unhealthy_total(), 3u);
  EXPECT_EQ(h.became_healthy_total(), 2u);
}

TEST(HealthTracker, ThresholdOfOneFlipsOnEveryChangeAndZeroActsAsOne) {
  for (std::uint32_t t : {0u, 1u}) {
    HealthTracker h(t, t);
    EXPECT_EQ(feed(h, "PFFPPF"), (std::vector<T>{N, U, N, H, N, U})) << t;
  }
}

TEST(HealthTracker, TakesTheThresholdsFromTheConfig) {
  config::HealthCheckConfig cfg;
  cfg.healthy_threshold = 1;
  cfg.unhealthy_threshold = 4;
  HealthTracker h(cfg);
  EXPECT_EQ(feed(h, "FFFFP"), (std::vector<T>{N, N, N, U, H}));
  // And the defaults: 3 failures down, 2 passes up.
  HealthTracker d{config::HealthCheckConfig{}};
  EXPECT_EQ(feed(d, "FFFPP"), (std::vector<T>{N, N, U, N, H}));
}

TEST(HealthTracker, LongRunsReportOneTransition) {
  HealthTracker h(2, 3);
  int transitions = 0;
  for (int i = 0; i < 100000; ++i) transitions += h.record(false) != N;
  EXPECT_EQ(transitions, 1);
  EXPECT_EQ(h.consecutive_failures(), 100000u);
}

TEST(HealthTracker, SetReportsAndCountsAChangeOnceAndEndsTheRuns) {
  HealthTracker h(2, 2);
  EXPECT_EQ(h.set(true), N);  // already healthy
  EXPECT_EQ(h.record(false), N);
  EXPECT_EQ(h.set(false), U);
  EXPECT_EQ(h.consecutive_failures(), 0u);
  EXPECT_EQ(h.set(false), N);
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(h.set(true), H);
  EXPECT_EQ(h.became_unhealthy_total(), 1u);
  EXPECT_EQ(h.became_healthy_total(), 1u);
  // record() afterwards counts its runs afresh: one failure is not enough.
  EXPECT_EQ(h.record(false), N);
  EXPECT_EQ(h.record(false), U);
}

TEST(StatusExpected, DefaultRangeIs200To399Inclusive) {
  const config::HealthCheckConfig cfg;
  EXPECT_FALSE(status_expected(0, cfg));
  EXPECT_FALSE(status_expected(199, cfg));
  EXPECT_TRUE(status_expected(200, cfg));
  EXPECT_TRUE(status_expected(302, cfg));
  EXPECT_TRUE(status_expected(399, cfg));
  EXPECT_FALSE(status_expected(400, cfg));
  EXPECT_FALSE(status_expected(503, cfg));
}

TEST(StatusExpected, SingleCodesAndSeveralRanges) {
  config::HealthCheckConfig cfg;
  cfg.expected_status = {{204, 204}, {300, 301}, {418, 418}};
  std::vector<unsigned> accepted;
  for (unsigned s = 100; s < 600; ++s) {
    if (status_expected(s, cfg)) accepted.push_back(s);
  }
  EXPECT_EQ(accepted, (std::vector<unsigned>{204, 300, 301, 418}));
}

TEST(StatusExpected, AnEmptyListAcceptsNothing) {
  config::HealthCheckConfig cfg;
  cfg.expected_status.clear();
  for (unsigned s : {100u, 200u, 204u, 399u, 500u}) EXPECT_FALSE(status_expected(s, cfg)) << s;
}

}  // namespace
}  // namespace proxer::proxy
