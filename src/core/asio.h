#pragma once
// Asio/Beast aliases shared by every networking layer. Completion tokens are error-code
// returning (as_tuple) on the data plane: network and peer failures never throw.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace proxer {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;
template <typename T = void>
using awaitable = net::awaitable<T>;

// `co_await op(..., use_nothrow)` yields a tuple (error_code, results...).
inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

// Logs an exception escaping a detached coroutine (a bug: the data plane does not throw).
void log_coroutine_exception(std::exception_ptr e, const char* what);

// Completion handler for co_spawn of a task that must not throw.
struct DetachedTask {
  const char* what;
  void operator()(std::exception_ptr e) const {
    if (e) log_coroutine_exception(e, what);
  }
};

}  // namespace proxer
