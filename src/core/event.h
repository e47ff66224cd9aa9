#pragma once
// Event: wakes the coroutines waiting on it. For objects confined to one executor (one
// thread): not thread-safe. Wake-ups may be spurious, so waiters loop on their condition:
//
//   while (!ready_) if (!co_await event_.wait()) co_return cancelled;
//
// A wait is cancellable through the awaiting coroutine's cancellation slot.
#include <boost/asio/this_coro.hpp>

#include "core/asio.h"

namespace proxer {

class Event {
 public:
  explicit Event(const net::any_io_executor& ex)
      : timer_(ex, net::steady_timer::time_point::max()) {}

  // Suspends until notify() or cancellation. Returns false if the awaiting coroutine was
  // cancelled (its cancellation state is set), true otherwise.
  awaitable<bool> wait() {
    co_await timer_.async_wait(use_nothrow);
    auto cs = co_await net::this_coro::cancellation_state;
    co_return cs.cancelled() == net::cancellation_type::none;
  }

  // Wakes every current waiter.
  void notify() { timer_.cancel(); }

 private:
  net::steady_timer timer_;
};

}  // namespace proxer
