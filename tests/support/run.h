#pragma once
// Test helpers for coroutine code: run an awaitable to completion on an io_context with a
// deadline, so a hang fails the test instead of stalling the suite.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "core/asio.h"

namespace proxer::testing {

// Runs `task` on `ioc` until it completes or `timeout` passes. Returns false on timeout.
bool run_for(net::io_context& ioc, awaitable<void> task,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Runs the io_context for `d` (lets queued handlers settle).
void settle(net::io_context& ioc, std::chrono::milliseconds d = std::chrono::milliseconds(20));

}  // namespace proxer::testing
