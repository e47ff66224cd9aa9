// OutlierDetector: exact ejection points for both consecutive rules, what ends each run, ejection
// durations at their boundaries (growth, cap, decay), the cap on the ejected share, and resize.
// Time is a fixed origin plus offsets, so every boundary is checked to the nanosecond.
#include "proxy/outlier.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "proxy/cluster.h"

namespace proxer::proxy {
namespace {

using namespace std::chrono_literals;
using R = OutlierDetector::Result;
using TimePoint = OutlierDetector::TimePoint;

const TimePoint t0{std::chrono::hours(1)};

config::OutlierConfig cfg(std::uint32_t c5xx, std::uint32_t cconnect,
                          config::Duration base = 10'000ms, config::Duration max = 35'000ms,
                          std::uint32_t percent = 100) {
  config::OutlierConfig c;
  c.consecutive_5xx = c5xx;
  c.consecutive_connect_failures = cconnect;
  c.base_ejection_time = base;
  c.max_ejection_time = max;
  c.max_ejected_percent = percent;
  return c;
}

// Records `results` on `ep` at `now`; returns which of them ejected.
std::vector<bool> feed(OutlierDetector& d, std::size_t ep, std::vector<R> results,
                       TimePoint now = t0) {
  std::vector<bool> out;
  for (R r : results) out.push_back(d.record(ep, r, now));
  return out;
}

TEST(Outlier, Consecutive5xxEjectsExactlyAtTheThreshold) {
  OutlierDetector d(cfg(3, 0), 2);
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx}), (std::vector<bool>{false, false}));
  EXPECT_FALSE(d.ejected(0, t0));
  EXPECT_TRUE(d.record(0, R::Http5xx, t0));
  EXPECT_TRUE(d.ejected(0, t0));
  EXPECT_FALSE(d.ejected(1, t0));
  EXPECT_EQ(d.ejections_total(), 1u);
  EXPECT_EQ(d.ejected_count(t0), 1u);
}

TEST(Outlier, CarryOverKeepsAnEjectionInARebuiltDetector) {
  OutlierDetector old(cfg(2, 0), 2);
  EXPECT_EQ(feed(old, 1, {R::Http5xx, R::Http5xx}), (std::vector<bool>{false, true}));
  OutlierDetector fresh(cfg(2, 0), 3);  // endpoint 1 of `old` is endpoint 2 here
  fresh.carry_over(2, old, 1);
  EXPECT_TRUE(fresh.ejected(2, t0 + 1s));
  EXPECT_FALSE(fresh.ejected(0, t0 + 1s));
  EXPECT_EQ(fresh.ejections_total(2), 1u);
  EXPECT_FALSE(fresh.ejected(2, t0 + 10s));  // the ejection ends when it would have
  fresh.carry_over(7, old, 0);               // out of range on either side: nothing
  fresh.carry_over(0, old, 9);
  EXPECT_FALSE(fresh.ejected(0, t0));
}

TEST(Outlier, ASuccessEndsTheRunOf5xx) {
  OutlierDetector d(cfg(3, 0), 2);
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx, R::Success, R::Http5xx, R::Http5xx, R::Http5xx}),
            (std::vector<bool>{false, false, false, false, false, true}));
}

TEST(Outlier, AConnectFailureNeitherExtendsNorEndsTheRunOf5xx) {
  OutlierDetector d(cfg(3, 0), 2);
  EXPECT_EQ(feed(d, 0,
                 {R::Http5xx, R::ConnectFailure, R::ConnectFailure, R::Http5xx, R::ConnectFailure,
                  R::Http5xx}),
            (std::vector<bool>{false, false, false, false, false, true}));
}

