// MemberHealth: each member of a pooled tunnel endpoint has its own hysteresis; a member the
// checks have not seen is healthy; members that left drop their state; the last failure's reason.
#include "proxy/member_health.h"

#include <gtest/gtest.h>

#include <vector>

namespace proxer::proxy {
namespace {

using T = HealthTracker::Transition;

TEST(MemberHealth, AnUnseenMemberIsHealthy) {
  MemberHealth m(2, 2);
  EXPECT_TRUE(m.empty());
  EXPECT_FALSE(m.excluded(7));
  EXPECT_EQ(m.find(7), nullptr);
  EXPECT_EQ(m.record(7, "a", true), T::None);  // starts healthy: a pass changes nothing
  ASSERT_NE(m.find(7), nullptr);
  EXPECT_EQ(m.find(7)->name, "a");
  EXPECT_TRUE(m.find(7)->health.healthy());
}

TEST(MemberHealth, EachMemberHasItsOwnHysteresis) {
  MemberHealth m(2, 3);
  // a fails three times in a row, b fails twice, passes, fails again: only a leaves.
  EXPECT_EQ(m.record(1, "a", false, "status 500"), T::None);
  EXPECT_EQ(m.record(2, "b", false, "status 500"), T::None);
  EXPECT_EQ(m.record(1, "a", false, "status 500"), T::None);
  EXPECT_EQ(m.record(2, "b", false, "status 500"), T::None);
  EXPECT_EQ(m.record(1, "a", false, "status 503"), T::BecameUnhealthy);
  EXPECT_EQ(m.record(2, "b", true), T::None);
  EXPECT_EQ(m.record(2, "b", false, "timeout"), T::None);
  EXPECT_TRUE(m.excluded(1));
  EXPECT_FALSE(m.excluded(2));
  EXPECT_EQ(m.find(1)->last_failure, "status 503");
  EXPECT_EQ(m.find(2)->last_failure, "timeout");
  // More failures report nothing more; two passes bring a back, once.
  EXPECT_EQ(m.record(1, "a", false, "status 503"), T::None);
  EXPECT_EQ(m.record(1, "a", true), T::None);
  EXPECT_TRUE(m.excluded(1));
  EXPECT_EQ(m.find(1)->last_failure, "status 503");  // still unhealthy: the reason stays
  EXPECT_EQ(m.record(1, "a", true), T::BecameHealthy);
  EXPECT_FALSE(m.excluded(1));
  EXPECT_EQ(m.find(1)->last_failure, "");
  EXPECT_EQ(m.find(1)->health.became_unhealthy_total(), 1u);
  EXPECT_EQ(m.find(1)->health.became_healthy_total(), 1u);
  EXPECT_EQ(m.find(2)->health.became_unhealthy_total(), 0u);
}

TEST(MemberHealth, RetainDropsTheMembersThatLeft) {
  MemberHealth m(1, 1);
  m.record(1, "a", false);
  m.record(2, "b", false);
  m.record(3, "c", true);
  const std::vector<std::uint64_t> present{3, 2, 9};
  EXPECT_EQ(m.retain(present), 1u);
  EXPECT_EQ(m.find(1), nullptr);
  EXPECT_FALSE(m.excluded(1));  // gone: nothing holds it out any more
  EXPECT_TRUE(m.excluded(2));
  ASSERT_EQ(m.members().size(), 2u);
  EXPECT_EQ(m.members()[0].id, 2u);  // first seen first
  EXPECT_EQ(m.members()[1].id, 3u);
  EXPECT_EQ(m.retain({}), 2u);
  EXPECT_TRUE(m.empty());
}

TEST(MemberHealth, TakesTheThresholdsFromTheConfig) {
  config::HealthCheckConfig cfg;
  cfg.unhealthy_threshold = 1;
  cfg.healthy_threshold = 3;
  MemberHealth m(cfg);
  EXPECT_EQ(m.record(5, "a", false), T::BecameUnhealthy);
  EXPECT_EQ(m.record(5, "a", true), T::None);
  EXPECT_EQ(m.record(5, "a", true), T::None);
  EXPECT_EQ(m.record(5, "a", true), T::BecameHealthy);
}

}  // namespace
}  // namespace proxer::proxy
