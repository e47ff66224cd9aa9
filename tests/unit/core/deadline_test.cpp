#include "core/deadline.h"

#include <gtest/gtest.h>

#include <thread>

namespace proxer {
namespace {

TEST(Deadline, ExpiresAndRunsItsAction) {
  net::io_context io;
  int calls = 0;
  Deadline d(io.get_executor(), std::chrono::milliseconds(1), [&] { ++calls; });
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(d.expired());
  EXPECT_EQ(calls, 1);
  d.done();  // after expiry: harmless
  EXPECT_TRUE(d.expired());
}

TEST(Deadline, DoneBeforeExpiryDisarmsIt) {
  net::io_context io;
  int calls = 0;
  Deadline d(io.get_executor(), std::chrono::milliseconds(1), [&] { ++calls; });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // due, but nothing ran yet
  d.done();
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(d.expired());
  EXPECT_EQ(calls, 0);
}

TEST(Deadline, DestroyedDeadlineNeverCallsBack) {
  net::io_context io;
  int calls = 0;
  {
    Deadline d(io.get_executor(), std::chrono::milliseconds(1), [&] { ++calls; });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace proxer
