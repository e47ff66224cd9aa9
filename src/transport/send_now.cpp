#include "transport/send_now.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <vector>

namespace proxer::transport {

std::size_t send_now(tcp::socket& sock, std::span<const net::const_buffer> bufs, error_code& ec) {
  ec = {};
  std::array<iovec, 16> iov{};
  std::size_t count = 0;
  for (const auto& b : bufs) {
    if (b.size() == 0) continue;
    if (count == iov.size()) break;  // the rest goes in write_rest
    iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
  }
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  for (;;) {
    const ssize_t n = ::sendmsg(sock.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    ec = error_code(errno, boost::system::system_category());
    return 0;
  }
}

awaitable<std::tuple<error_code, std::size_t>> write_rest(tcp::socket& sock,
                                                          std::span<const net::const_buffer> bufs,
                                                          std::size_t done) {
  std::vector<net::const_buffer> rest;
  rest.reserve(bufs.size());
  for (auto b : bufs) {
    if (done >= b.size()) {
      done -= b.size();
      continue;
    }
    b += done;
    done = 0;
    rest.push_back(b);
  }
  auto [ec, n] = co_await net::async_write(sock, rest, use_nothrow);
  co_return std::tuple{ec, n};
}

awaitable<std::tuple<error_code, std::size_t>> write_all(tcp::socket& sock,
                                                         std::span<const net::const_buffer> bufs) {
  error_code ec;
  const std::size_t now = send_now(sock, bufs, ec);
  if (ec || now == net::buffer_size(bufs)) co_return std::tuple{ec, now};
  auto [ec2, rest] = co_await write_rest(sock, bufs, now);
  co_return std::tuple{ec2, now + rest};
}

}  // namespace proxer::transport