TEST(Outlier, ConsecutiveConnectFailuresEjectAndAnyResponseEndsTheirRun) {
  OutlierDetector d(cfg(0, 3), 4);
  // Endpoint 0: a 5xx response ends the run (the connection worked).
  EXPECT_EQ(feed(d, 0,
                 {R::ConnectFailure, R::ConnectFailure, R::Http5xx, R::ConnectFailure,
                  R::ConnectFailure, R::ConnectFailure}),
            (std::vector<bool>{false, false, false, false, false, true}));
  // Endpoint 1: so does a success.
  EXPECT_EQ(feed(d, 1,
                 {R::ConnectFailure, R::ConnectFailure, R::Success, R::ConnectFailure,
                  R::ConnectFailure, R::ConnectFailure}),
            (std::vector<bool>{false, false, false, false, false, true}));
  EXPECT_EQ(d.ejections_total(), 2u);
}

TEST(Outlier, BothRulesCountIndependently) {
  OutlierDetector d(cfg(2, 2), 2);
  // 5xx run 1, then a connect failure (5xx run stays 1), then a 5xx: 5xx run 2 ejects.
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::ConnectFailure, R::Http5xx}),
            (std::vector<bool>{false, false, true}));
}

TEST(Outlier, ZeroTurnsARuleOff) {
  OutlierDetector d(cfg(0, 0), 2);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(d.record(0, R::Http5xx, t0));
    EXPECT_FALSE(d.record(1, R::ConnectFailure, t0));
  }
  EXPECT_EQ(d.ejected_count(t0), 0u);
  EXPECT_EQ(d.ejections_total(), 0u);
}

TEST(Outlier, EjectionEndsExactlyAfterItsDuration) {
  OutlierDetector d(cfg(1, 0, 10s, 35s), 2);
  ASSERT_TRUE(d.record(0, R::Http5xx, t0));
  EXPECT_TRUE(d.ejected(0, t0 + 10s - 1ns));
  EXPECT_EQ(d.ejected_count(t0 + 10s - 1ns), 1u);
  EXPECT_FALSE(d.ejected(0, t0 + 10s));
  EXPECT_EQ(d.ejected_count(t0 + 10s), 0u);
}

TEST(Outlier, DurationGrowsWithEachEjectionUpToTheCap) {
  // base 10s, max 35s: 10, 20, 30, then 35 (40 capped), and 35 again after that.
  OutlierDetector d(cfg(1, 0, 10s, 35s), 2);
  const std::vector<config::Duration> expected{10s, 20s, 30s, 35s, 35s, 35s};
  const std::vector<std::uint32_t> multiplier{1, 2, 3, 4, 4, 4};
  TimePoint now = t0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    // Each ejection starts the instant the previous one ends: no time to decay.
    ASSERT_TRUE(d.record(0, R::Http5xx, now)) << i;
    EXPECT_EQ(d.times_ejected(0, now), multiplier[i]) << i;
    EXPECT_TRUE(d.ejected(0, now + expected[i] - 1ns)) << i;
    EXPECT_FALSE(d.ejected(0, now + expected[i])) << i;
    now += expected[i];
  }
  EXPECT_EQ(d.ejections_total(), expected.size());
}

TEST(Outlier, MaxBelowBaseMeansBase) {
  OutlierDetector d(cfg(1, 0, 10s, 4s), 2);
  ASSERT_TRUE(d.record(0, R::Http5xx, t0));
  EXPECT_TRUE(d.ejected(0, t0 + 10s - 1ns));
  EXPECT_FALSE(d.ejected(0, t0 + 10s));
  ASSERT_TRUE(d.record(0, R::Http5xx, t0 + 10s));
  EXPECT_EQ(d.times_ejected(0, t0 + 10s), 1u);
  EXPECT_FALSE(d.ejected(0, t0 + 20s));
}

