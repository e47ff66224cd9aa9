#pragma once
// A deadline that is moved far more often than it expires: a connection's read and write
// timeouts, re-armed for every request and every write. arm() and disarm() only store a time
// point; one timer wait stays pending and, when it ends, compares the clock with the stored
// time: expired (and armed) runs `on_expire`, moved later waits again. So a request costs no
// timer cancellation and no re-registration (each of which is a trip through the scheduler and
// possibly a timerfd update), only an occasional wake-up per timeout period. Only an arm() to a
// time earlier than the pending wait restarts the wait.
//
// `on_expire` runs on the executor, only while armed, and never after the destructor: the
// handler shares a small state block, cleared by the destructor. Single-threaded.
#include <chrono>
#include <functional>
#include <memory>

#include "core/asio.h"

namespace proxer {

class LazyDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  LazyDeadline(net::any_io_executor ex, std::function<void()> on_expire)
      : timer_(ex), state_(std::make_shared<State>()) {
    state_->on_expire = std::move(on_expire);
  }
  LazyDeadline(const LazyDeadline&) = delete;
  LazyDeadline& operator=(const LazyDeadline&) = delete;
  ~LazyDeadline() {
    state_->on_expire = nullptr;
    timer_.cancel();
  }

  void arm(Clock::duration d) {
    state_->expired = false;
    state_->at = Clock::now() + d;
    // A wait that ends no later than the new time re-checks on expiry and waits again.
    if (state_->pending && timer_.expiry() <= state_->at) return;
    start();
  }
  void disarm() { state_->at = Clock::time_point::max(); }
  bool armed() const { return state_->at != Clock::time_point::max(); }
  // The last armed period ended in on_expire (reset by arm()).
  bool expired() const { return state_->expired; }
  // Stops the pending wait too (the owner is closing).
  void cancel() {
    disarm();
    timer_.cancel();
  }

 private:
  struct State {
    Clock::time_point at = Clock::time_point::max();  // max: disarmed
    bool pending = false;
    bool expired = false;
    std::uint64_t gen = 0;  // number of the pending wait; handlers of older ones do nothing
    std::function<void()> on_expire;
  };

  void start() {
    timer_.expires_at(state_->at);
    state_->pending = true;
    // The handler keeps the state block and this object's address; it uses the address only
    // while on_expire is set, which the destructor clears.
    timer_.async_wait([state = state_, self = this, gen = ++state_->gen](error_code ec) {
      if (gen != state->gen) return;  // restarted: a newer wait is pending
      state->pending = false;
      if (ec || !state->on_expire || state->at == Clock::time_point::max()) return;
      if (Clock::now() < state->at) {
        self->start();  // moved later meanwhile
        return;
      }
      state->at = Clock::time_point::max();
      state->expired = true;
      state->on_expire();
    });
  }

  net::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace proxer
