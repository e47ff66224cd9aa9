#include "tunnel/recv_buffer.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace proxer::tunnel {
namespace {

constexpr std::size_t kSmall = 4096;
constexpr std::size_t kLarge = 65536;

// Simulates a read of `n` bytes (a counting pattern starting at `seed`) into prepare()'s span.
std::size_t fake_read(RecvBuffer& b, std::size_t n, std::uint8_t seed = 0, std::size_t frame = 0) {
  auto space = b.prepare(frame);
  n = std::min(n, space.size());
  for (std::size_t i = 0; i < n; ++i) space[i] = static_cast<std::uint8_t>(seed + i);
  b.commit(n, space.size());
  return n;
}

TEST(RecvBuffer, StartsSmallAndStaysSmallWhileReadsAreShort) {
  RecvBuffer b(kSmall, kLarge);
  for (int i = 0; i < 20; ++i) {
    fake_read(b, 100);
    EXPECT_EQ(b.capacity(), kSmall);
    b.consume(100);
  }
}

TEST(RecvBuffer, GrowsAfterAReadFillsTheSpaceAndKeepsPendingBytes) {
  RecvBuffer b(kSmall, kLarge);
  EXPECT_EQ(fake_read(b, kSmall * 2, 7), kSmall);  // filled: more is waiting
  b.consume(10);
  auto space = b.prepare();
  EXPECT_EQ(b.capacity(), kLarge);
  ASSERT_EQ(b.pending().size(), kSmall - 10);
  for (std::size_t i = 0; i < b.pending().size(); ++i) {
    ASSERT_EQ(b.pending()[i], static_cast<std::uint8_t>(7 + 10 + i)) << i;
  }
  EXPECT_EQ(space.size(), kLarge - (kSmall - 10));
}

TEST(RecvBuffer, ShrinksOnlyAfterSeveralQuietReadsWithNothingPending) {
  RecvBuffer b(kSmall, kLarge);
  fake_read(b, kSmall);
  b.consume(kSmall);
  fake_read(b, kLarge);  // large now, and filled
  EXPECT_EQ(b.capacity(), kLarge);
  b.consume(kLarge);
  for (unsigned i = 0; i < RecvBuffer::kQuietReadsToShrink; ++i) {
    fake_read(b, 50);
    EXPECT_EQ(b.capacity(), kLarge) << "read " << i;
    b.consume(50);
  }
  b.prepare();
  EXPECT_EQ(b.capacity(), kSmall);
}

TEST(RecvBuffer, NeverShrinksUnderPendingBytes) {
  RecvBuffer b(kSmall, kLarge);
  fake_read(b, kSmall);
  fake_read(b, kLarge);
  ASSERT_EQ(b.capacity(), kLarge);
  b.consume(b.pending().size() - 100);
  for (int i = 0; i < 10; ++i) fake_read(b, 10);  // quiet, but bytes stay pending
  const auto pending = b.pending().size();
  b.prepare();
  EXPECT_EQ(b.capacity(), kLarge);
  EXPECT_EQ(b.pending().size(), pending);
}

TEST(RecvBuffer, MakesRoomForAWholeFrameLargerThanBothSizes) {
  RecvBuffer b(kSmall, kLarge);
  fake_read(b, 12, 1);
  const std::size_t frame = kLarge * 2 + 12;
  auto space = b.prepare(frame);
  EXPECT_GE(b.pending().size() + space.size(), frame);
  EXPECT_EQ(b.pending()[0], 1);
}

TEST(RecvBuffer, CompactsWhenTheFrameDoesNotFitBehindTheFront) {
  RecvBuffer b(kSmall, kLarge);
  fake_read(b, 100);
  b.consume(90);  // 10 bytes left at offset 90
  auto space = b.prepare(kSmall);
  EXPECT_GE(b.pending().size() + space.size(), kSmall);
  EXPECT_EQ(b.capacity(), kSmall);
  EXPECT_EQ(b.pending()[0], 90);
}

TEST(RecvBuffer, FollowsARaisedLargeSize) {
  RecvBuffer b(kSmall, kLarge);
  b.set_large(kLarge * 4);
  fake_read(b, kSmall);
  b.prepare();
  EXPECT_EQ(b.capacity(), kLarge * 4);
}

TEST(RecvBuffer, ByteStreamSurvivesAnyMixOfReadsAndConsumes) {
  RecvBuffer b(kSmall, kLarge);
  std::uint64_t written = 0, read = 0;
  std::uint32_t rng = 12345;
  auto next = [&rng]() { return rng = rng * 1664525u + 1013904223u; };
  for (int step = 0; step < 5000; ++step) {
    auto space = b.prepare(next() % 3 == 0 ? next() % (kLarge * 2) : 0);
    const std::size_t n =
        std::min<std::size_t>(space.size(), next() % 3 == 0 ? space.size() : next() % 2000);
    for (std::size_t i = 0; i < n; ++i) space[i] = static_cast<std::uint8_t>(written + i);
    b.commit(n, space.size());
    written += n;
    const auto pending = b.pending();
    const std::size_t take = std::min<std::size_t>(pending.size(), next() % 5000);
    for (std::size_t i = 0; i < take; ++i) {
      ASSERT_EQ(pending[i], static_cast<std::uint8_t>(read + i)) << "step " << step;
    }
    b.consume(take);
    read += take;
  }
  EXPECT_EQ(written - read, b.pending().size());
}

}  // namespace
}  // namespace proxer::tunnel