TEST(Outlier, MultiplierDecaysOneStepPerFullBaseTimeUnejected) {
  OutlierDetector d(cfg(1, 0, 10s, 100s), 2);
  TimePoint now = t0;
  for (config::Duration dur : {10s, 20s, 30s}) {
    ASSERT_TRUE(d.record(0, R::Http5xx, now));
    now += dur;
  }
  const TimePoint end = now;  // the third ejection (30s) ends here
  EXPECT_TRUE(d.ejected(0, end - 1ns));
  EXPECT_EQ(d.times_ejected(0, end - 1ns), 3u);
  EXPECT_EQ(d.times_ejected(0, end), 3u);
  EXPECT_EQ(d.times_ejected(0, end + 10s - 1ns), 3u);
  EXPECT_EQ(d.times_ejected(0, end + 10s), 2u);
  EXPECT_EQ(d.times_ejected(0, end + 20s - 1ns), 2u);
  EXPECT_EQ(d.times_ejected(0, end + 20s), 1u);
  EXPECT_EQ(d.times_ejected(0, end + 30s), 0u);
  EXPECT_EQ(d.times_ejected(0, end + 1h), 0u);
  // Fully decayed: the next ejection is a first one again.
  ASSERT_TRUE(d.record(0, R::Http5xx, end + 1h));
  EXPECT_EQ(d.times_ejected(0, end + 1h), 1u);
  EXPECT_FALSE(d.ejected(0, end + 1h + 10s));
}

TEST(Outlier, PartialDecayThenANewEjection) {
  OutlierDetector d(cfg(1, 0, 10s, 100s), 2);
  ASSERT_TRUE(d.record(0, R::Http5xx, t0));        // 10s, ends t0+10s
  ASSERT_TRUE(d.record(0, R::Http5xx, t0 + 10s));  // 20s, ends t0+30s
  ASSERT_TRUE(d.record(0, R::Http5xx, t0 + 30s));  // 30s, ends t0+60s
  // 15s un-ejected: one step of decay (3 -> 2), so this ejection is the 3rd again: 30s.
  const TimePoint again = t0 + 75s;
  ASSERT_TRUE(d.record(0, R::Http5xx, again));
  EXPECT_EQ(d.times_ejected(0, again), 3u);
  EXPECT_TRUE(d.ejected(0, again + 30s - 1ns));
  EXPECT_FALSE(d.ejected(0, again + 30s));
  // Decay stopped during that ejection and restarts from its end.
  EXPECT_EQ(d.times_ejected(0, again + 30s + 10s - 1ns), 3u);
  EXPECT_EQ(d.times_ejected(0, again + 30s + 10s), 2u);
}

TEST(Outlier, DecayCountsFromTheEndOfTheEjectionNotFromWhenItWasNoticed) {
  // Two detectors, same history; one is looked at every second, the other only at the end.
  OutlierDetector often(cfg(1, 0, 10s, 100s), 2);
  OutlierDetector rarely(cfg(1, 0, 10s, 100s), 2);
  for (auto* d : {&often, &rarely}) {
    ASSERT_TRUE(d->record(0, R::Http5xx, t0));        // ends t0+10s
    ASSERT_TRUE(d->record(0, R::Http5xx, t0 + 10s));  // ends t0+30s
    ASSERT_TRUE(d->record(0, R::Http5xx, t0 + 30s));  // ends t0+60s
  }
  // Looked at every 700ms from the end of the last ejection: max(0, 3 - whole 10s periods).
  const TimePoint end = t0 + 60s;
  for (auto at = end; at <= end + 45s; at += 700ms) {
    const auto periods = static_cast<std::uint32_t>((at - end) / 10s);
    EXPECT_EQ(often.times_ejected(0, at), periods >= 3 ? 0u : 3u - periods)
        << (at - end).count() << "ns after the end";
  }
  // First look 25s after the end: two full periods have passed, not zero.
  EXPECT_EQ(rarely.times_ejected(0, end + 25s), 1u);
  EXPECT_EQ(rarely.times_ejected(0, end + 30s), 0u);
}

