// Member selection in a tunnel pool (proxy/member.h): which usable member takes each request
// under each policy, with exact distributions.
#include "proxy/member.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace proxer::proxy {
namespace {

std::vector<Member> members(std::size_t n) {
  std::vector<Member> m(n);
  for (std::size_t i = 0; i < n; ++i) m[i].id = hash64("agent-" + std::to_string(i));
  return m;
}

std::vector<std::size_t> picks(const std::vector<Member>& m, Lb lb, std::size_t n,
                               std::size_t& cursor, std::uint64_t key = 0) {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < n; ++k) {
    auto i = pick_member(m, lb, key, cursor);
    EXPECT_TRUE(i);
    out.push_back(i.value_or(99));
  }
  return out;
}

TEST(PickMember, NoUsableMemberPicksNothing) {
  std::size_t cursor = 0;
  EXPECT_FALSE(pick_member({}, Lb::RoundRobin, 0, cursor));
  auto m = members(3);
  for (auto& e : m) e.usable = false;
  for (auto lb :
       {Lb::RoundRobin, Lb::Weighted, Lb::LeastRequest, Lb::Random, Lb::IpHash, Lb::RingHash}) {
    EXPECT_FALSE(pick_member(m, lb, 42, cursor));
  }
}

TEST(PickMember, RoundRobinTakesTurnsAndSkipsUnusable) {
  auto m = members(3);
  std::size_t cursor = 0;
  EXPECT_EQ(picks(m, Lb::RoundRobin, 6, cursor), (std::vector<std::size_t>{0, 1, 2, 0, 1, 2}));
  m[1].usable = false;
  EXPECT_EQ(picks(m, Lb::RoundRobin, 4, cursor), (std::vector<std::size_t>{0, 2, 0, 2}));
  m[1].usable = true;
  m[0].usable = false;
  m[2].usable = false;
  EXPECT_EQ(picks(m, Lb::RoundRobin, 3, cursor), (std::vector<std::size_t>{1, 1, 1}));
}

TEST(PickMember, LeastRequestPrefersTheLeastBusyAndRotatesTies) {
  auto m = members(3);
  std::size_t cursor = 0;
  // An idle pool: every member ties, so requests go in turn.
  EXPECT_EQ(picks(m, Lb::LeastRequest, 3, cursor), (std::vector<std::size_t>{0, 1, 2}));
  m[0].active = 5;
  m[1].active = 1;
  m[2].active = 3;
  EXPECT_EQ(picks(m, Lb::LeastRequest, 2, cursor), (std::vector<std::size_t>{1, 1}));
  m[1].usable = false;
  EXPECT_EQ(picks(m, Lb::LeastRequest, 1, cursor), (std::vector<std::size_t>{2}));
}

TEST(PickMember, RandomUsesTheDrawAmongUsableMembers) {
  auto m = members(4);
  m[1].usable = false;
  std::size_t cursor = 0;
  std::map<std::size_t, int> seen;
  for (std::uint64_t draw = 0; draw < 300; ++draw) {
    auto i = pick_member(m, Lb::Random, draw, cursor);
    ASSERT_TRUE(i);
    ++seen[*i];
  }
  EXPECT_EQ(seen, (std::map<std::size_t, int>{{0, 100}, {2, 100}, {3, 100}}));
}

TEST(PickMember, HashKeepsAKeyOnItsMemberAndMovesOnlyTheLeaversKeys) {
  auto m = members(3);
  std::size_t cursor = 0;
  std::vector<std::size_t> before;
  std::map<std::size_t, int> spread;
  for (int k = 0; k < 3000; ++k) {
    const auto key = hash64("client-" + std::to_string(k));
    auto i = pick_member(m, Lb::IpHash, key, cursor);
    ASSERT_TRUE(i);
    // The same key again: the same member, and ring_hash agrees with ip_hash.
    EXPECT_EQ(pick_member(m, Lb::IpHash, key, cursor), i);
    EXPECT_EQ(pick_member(m, Lb::RingHash, key, cursor), i);
    before.push_back(*i);
    ++spread[*i];
  }
  for (const auto& [i, n] : spread) {
    EXPECT_GT(n, 800) << "member " << i;  // about a third each
    EXPECT_LT(n, 1200) << "member " << i;
  }
  m[1].usable = false;  // member 1 leaves: its keys move, nobody else's
  for (int k = 0; k < 3000; ++k) {
    const auto key = hash64("client-" + std::to_string(k));
    auto i = pick_member(m, Lb::IpHash, key, cursor);
    ASSERT_TRUE(i);
    if (before[k] != 1) {
      EXPECT_EQ(*i, before[k]);
    } else {
      EXPECT_NE(*i, 1u);
    }
  }
}

}  // namespace
}  // namespace proxer::proxy
