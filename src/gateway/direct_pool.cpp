#include "gateway/direct_pool.h"

#include <sys/socket.h>

#include <algorithm>

namespace proxer::gateway {

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
using Clock = std::chrono::steady_clock;
}  // namespace

DirectConn::DirectConn(transport::Stream io, std::shared_ptr<PoolCounters> counters)
    : io_(std::move(io)), counters_(std::move(counters)) {
  ++counters_->open;
}

DirectConn::~DirectConn() {
  --counters_->open;
  io_.close();
}

awaitable<error_code> DirectConn::write(net::const_buffer data) {
  error_code ec;
  if (auto* sock = io_.plain_tcp()) {  // the common case without Stream's frames
    auto [wec, n] = co_await net::async_write(*sock, data, use_nothrow);
    ec = wec;
  } else {
    auto [wec, n] = co_await io_.write(data);
    ec = wec;
  }
  if (ec) broken_ = true;
  co_return ec;
}

awaitable<error_code> DirectConn::wait_more(std::size_t have) {
  while (in_.size() <= have) {
    if (broken_) co_return net::error::operation_aborted;
    const auto room = in_.prepare(kReadChunk);
    error_code ec;
    std::size_t n = 0;
    if (auto* sock = io_.plain_tcp()) {  // the common case without Stream's frames
      std::tie(ec, n) = co_await sock->async_read_some(room, use_nothrow);
    } else {
      std::tie(ec, n) = co_await io_.read_some(room);
    }
    in_.commit(n);
    if (ec) {
      broken_ = true;
      if (in_.size() > have) break;  // deliver what arrived; the next wait reports the error
      co_return ec;
    }
  }
  co_return error_code{};
}

void DirectConn::abort() {
  broken_ = true;
  io_.cancel();
}

bool DirectConn::alive_while_idle() {
  auto* sock = io_.tcp_socket();
  if (!sock || !sock->is_open()) return false;
  char byte = 0;
  const auto n = ::recv(sock->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0: the server closed; >0: it sent something unasked (a 408, a TLS alert): not reusable.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

DirectPool::DirectPool(net::any_io_executor ex, Options opts)
    : ex_(ex), opts_(std::move(opts)), sweep_(ex) {}

DirectPool::~DirectPool() {
  sweep_.cancel();
}

std::string DirectPool::address() const {
  return transport::join_host_port(opts_.host, opts_.port);
}

std::shared_ptr<DirectConn> DirectPool::take_idle() {
  const auto now = Clock::now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (now - c->idle_since < opts_.idle_timeout && c->alive_while_idle()) {
      ++counters_->reuses;
      return c;
    }
  }
  return nullptr;
}

awaitable<ConnectResult> DirectPool::connect() {
  ConnectResult r;
  auto [ec, sock] =
      co_await transport::connect_tcp(ex_, opts_.host, opts_.port, opts_.connect_timeout);
  if (ec) {
    r.ec = ec;
    r.stage = ConnectResult::Stage::Connect;
    co_return r;
  }
  if (!opts_.tls) {
    ++counters_->connects;
    r.conn = std::make_shared<DirectConn>(transport::Stream(std::move(sock)), counters_);
    co_return r;
  }
  auto [tec, tls] = co_await transport::tls_client_handshake(std::move(sock), *opts_.tls_context,
                                                             opts_.server_name, opts_.tls_timeout);
  if (tec) {
    r.ec = tec;
    r.stage = ConnectResult::Stage::Tls;
    co_return r;
  }
  ++counters_->connects;
  r.conn = std::make_shared<DirectConn>(transport::Stream(std::move(tls)), counters_);
  co_return r;
}

void DirectPool::give_back(std::shared_ptr<DirectConn> c) {
  if (!c || !c->reusable() || opts_.max_idle == 0 || closed_) return;
  if (idle_.size() >= opts_.max_idle) idle_.erase(idle_.begin());  // the one idle longest
  c->idle_since = Clock::now();
  idle_.push_back(std::move(c));
  arm_sweep();
}

void DirectPool::close_idle() {
  closed_ = true;
  idle_.clear();
  sweep_.cancel();
}

void DirectPool::arm_sweep() {
  if (sweep_armed_) return;
  sweep_armed_ = true;
  // Half the idle timeout between sweeps: a connection lives at most 1.5 idle timeouts idle.
  sweep_.expires_after(
      std::max<std::chrono::milliseconds>(opts_.idle_timeout / 2, std::chrono::milliseconds(100)));
  sweep_.async_wait([weak = weak_from_this()](error_code ec) {
    auto self = weak.lock();
    if (!self) return;
    self->sweep_armed_ = false;
    if (ec) return;
    const auto now = Clock::now();
    std::erase_if(self->idle_, [&](const std::shared_ptr<DirectConn>& c) {
      return now - c->idle_since >= self->opts_.idle_timeout || !c->alive_while_idle();
    });
    if (!self->idle_.empty()) self->arm_sweep();
  });
}

}  // namespace proxer::gateway