TEST(Outlier, ResultsDuringAnEjectionAreIgnoredAndRunsRestartAfterIt) {
  OutlierDetector d(cfg(3, 3, 10s, 35s), 2);
  ASSERT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx, R::Http5xx}),
            (std::vector<bool>{false, false, true}));
  // In-flight requests finishing during the ejection: ignored, nothing extends it.
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx, R::Http5xx, R::ConnectFailure}, t0 + 5s),
            (std::vector<bool>{false, false, false, false}));
  EXPECT_EQ(d.ejections_total(), 1u);
  EXPECT_FALSE(d.ejected(0, t0 + 10s));
  // Back in rotation with both runs at zero: two 5xx and two connect failures do not eject.
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::ConnectFailure, R::Http5xx, R::ConnectFailure}, t0 + 10s),
            (std::vector<bool>{false, false, false, false}));
  // The connect failures did not end the 5xx run: this is the third 5xx since the ejection.
  EXPECT_TRUE(d.record(0, R::Http5xx, t0 + 10s));
}

TEST(Outlier, TheRunBeforeAnEjectionIsGoneAfterIt) {
  // A 5xx run of 2 at the moment a connect-failure ejection happens does not survive it.
  OutlierDetector d(cfg(3, 1, 10s, 35s), 2);
  ASSERT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx}), (std::vector<bool>{false, false}));
  ASSERT_TRUE(d.record(0, R::ConnectFailure, t0));
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx, R::Http5xx}, t0 + 10s),
            (std::vector<bool>{false, false, true}));
}

TEST(Outlier, NeverEjectsMoreThanTheMaxPercentAndEjectsWhenRoomFreesUp) {
  OutlierDetector d(cfg(1, 0, 10s, 35s, 50), 4);
  EXPECT_TRUE(d.record(0, R::Http5xx, t0));
  EXPECT_TRUE(d.record(1, R::Http5xx, t0 + 5s));
  // 3 of 4 would be 75% > 50%: refused, counted.
  EXPECT_FALSE(d.record(2, R::Http5xx, t0 + 5s));
  EXPECT_FALSE(d.record(3, R::Http5xx, t0 + 5s));
  EXPECT_FALSE(d.ejected(2, t0 + 5s));
  EXPECT_EQ(d.ejected_count(t0 + 5s), 2u);
  EXPECT_EQ(d.ejections_refused_total(), 2u);
  EXPECT_EQ(d.ejections_total(), 2u);
  // Still full just before endpoint 0's ejection ends...
  EXPECT_FALSE(d.record(2, R::Http5xx, t0 + 10s - 1ns));
  EXPECT_EQ(d.ejections_refused_total(), 3u);
  // ...and the next failure of the still-failing endpoint ejects it once there is room.
  EXPECT_TRUE(d.record(2, R::Http5xx, t0 + 10s));
  EXPECT_EQ(d.ejected_count(t0 + 10s), 2u);
  EXPECT_FALSE(d.record(3, R::Http5xx, t0 + 10s));
}

TEST(Outlier, ARefusedEndpointKeepsItsRunAboveTheThreshold) {
  // With consecutive_5xx = 3 the refused endpoint does not need three more failures.
  OutlierDetector d(cfg(3, 0, 10s, 35s, 50), 2);
  ASSERT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx, R::Http5xx}),
            (std::vector<bool>{false, false, true}));
  EXPECT_EQ(feed(d, 1, {R::Http5xx, R::Http5xx, R::Http5xx, R::Http5xx}),
            (std::vector<bool>{false, false, false, false}));
  EXPECT_EQ(d.ejections_refused_total(), 2u);
  // Endpoint 0's ejection ends at t0+10s; endpoint 1's run (4) is still past the threshold, so
  // its next 5xx ejects it at once.
  EXPECT_TRUE(d.record(1, R::Http5xx, t0 + 10s));
  EXPECT_TRUE(d.ejected(1, t0 + 10s));
  EXPECT_FALSE(d.ejected(0, t0 + 10s));
}

