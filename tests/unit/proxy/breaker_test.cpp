// CircuitBreaker: each resource admits exactly its limit, refusals are counted per resource,
// and slots come back when tokens die, are released, or are moved over.
#include "proxy/breaker.h"

#include <gtest/gtest.h>

#include <type_traits>
#include <utility>
#include <vector>

namespace proxer::proxy {
namespace {

using Res = CircuitBreaker::Resource;
using Token = CircuitBreaker::Token;

static_assert(!std::is_copy_constructible_v<Token> && !std::is_copy_assignable_v<Token>);
static_assert(std::is_nothrow_move_constructible_v<Token> &&
              std::is_nothrow_move_assignable_v<Token>);
static_assert(!std::is_copy_constructible_v<CircuitBreaker> &&
              !std::is_move_constructible_v<CircuitBreaker>);

constexpr Res kAll[] = {Res::Connections, Res::Pending, Res::Requests, Res::Retries};

config::BreakerConfig limits(std::uint32_t connections, std::uint32_t pending,
                             std::uint32_t requests, std::uint32_t retries) {
  config::BreakerConfig c;
  c.max_connections = connections;
  c.max_pending = pending;
  c.max_requests = requests;
  c.max_retries = retries;
  return c;
}

TEST(CircuitBreaker, AdmitsExactlyTheLimitThenRefusesAndCounts) {
  CircuitBreaker b(limits(10, 10, 2, 10));
  auto t1 = b.try_acquire(Res::Requests);
  EXPECT_FALSE(b.open(Res::Requests));
  auto t2 = b.try_acquire(Res::Requests);
  ASSERT_TRUE(t1 && t2);
  EXPECT_TRUE(t1->held());
  EXPECT_EQ(t1->resource(), Res::Requests);
  EXPECT_EQ(b.active(Res::Requests), 2u);
  EXPECT_TRUE(b.open(Res::Requests));
  EXPECT_EQ(b.overflow(Res::Requests), 0u);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_FALSE(b.try_acquire(Res::Requests));
    EXPECT_EQ(b.overflow(Res::Requests), static_cast<std::uint64_t>(i));
  }
  EXPECT_EQ(b.active(Res::Requests), 2u);  // refusals take nothing
}

TEST(CircuitBreaker, DestroyingATokenGivesTheSlotBack) {
  CircuitBreaker b(limits(1, 1, 1, 1));
  {
    auto t = b.try_acquire(Res::Connections);
    ASSERT_TRUE(t);
    EXPECT_TRUE(b.open(Res::Connections));
    EXPECT_FALSE(b.try_acquire(Res::Connections));
  }
  EXPECT_EQ(b.active(Res::Connections), 0u);
  EXPECT_FALSE(b.open(Res::Connections));
  EXPECT_TRUE(b.try_acquire(Res::Connections));  // acquired and released at once
  EXPECT_EQ(b.active(Res::Connections), 0u);
  EXPECT_EQ(b.overflow(Res::Connections), 1u);
}

TEST(CircuitBreaker, ExplicitReleaseIsIdempotent) {
  CircuitBreaker b(limits(1, 3, 1, 1));
  auto a = b.try_acquire(Res::Pending);
  auto c = b.try_acquire(Res::Pending);
  ASSERT_TRUE(a && c);
  a->release();
  EXPECT_FALSE(a->held());
  EXPECT_EQ(b.active(Res::Pending), 1u);
  a->release();
  a.reset();  // destroying a released token releases nothing either
  EXPECT_EQ(b.active(Res::Pending), 1u);
}

TEST(CircuitBreaker, MovingATokenMovesTheSlot) {
  CircuitBreaker b(limits(1, 1, 3, 1));
  auto a = b.try_acquire(Res::Requests);
  ASSERT_TRUE(a);
  Token moved(std::move(*a));
  EXPECT_FALSE(a->held());
  EXPECT_TRUE(moved.held());
  a.reset();
  EXPECT_EQ(b.active(Res::Requests), 1u);
  // Move-assigning onto a held token releases the slot it held.
  auto other = b.try_acquire(Res::Requests);
  ASSERT_TRUE(other);
  EXPECT_EQ(b.active(Res::Requests), 2u);
  *other = std::move(moved);
  EXPECT_EQ(b.active(Res::Requests), 1u);
  EXPECT_FALSE(moved.held());
  // Self-move keeps the slot.
  Token& self = *other;
  *other = std::move(self);
  EXPECT_TRUE(other->held());
  EXPECT_EQ(b.active(Res::Requests), 1u);
  other.reset();
  EXPECT_EQ(b.active(Res::Requests), 0u);
}

TEST(CircuitBreaker, TokensInAContainerReleaseWhenRemoved) {
  CircuitBreaker b(limits(100, 1, 1, 1));
  std::vector<Token> held;
  while (auto t = b.try_acquire(Res::Connections)) held.push_back(std::move(*t));
  EXPECT_EQ(held.size(), 100u);  // reallocations moved them without losing or adding slots
  EXPECT_EQ(b.active(Res::Connections), 100u);
  EXPECT_EQ(b.overflow(Res::Connections), 1u);
  held.erase(held.begin(), held.begin() + 40);
  EXPECT_EQ(b.active(Res::Connections), 60u);
  held.clear();
  EXPECT_EQ(b.active(Res::Connections), 0u);
}

TEST(CircuitBreaker, ResourcesAreIndependent) {
  CircuitBreaker b(limits(1, 2, 3, 4));
  std::vector<Token> held;
  // Fill every resource in turn and overflow each a different number of times.
  std::uint32_t expected_limit = 1;
  for (Res r : kAll) {
    EXPECT_EQ(b.limit(r), expected_limit);
    for (std::uint32_t i = 0; i < expected_limit; ++i) held.push_back(*b.try_acquire(r));
    for (std::uint32_t i = 0; i < expected_limit; ++i) EXPECT_FALSE(b.try_acquire(r));
    ++expected_limit;
  }
  std::uint64_t n = 1;
  for (Res r : kAll) {
    EXPECT_TRUE(b.open(r));
    EXPECT_EQ(b.active(r), n);
    EXPECT_EQ(b.overflow(r), n);
    ++n;
  }
  // Releasing one resource's tokens opens only that one.
  held.erase(held.begin() + 1, held.begin() + 3);  // the two Pending tokens
  EXPECT_FALSE(b.open(Res::Pending));
  EXPECT_TRUE(b.open(Res::Connections));
  EXPECT_TRUE(b.open(Res::Requests));
  EXPECT_TRUE(b.open(Res::Retries));
}

TEST(CircuitBreaker, ALimitOfZeroRefusesEverything) {
  CircuitBreaker b(limits(5, 5, 5, 0));
  EXPECT_TRUE(b.open(Res::Retries));
  EXPECT_FALSE(b.try_acquire(Res::Retries));
  EXPECT_EQ(b.overflow(Res::Retries), 1u);
  EXPECT_FALSE(b.open(Res::Requests));
}

TEST(CircuitBreaker, DefaultsComeFromTheConfig) {
  CircuitBreaker b{config::BreakerConfig{}};
  EXPECT_EQ(b.limit(Res::Connections), 1024u);
  EXPECT_EQ(b.limit(Res::Pending), 1024u);
  EXPECT_EQ(b.limit(Res::Requests), 1024u);
  EXPECT_EQ(b.limit(Res::Retries), 3u);
  for (Res r : kAll) {
    EXPECT_EQ(b.active(r), 0u);
    EXPECT_EQ(b.overflow(r), 0u);
    EXPECT_FALSE(b.open(r));
  }
}

}  // namespace
}  // namespace proxer::proxy
