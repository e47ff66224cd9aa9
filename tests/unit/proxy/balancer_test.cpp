// Each balancer's distribution, exactly where the policy is deterministic and within stated
// bounds (fixed seed) where it is random; unusable endpoints are never picked.
#include "proxy/balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace proxer::proxy {
namespace {

std::vector<Balancer::Endpoint> endpoints(std::vector<std::uint32_t> weights) {
  std::vector<Balancer::Endpoint> out;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    out.push_back({"http://10.0.0." + std::to_string(i + 1) + ":80", weights[i]});
  }
  return out;
}

std::vector<Candidate> all_usable(std::size_t n) {
  return std::vector<Candidate>(n);
}

TEST(Balancer, ParsesEveryPolicyName) {
  for (const char* n :
       {"round_robin", "weighted", "least_request", "random", "ip_hash", "ring_hash"}) {
    EXPECT_TRUE(parse_lb(n)) << n;
  }
  EXPECT_FALSE(parse_lb("fastest"));
}

TEST(Balancer, RoundRobinTakesTurnsAndSkipsUnusable) {
  Balancer b(Lb::RoundRobin, endpoints({1, 1, 1}), 1);
  auto c = all_usable(3);
  std::vector<std::size_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(*b.pick(c));
  EXPECT_EQ(got, (std::vector<std::size_t>{0, 1, 2, 0, 1, 2}));
  c[1].usable = false;
  got.clear();
  for (int i = 0; i < 4; ++i) got.push_back(*b.pick(c));
  EXPECT_EQ(got, (std::vector<std::size_t>{0, 2, 0, 2}));
}

TEST(Balancer, NothingUsableIsNoPick) {
  for (auto lb :
       {Lb::RoundRobin, Lb::Weighted, Lb::LeastRequest, Lb::Random, Lb::IpHash, Lb::RingHash}) {
    Balancer b(lb, endpoints({1, 2}), 1);
    std::vector<Candidate> c(2, Candidate{.usable = false});
    EXPECT_FALSE(b.pick(c, 42)) << static_cast<int>(lb);
    EXPECT_FALSE(b.pick({}, 42)) << static_cast<int>(lb);
  }
}

TEST(Balancer, WeightedIsSmoothAndExact) {
  Balancer b(Lb::Weighted, endpoints({5, 1, 1}), 1);
  const auto c = all_usable(3);
  std::string seq;
  for (int i = 0; i < 14; ++i) seq += static_cast<char>('a' + *b.pick(c));
  // nginx's smooth weighted round robin: the heavy endpoint never takes five in a row.
  EXPECT_EQ(seq, "aabacaaaabacaa");
  std::map<std::size_t, int> count;
  for (int i = 0; i < 700; ++i) ++count[*b.pick(c)];
  EXPECT_EQ(count[0], 500);
  EXPECT_EQ(count[1], 100);
  EXPECT_EQ(count[2], 100);
}

TEST(Balancer, RandomFollowsTheWeights) {
  Balancer b(Lb::Random, endpoints({3, 1}), 7);
  const auto c = all_usable(2);
  int first = 0;
  for (int i = 0; i < 10000; ++i) first += *b.pick(c) == 0;
  EXPECT_NEAR(first, 7500, 300);
}

TEST(Balancer, LeastRequestAvoidsTheBusyEndpoint) {
  Balancer b(Lb::LeastRequest, endpoints({1, 1, 1}), 3);
  auto c = all_usable(3);
  c[0].active = 50;
  c[1].active = 0;
  c[2].active = 50;
  // Endpoint 1 wins every comparison it is part of; with two distinct samples out of three it is
  // in 2 of every 3 pairs, and the busy ones only ever win against each other.
  std::map<std::size_t, int> count;
  for (int i = 0; i < 3000; ++i) ++count[*b.pick(c)];
  EXPECT_NEAR(count[1], 2000, 150);
  // Equal load: spread across all of them.
  c = all_usable(3);
  count.clear();
  for (int i = 0; i < 3000; ++i) ++count[*b.pick(c)];
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(count[i], 1000, 150) << i;
  // A single usable endpoint is taken without sampling.
  c[0].usable = c[2].usable = false;
  EXPECT_EQ(*b.pick(c), 1u);
}

TEST(Balancer, IpHashIsStickyPerKey) {
  Balancer b(Lb::IpHash, endpoints({1, 1, 1, 1}), 1);
  const auto c = all_usable(4);
  std::map<std::size_t, int> count;
  for (int ip = 0; ip < 4000; ++ip) {
    const auto key = hash64("10.1." + std::to_string(ip / 256) + "." + std::to_string(ip % 256));
    const auto first = *b.pick(c, key);
    EXPECT_EQ(*b.pick(c, key), first);
    ++count[first];
  }
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(count[i], 1000, 150) << i;
}

TEST(Balancer, RingHashMovesOnlyTheMissingEndpointsKeys) {
  Balancer b(Lb::RingHash, endpoints({1, 1, 1, 1}), 1);
  auto c = all_usable(4);
  std::vector<std::size_t> before;
  std::map<std::size_t, int> count;
  for (int k = 0; k < 8000; ++k) {
    before.push_back(*b.pick(c, hash64("session-" + std::to_string(k))));
    ++count[before.back()];
  }
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(count[i], 2000, 400) << i;
  c[2].usable = false;
  int moved = 0;
  for (int k = 0; k < 8000; ++k) {
    const auto now = *b.pick(c, hash64("session-" + std::to_string(k)));
    EXPECT_NE(now, 2u);
    if (before[k] != 2) {
      EXPECT_EQ(now, before[k]) << k;  // keys of the others stay where they were
    } else {
      ++moved;
    }
  }
  EXPECT_EQ(moved, count[2]);
}

TEST(Balancer, RingHashHonoursWeights) {
  Balancer b(Lb::RingHash, endpoints({3, 1}), 1);
  const auto c = all_usable(2);
  int first = 0;
  for (int k = 0; k < 8000; ++k) first += *b.pick(c, hash64("k" + std::to_string(k))) == 0;
  EXPECT_NEAR(first, 6000, 500);
}

}  // namespace
}  // namespace proxer::proxy