TEST(Outlier, ARefusedEndpointKeepsItsConnectFailureRunToo) {
  OutlierDetector d(cfg(0, 2, 10s, 35s, 50), 2);
  ASSERT_EQ(feed(d, 0, {R::ConnectFailure, R::ConnectFailure}), (std::vector<bool>{false, true}));
  EXPECT_EQ(feed(d, 1, {R::ConnectFailure, R::ConnectFailure}), (std::vector<bool>{false, false}));
  EXPECT_EQ(d.ejections_refused_total(), 1u);
  EXPECT_TRUE(d.record(1, R::ConnectFailure, t0 + 10s));
}

// How many of N endpoints can be ejected at once under a percent cap.
std::size_t max_ejected(std::size_t n, std::uint32_t percent) {
  OutlierDetector d(cfg(1, 0, 10s, 35s, percent), n);
  for (std::size_t i = 0; i < n; ++i) d.record(i, R::Http5xx, t0);
  return d.ejected_count(t0);
}

TEST(Outlier, EjectedShareCapBoundaries) {
  struct Case {
    std::size_t n;
    std::uint32_t percent;
    std::size_t expected;
  };
  for (const Case& c : std::vector<Case>{{1, 50, 0},
                                         {1, 99, 0},
                                         {1, 100, 1},
                                         {2, 49, 0},
                                         {2, 50, 1},
                                         {2, 100, 2},
                                         {3, 30, 0},
                                         {3, 33, 0},
                                         {3, 34, 1},
                                         {3, 50, 1},
                                         {3, 67, 2},
                                         {9, 10, 0},
                                         {10, 10, 1},
                                         {10, 19, 1},
                                         {10, 20, 2},
                                         {5, 0, 0},
                                         {4, 100, 4},
                                         {4, 250, 4},
                                         {0, 100, 0}}) {
    EXPECT_EQ(max_ejected(c.n, c.percent), c.expected) << c.n << " endpoints at " << c.percent;
  }
}

TEST(Outlier, ResizeKeepsTheFirstEndpointsState) {
  OutlierDetector d(cfg(1, 0, 10s, 35s, 100), 3);
  ASSERT_TRUE(d.record(1, R::Http5xx, t0));
  ASSERT_TRUE(d.record(2, R::Http5xx, t0));
  d.resize(2);
  EXPECT_EQ(d.size(), 2u);
  EXPECT_TRUE(d.ejected(1, t0 + 1s));
  EXPECT_FALSE(d.ejected(2, t0 + 1s));  // gone: out of range
  EXPECT_FALSE(d.record(2, R::Http5xx, t0 + 1s));
  EXPECT_EQ(d.ejected_count(t0 + 1s), 1u);
  d.resize(4);
  EXPECT_TRUE(d.ejected(1, t0 + 1s));
  EXPECT_FALSE(d.ejected(2, t0 + 1s));  // back, but fresh
  EXPECT_EQ(d.times_ejected(2, t0 + 1s), 0u);
  EXPECT_EQ(d.times_ejected(1, t0 + 1s), 1u);
  EXPECT_EQ(d.ejected_count(t0 + 1s), 1u);
  d.resize(1);
  EXPECT_EQ(d.ejected_count(t0 + 1s), 0u);
  d.resize(2);
  EXPECT_FALSE(d.ejected(1, t0 + 1s));
}

TEST(Outlier, ResizeChangesTheShareCap) {
  OutlierDetector d(cfg(1, 0, 10s, 35s, 50), 2);
  ASSERT_TRUE(d.record(0, R::Http5xx, t0));
  d.resize(3);
  EXPECT_FALSE(d.record(1, R::Http5xx, t0));  // 2 of 3 > 50%
  d.resize(4);
  EXPECT_TRUE(d.record(1, R::Http5xx, t0));  // 2 of 4 = 50%
}

