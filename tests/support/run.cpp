#include "support/run.h"

namespace proxer::testing {

bool run_for(net::io_context& ioc, awaitable<void> task, std::chrono::milliseconds timeout) {
  bool done = false;
  std::exception_ptr error;
  net::co_spawn(ioc, std::move(task), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ioc.restart();
  while (!done && std::chrono::steady_clock::now() < deadline) {
    ioc.run_for(std::chrono::milliseconds(10));
    ioc.restart();
  }
  if (error) std::rethrow_exception(error);
  return done;
}

void settle(net::io_context& ioc, std::chrono::milliseconds d) {
  ioc.restart();
  ioc.run_for(d);
  ioc.restart();
}

}  // namespace proxer::testing
