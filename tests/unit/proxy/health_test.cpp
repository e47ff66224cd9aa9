// HealthTracker: exact transition sequences at and around both thresholds, runs that a single
// opposite outcome resets, one report per transition; status_expected at the range edges;
// judge_check_response on well-formed, malformed, partial, interim and oversized heads.
#include "proxy/health.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
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

// --- judge_check_response --------------------------------------------------------------------

// The verdict as text: "pass 200", "fail 503: status 503", "fail: <reason>", or "more" (nullopt).
std::string judged(std::string_view received, const config::HealthCheckConfig& cfg = {}) {
  const auto v = judge_check_response(received, cfg);
  if (!v) return "more";
  if (v->passed) return "pass " + std::to_string(v->status);
  if (v->status != 0) return "fail " + std::to_string(v->status) + ": " + v->reason;
  return "fail: " + v->reason;
}

TEST(JudgeCheckResponse, WellFormedHeads) {
  EXPECT_EQ(judged("HTTP/1.1 200 OK\r\n\r\n"), "pass 200");
  EXPECT_EQ(judged("HTTP/1.0 204 No Content\r\nServer: x\r\n\r\n"), "pass 204");
  EXPECT_EQ(judged("HTTP/1.1 399 Whatever\r\n\r\n"), "pass 399");
  // The reason phrase is optional, with or without the space before it.
  EXPECT_EQ(judged("HTTP/1.1 200\r\n\r\n"), "pass 200");
  EXPECT_EQ(judged("HTTP/1.1 200 \r\n\r\n"), "pass 200");
  // The body (here, bytes after the head) is never looked at.
  EXPECT_EQ(judged("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), "pass 200");
  EXPECT_EQ(judged("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\x01garbage"), "pass 200");
}

TEST(JudgeCheckResponse, UnexpectedStatusesFail) {
  EXPECT_EQ(judged("HTTP/1.1 503 Service Unavailable\r\n\r\n"), "fail 503: status 503");
  EXPECT_EQ(judged("HTTP/1.1 400\r\n\r\n"), "fail 400: status 400");
  EXPECT_EQ(judged("HTTP/1.1 101 Switching Protocols\r\n\r\n"), "fail 101: status 101");
  config::HealthCheckConfig only_200;
  only_200.expected_status = {{200, 200}};
  EXPECT_EQ(judged("HTTP/1.1 200\r\n\r\n", only_200), "pass 200");
  EXPECT_EQ(judged("HTTP/1.1 204\r\n\r\n", only_200), "fail 204: status 204");
}

TEST(JudgeCheckResponse, MalformedStatusLinesFail) {
  for (std::string_view bad : {
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 20\r\n\r\n",
           "HTTP/1.1 20 OK\r\n\r\n",
           "HTTP/1.1 2x0 OK\r\n\r\n",
           "HTTP/1.1 099 Low\r\n\r\n",
           "HTTP/1.1  200 OK\r\n\r\n",
           "HTTP/1.1\r\n\r\n",
           "HTTP/2 200\r\n\r\n",
           "HTTP/1.2 200 OK\r\n\r\n",
           "http/1.1 200 OK\r\n\r\n",
           "ICY 200 OK\r\n\r\n",
           "garbage\r\n\r\n",
           "\r\n\r\n",
           "SSH-2.0-OpenSSH_9.2\r\n",  // a complete line is judged without the rest of a head
           "HTTP/1.1 2000 OK\r\n",
           "HTTP/1.1 200 OK\x01\r\n",
       }) {
    const auto v = judged(bad);
    EXPECT_TRUE(v.starts_with("fail: malformed response head: ")) << bad << " -> " << v;
  }
  EXPECT_EQ(judged("HTTP/1.1 2000 OK\r\n\r\n"),
            "fail: malformed response head: invalid status line");
}

TEST(JudgeCheckResponse, MalformedFieldsFail) {
  for (std::string_view bad : {
           "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\nX: y\r\n\r\n",
       }) {
    const auto v = judged(bad);
    EXPECT_TRUE(v.starts_with("fail: malformed response head: ")) << bad << " -> " << v;
  }
}

TEST(JudgeCheckResponse, WaitsForTheRestOfTheHead) {
  for (std::string_view partial :
       {"", "H", "HTTP/1.1 200", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK\r", "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nServer: x\r\n", "HTTP/1.1 200 OK\r\n\r", "garbage with no line end"}) {
    EXPECT_EQ(judged(partial), "more") << partial;
  }
  // Every prefix of a good response waits, and the whole passes.
  const std::string_view good = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  for (std::size_t i = 0; i < good.size(); ++i) EXPECT_EQ(judged(good.substr(0, i)), "more") << i;
  EXPECT_EQ(judged(good), "pass 200");
}

TEST(JudgeCheckResponse, SkipsInterimHeads) {
  EXPECT_EQ(judged("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), "pass 200");
  EXPECT_EQ(judged("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100\r\n\r\n"
                   "HTTP/1.1 503\r\n\r\n"),
            "fail 503: status 503");
  EXPECT_EQ(judged("HTTP/1.1 100 Continue\r\n\r\n"), "more");
  EXPECT_EQ(judged("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2000\r\n"),
            "fail: malformed response head: invalid status line");
}

TEST(JudgeCheckResponse, OversizedHeadsFail) {
  const std::string field = "X-Pad: " + std::string(1000, 'a') + "\r\n";
  std::string head = "HTTP/1.1 200 OK\r\n";
  while (head.size() <= kMaxCheckHead) head += field;
  const std::string oversized = "fail: response head larger than 16 KiB";
  EXPECT_EQ(judged(head), oversized);           // no end in sight
  EXPECT_EQ(judged(head + "\r\n"), oversized);  // complete, but too large
  EXPECT_EQ(judged(std::string(kMaxCheckHead + 1, 'x')), oversized);
  // Exactly at the limit, complete: judged.
  std::string at_limit = "HTTP/1.1 200 OK\r\nX-Pad: ";
  at_limit += std::string(kMaxCheckHead - at_limit.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), kMaxCheckHead);
  EXPECT_EQ(judged(at_limit), "pass 200");
  // Interim heads count toward the limit.
  std::string interim;
  while (interim.size() <= kMaxCheckHead) interim += "HTTP/1.1 100 Continue\r\n\r\n";
  EXPECT_EQ(judged(interim + "HTTP/1.1 200 OK\r\n\r\n"), oversized);
  // A small head followed by a large body is fine.
  EXPECT_EQ(judged("HTTP/1.1 200 OK\r\n\r\n" + std::string(64 * 1024, 'b')), "pass 200");
}

}  // namespace
}  // namespace proxer::proxy