TEST(Outlier, ZeroBaseEjectionTimeEjectsNothing) {
  OutlierDetector d(cfg(1, 1, 0s, 35s, 100), 2);
  EXPECT_FALSE(d.record(0, R::Http5xx, t0));
  EXPECT_FALSE(d.record(0, R::ConnectFailure, t0));
  EXPECT_FALSE(d.ejected(0, t0));
  EXPECT_EQ(d.times_ejected(0, t0), 0u);
  EXPECT_EQ(d.ejections_total(), 0u);
}

TEST(Outlier, OutOfRangeEndpointsAreIgnored) {
  OutlierDetector d(cfg(1, 1), 2);
  EXPECT_FALSE(d.record(2, R::Http5xx, t0));
  EXPECT_FALSE(d.ejected(2, t0));
  EXPECT_EQ(d.times_ejected(7, t0), 0u);
  EXPECT_EQ(d.ejections_total(), 0u);
}

TEST(Outlier, DefaultsEjectAfterFive5xxForThirtySeconds) {
  OutlierDetector d(config::OutlierConfig{}, 2);
  EXPECT_EQ(feed(d, 0, {R::Http5xx, R::Http5xx, R::Http5xx, R::Http5xx, R::Http5xx}),
            (std::vector<bool>{false, false, false, false, true}));
  // Defaults cap at 50%: the other endpoint stays in however it fails.
  EXPECT_EQ(feed(d, 1, {R::ConnectFailure, R::ConnectFailure, R::ConnectFailure}, t0 + 1s),
            (std::vector<bool>{false, false, false}));
  EXPECT_TRUE(d.ejected(0, t0 + 30s - 1ns));
  EXPECT_FALSE(d.ejected(0, t0 + 30s));
}

TEST(Outlier, CountsEjectionsPerEndpoint) {
  OutlierDetector d(cfg(1, 0, 10'000ms, 35'000ms, 100), 3);
  EXPECT_TRUE(d.record(0, R::Http5xx, t0));
  EXPECT_TRUE(d.record(2, R::Http5xx, t0));
  EXPECT_TRUE(d.record(0, R::Http5xx, t0 + 10s));  // the first ejection ended at t0 + 10s
  EXPECT_EQ(d.ejections_total(0), 2u);
  EXPECT_EQ(d.ejections_total(1), 0u);
  EXPECT_EQ(d.ejections_total(2), 1u);
  EXPECT_EQ(d.ejections_total(3), 0u);  // out of range
  EXPECT_EQ(d.ejections_total(), 3u);
}

TEST(Cluster, RecordCountsAttemptsAndFeedsTheDetector) {
  config::ClusterConfig c;
  c.name = "c";
  for (auto url : {"http://10.0.0.1:80", "http://10.0.0.2:80"}) {
    config::EndpointConfig ep;
    ep.url = url;
    c.endpoints.push_back(ep);
  }
  c.outlier = cfg(2, 1, 10'000ms, 35'000ms, 50);
  Cluster cl(c, 1);
  EXPECT_FALSE(cl.record(0, R::Http5xx, t0));
  EXPECT_FALSE(cl.record(0, R::Success, t0));
  EXPECT_TRUE(cl.record(1, R::ConnectFailure, t0));
  EXPECT_FALSE(cl.record(1, R::Success, t0));  // ejected: counted, ignored by the detector
  EXPECT_FALSE(cl.record(7, R::Http5xx, t0));  // no such endpoint: nothing
  const auto& e = cl.endpoints();
  EXPECT_EQ((std::vector<std::uint64_t>{e[0].requests, e[0].responses_5xx, e[0].connect_failures}),
            (std::vector<std::uint64_t>{2, 1, 0}));
  EXPECT_EQ((std::vector<std::uint64_t>{e[1].requests, e[1].responses_5xx, e[1].connect_failures}),
            (std::vector<std::uint64_t>{2, 0, 1}));
  EXPECT_FALSE(cl.in_rotation(1, t0));
  EXPECT_EQ(cl.outlier().ejections_total(1), 1u);
}

}  // namespace
}  // namespace proxer::proxy
