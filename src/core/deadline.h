#pragma once
// A deadline for one asynchronous operation. When it passes before done() is called, `on_expire`
// runs; it typically cancels the operation's socket, which then completes with an error, and
// expired() tells the caller why. done() (or the destructor) disarms it for good: a timer
// handler that was already queued when the operation completed finds the deadline dead and does
// nothing, so `on_expire` never touches an object that is gone. Single-threaded (one executor).
#include <chrono>
#include <functional>
#include <memory>

#include "core/asio.h"

namespace proxer {

class Deadline {
 public:
  Deadline(net::any_io_executor ex, std::chrono::steady_clock::duration d,
           std::function<void()> on_expire)
      : timer_(ex, d), state_(std::make_shared<State>()) {
    state_->on_expire = std::move(on_expire);
    timer_.async_wait([state = state_](error_code ec) {
      if (ec || !state->live) return;
      state->expired = true;
      state->live = false;
      if (state->on_expire) state->on_expire();
    });
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline() { done(); }

  void done() {
    if (!state_->live) return;
    state_->live = false;
    state_->on_expire = nullptr;
    timer_.cancel();
  }
  bool expired() const { return state_->expired; }

 private:
  struct State {
    bool live = true;
    bool expired = false;
    std::function<void()> on_expire;
  };
  net::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace proxer
