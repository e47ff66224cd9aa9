#include "tunnel/session.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "tunnel/recv_buffer.h"

namespace proxer::tunnel {

using proto::ErrorCode;
using proto::FrameType;

namespace {
// Writes at or below this size are copied into the queue, so the writer returns at once; larger
// ones are sent from the caller's buffer. Either way memory is bounded by the window.
constexpr std::size_t kCopyThreshold = 16 * 1024;
// The writer gathers at most this many frames into one write.
constexpr std::size_t kMaxGather = 64;
// Read buffer: small while the link is quiet (an idle session costs little), room for several
// maximum-size frames per read while it is busy (see recv_buffer.h).
constexpr std::size_t kSmallReadBuffer = 4 * 1024;
constexpr std::size_t kLargeReadBuffer = 256 * 1024;
// How long a closing session may take to flush its last frames.
constexpr auto kCloseFlushTimeout = std::chrono::seconds(2);

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("session");  // NOLINT: immutable after first use
  return l;
}
}  // namespace

std::uint64_t monotonic_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// ---------------------------------------------------------------------------------------------
// Stream

Stream::Stream(std::shared_ptr<Session> session, std::uint32_t id, std::uint32_t window)
    : session_(std::move(session)),
      id_(id),
      window_(window),
      send_credit_(window),
      recv_allowance_(window),
      event_(session_->get_executor()) {}

Stream::~Stream() = default;

bool Stream::reusable() const {
  return !fin_received_ && !fin_sent_ && !reset_ && !aborted_ && !session_closed_ &&
         inbound_.empty() && !session_->going_away();
}

error_code Stream::read_error() const {
  if (aborted_) return net::error::operation_aborted;
  if (!inbound_.empty()) return {};
  if (reset_) return net::error::connection_reset;
  if (fin_received_) return net::error::eof;
  if (session_closed_) return net::error::connection_aborted;
  return {};
}

awaitable<error_code> Stream::wait_readable() {
  auto self = shared_from_this();
  for (;;) {
    if (aborted_) co_return net::error::operation_aborted;
    if (!inbound_.empty()) co_return error_code{};
    if (auto ec = read_error()) co_return ec;
    if (!co_await event_.wait()) co_return net::error::operation_aborted;
  }
}

awaitable<error_code> Stream::wait_more(std::size_t have) {
  auto self = shared_from_this();
  for (;;) {
    if (aborted_) co_return net::error::operation_aborted;
    if (inbound_.size() > have) co_return error_code{};
    if (reset_) co_return net::error::connection_reset;
    if (fin_received_) co_return net::error::eof;
    if (session_closed_) co_return net::error::connection_aborted;
    if (!co_await event_.wait()) co_return net::error::operation_aborted;
  }
}

awaitable<std::pair<error_code, std::size_t>> Stream::read_some(net::mutable_buffer buf) {
  if (auto ec = co_await wait_readable()) co_return std::pair{ec, std::size_t{0}};
  const auto avail = inbound_.front();
  const std::size_t n = std::min(avail.size(), buf.size());
  std::memcpy(buf.data(), avail.data(), n);
  consume(n);
  co_return std::pair{error_code{}, n};
}

void Stream::consume(std::size_t n) {
  inbound_.consume(n);
  if (reset_ || session_closed_ || fin_received_) return;
  unacked_consumed_ += static_cast<std::uint32_t>(n);
  // Credit the peer once half the window is used: few WINDOW_UPDATEs, no stall.
  if (unacked_consumed_ >= window_ / 2) {
    recv_allowance_ += unacked_consumed_;
    session_->send_window_update(id_, unacked_consumed_);
    unacked_consumed_ = 0;
  }
}

awaitable<error_code> Stream::write(net::const_buffer data) {
  auto self = shared_from_this();
  const auto* p = static_cast<const std::uint8_t*>(data.data());
  std::size_t left = data.size();
  std::uint64_t last_borrowed = 0;
  while (left > 0) {
    while (send_credit_ <= 0 && !reset_ && !aborted_ && !session_closed_) {
      if (!co_await event_.wait()) {
        aborted_ = true;
        break;
      }
    }
    if (aborted_) co_return net::error::operation_aborted;
    if (reset_) co_return net::error::connection_reset;
    if (session_closed_) co_return net::error::connection_aborted;
    if (fin_sent_) co_return net::error::shut_down;
    const std::size_t n = std::min<std::size_t>(
        {left, static_cast<std::size_t>(send_credit_), session_->opts_.max_payload});
    const bool copy = data.size() <= kCopyThreshold;
    const auto seq = session_->enqueue_data(self, 0, net::const_buffer(p, n), copy);
    if (!copy) last_borrowed = seq;
    send_credit_ -= static_cast<std::int64_t>(n);
    bytes_out_ += n;
    p += n;
    left -= n;
  }
  // Large writes: the writer reads from `data` until it is flushed.
  while (last_borrowed != 0 && flushed_seq_ < last_borrowed && !session_closed_) {
    if (!co_await event_.wait()) {
      // The frames still reference the caller's buffer: the only safe exit is to kill the
      // session's transport use of it, which the session does by failing. Keep waiting.
      continue;
    }
  }
  if (session_closed_ && flushed_seq_ < last_borrowed) co_return net::error::connection_aborted;
  co_return error_code{};
}

void Stream::shutdown_send() {
  if (fin_sent_ || reset_ || session_closed_) return;
  fin_sent_ = true;
  session_->enqueue_data(shared_from_this(), proto::flags::kFin, {}, true);
  session_->maybe_forget(*this);
}

void Stream::reset(ErrorCode code) {
  if (reset_ || session_closed_) return;
  const bool finished = fin_sent_ && fin_received_;
  reset_ = true;
  reset_code_ = code;
  if (!finished) session_->send_reset(id_, code);
  event_.notify();
  session_->forget(id_);
}

void Stream::abort() {
  aborted_ = true;
  reset(ErrorCode::Cancelled);
  event_.notify();
}

void Stream::on_data(std::span<const std::uint8_t> payload, bool fin) {
  if (fin_received_) {  // DATA after FIN: the peer broke the stream's rules
    reset(ErrorCode::ProtocolError);
    return;
  }
  recv_allowance_ -= static_cast<std::int64_t>(payload.size());
  if (recv_allowance_ < 0) {
    logger()->warn("{}: stream {} exceeded its flow-control window", session_->opts_.name, id_);
    reset(ErrorCode::FlowControlError);
    return;
  }
  if (!payload.empty()) {
    inbound_.append(payload);
    bytes_in_ += payload.size();
  }
  if (fin) fin_received_ = true;
  event_.notify();
  if (fin) session_->maybe_forget(*this);
}

void Stream::on_window_update(std::uint32_t increment) {
  send_credit_ += increment;
  if (send_credit_ > (std::int64_t{1} << 31)) {
    reset(ErrorCode::FlowControlError);
    return;
  }
  event_.notify();
}

void Stream::on_reset(ErrorCode code) {
  if (reset_) return;
  reset_ = true;
  reset_code_ = code;
  event_.notify();
}

void Stream::on_session_closed() {
  session_closed_ = true;
  event_.notify();
}

void Stream::on_flushed(std::uint64_t seq) {
  flushed_seq_ = std::max(flushed_seq_, seq);
  event_.notify();
}

// ---------------------------------------------------------------------------------------------
// Session

Session::Session(transport::Stream io, SessionOptions opts)
    : ex_(io.get_executor()),
      io_(std::move(io)),
      opts_(std::move(opts)),
      write_event_(ex_),
      tick_timer_(ex_),
      next_stream_id_(opts_.opener ? 1 : 2),
      last_rx_(std::chrono::steady_clock::now()),
      remote_(io_.remote_address()),
      carrier_(io_.carrier()) {}

Session::~Session() = default;

void Session::start(std::shared_ptr<SessionHandler> handler) {
  handler_ = std::move(handler);
  // The preface goes first, before any frame.
  WriteItem preface;
  preface.owned.assign(proto::kPreface);
  preface.raw = true;
  enqueue(std::move(preface));
  auto self = shared_from_this();
  net::co_spawn(
      ex_, [self]() { return self->reader(); }, DetachedTask{"session reader"});
  net::co_spawn(
      ex_, [self]() { return self->writer(); }, DetachedTask{"session writer"});
  net::co_spawn(
      ex_, [self]() { return self->ticker(); }, DetachedTask{"session ticker"});
}

void Session::set_heartbeat(std::chrono::milliseconds interval,
                            std::chrono::milliseconds idle_timeout) {
  opts_.heartbeat_interval = interval;
  opts_.idle_timeout = idle_timeout;
  tick_timer_.cancel();  // re-arm with the new period
}

std::shared_ptr<Stream> Session::open_stream(const proto::OpenStream& open) {
  if (closed_ || closing_ || !opts_.opener || going_away()) return nullptr;
  if (streams_.size() >= opts_.max_streams) return nullptr;
  const std::uint32_t id = next_stream_id_;
  if (id > 0x7fffffffu) return nullptr;  // ids exhausted: the owner should reconnect
  next_stream_id_ += 2;
  auto s = std::make_shared<Stream>(shared_from_this(), id, opts_.window);
  streams_.emplace(id, s);
  const std::string payload = proto::encode(open);
  WriteItem item;
  item.header = proto::encode_header(FrameType::OpenStream, 0, id,
                                     static_cast<std::uint32_t>(payload.size()));
  item.owned = payload;
  enqueue(std::move(item));
  return s;
}

void Session::send_control(FrameType type, std::uint8_t flags, std::string_view payload) {
  if (closed_) return;
  WriteItem item;
  item.header = proto::encode_header(type, flags, 0, static_cast<std::uint32_t>(payload.size()));
  item.owned.assign(payload);
  enqueue(std::move(item));
}

void Session::go_away(ErrorCode code, std::string_view reason) {
  if (going_away_ || closed_) return;
  going_away_ = true;
  send_control(FrameType::GoAway, 0, proto::encode(proto::CodeReason{code, std::string(reason)}));
}

void Session::close(ErrorCode code, std::string reason) {
  if (closed_ || closing_) return;
  if (code != ErrorCode::None) {
    send_control(FrameType::Error, 0, proto::encode(proto::CodeReason{code, reason}));
  }
  close_reason_ = std::move(reason);
  closing_ = true;
  write_event_.notify();
  // Bound the flush: a peer that stopped reading must not keep us.
  auto self = shared_from_this();
  auto timer = std::make_shared<net::steady_timer>(ex_, kCloseFlushTimeout);
  timer->async_wait([self, timer](error_code) { self->fail(self->close_reason_); });
}

void Session::enqueue(WriteItem item) {
  item.seq = next_seq_++;
  queue_.push_back(std::move(item));
  write_event_.notify();
}

std::uint64_t Session::enqueue_data(const std::shared_ptr<Stream>& s, std::uint8_t flags,
                                    net::const_buffer data, bool copy) {
  WriteItem item;
  item.header = proto::encode_header(FrameType::Data, flags, s->id(),
                                     static_cast<std::uint32_t>(data.size()));
  if (copy) {
    item.owned.assign(static_cast<const char*>(data.data()), data.size());
  } else {
    item.borrowed = data;
    item.waiter = s;
  }
  const auto seq = next_seq_;
  enqueue(std::move(item));
  return seq;
}

void Session::send_window_update(std::uint32_t id, std::uint32_t increment) {
  if (closed_) return;
  WriteItem item;
  item.header = proto::encode_header(FrameType::WindowUpdate, 0, id, 4);
  item.owned.resize(4);
  proto::put_u32(reinterpret_cast<std::uint8_t*>(item.owned.data()), increment);
  enqueue(std::move(item));
}

void Session::send_reset(std::uint32_t id, ErrorCode code) {
  if (closed_) return;
  WriteItem item;
  item.header = proto::encode_header(FrameType::CloseStream, proto::flags::kRst, id, 4);
  item.owned.resize(4);
  proto::put_u32(reinterpret_cast<std::uint8_t*>(item.owned.data()),
                 static_cast<std::uint32_t>(code));
  enqueue(std::move(item));
}

void Session::forget(std::uint32_t id) {
  streams_.erase(id);
}

void Session::maybe_forget(Stream& s) {
  if (s.fin_sent_ && s.fin_received_) forget(s.id_);
}

void Session::fail(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  closing_ = false;
  io_.close();
  tick_timer_.cancel();
  write_event_.notify();
  // Fail every stream, then drop our references (streams keep the session alive, not reverse).
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) s->on_session_closed();
  for (auto& item : inflight_) {
    if (item.waiter) item.waiter->on_session_closed();
  }
  for (auto& item : queue_) {
    if (item.waiter) item.waiter->on_session_closed();
  }
  queue_.clear();
  if (auto h = std::move(handler_)) h->on_closed(*this, reason);
}

awaitable<void> Session::writer() {
  auto self = shared_from_this();
  for (;;) {
    while (queue_.empty() && !closed_ && !closing_) co_await write_event_.wait();
    if (closed_) co_return;
    if (queue_.empty()) {  // closing and flushed
      fail(close_reason_.empty() ? "closed" : close_reason_);
      co_return;
    }
    inflight_.clear();
    gather_.clear();
    while (!queue_.empty() && inflight_.size() < kMaxGather) {
      inflight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (auto& item : inflight_) {
      if (!item.raw) gather_.emplace_back(item.header.data(), item.header.size());
      if (!item.owned.empty()) gather_.emplace_back(item.owned.data(), item.owned.size());
      if (item.borrowed.size() > 0) gather_.push_back(item.borrowed);
    }
    auto [ec, n] = co_await io_.write(std::span<const net::const_buffer>(gather_));
    if (ec) {
      fail("write failed: " + ec.message());
      co_return;
    }
    for (auto& item : inflight_) {
      if (item.waiter) item.waiter->on_flushed(item.seq);
    }
    inflight_.clear();
  }
}

awaitable<void> Session::reader() {
  auto self = shared_from_this();
  // Frames are decoded against the largest payload this session accepts, and the buffer always
  // makes room for the whole frame at its front, so a frame can never be "too big to finish".
  // (The agent raises max_payload after AUTH_RESPONSE: the large size follows it.)
  auto large_size = [this]() {
    return std::max<std::size_t>(kLargeReadBuffer, 2 * (opts_.max_payload + proto::kHeaderSize));
  };
  RecvBuffer buf(kSmallReadBuffer, large_size());
  auto read_more = [&](std::size_t frame_size) -> awaitable<bool> {
    buf.set_large(large_size());
    const auto space = buf.prepare(frame_size);
    auto [ec, n] = co_await io_.read_some(net::buffer(space.data(), space.size()));
    if (ec) {
      fail(ec == net::error::eof ? "peer closed the connection" : "read failed: " + ec.message());
      co_return false;
    }
    buf.commit(n, space.size());
    last_rx_ = std::chrono::steady_clock::now();
    co_return true;
  };

  // Preface.
  while (buf.pending().size() < proto::kPreface.size()) {
    if (!co_await read_more(proto::kPreface.size())) co_return;
  }
  if (std::memcmp(buf.pending().data(), proto::kPreface.data(), proto::kPreface.size()) != 0) {
    logger()->warn("{} from {}: not a proxer tunnel peer (bad preface)", opts_.name, remote_);
    close(ErrorCode::ProtocolError, "bad preface: not a proxer protocol v1 peer");
    co_return;
  }
  buf.consume(proto::kPreface.size());

  for (;;) {
    if (closed_) co_return;
    auto d = proto::decode(buf.pending(), opts_.max_payload);
    if (d.status == proto::DecodeStatus::Frame) {
      // dispatch() copies what it keeps: the payload may be consumed right after.
      const bool ok = dispatch(d.header, d.payload);
      buf.consume(d.consumed);
      if (!ok) co_return;
      continue;
    }
    if (d.status == proto::DecodeStatus::Error) {
      logger()->warn("{} from {}: malformed frame: {}", opts_.name, remote_,
                     proto::to_string(d.error));
      close(ErrorCode::ProtocolError,
            std::string("malformed frame: ") + std::string(proto::to_string(d.error)));
      co_return;
    }
    if (!co_await read_more(d.needed)) co_return;
  }
}

bool Session::dispatch(const proto::FrameHeader& h, proto::Bytes payload) {
  switch (h.type) {
    case FrameType::Data: {
      auto it = streams_.find(h.stream_id);
      if (it == streams_.end()) {
        // Data racing with our reset/close is normal; data for a stream never opened is not.
        if (!opts_.opener && h.stream_id > highest_peer_stream_) {
          close(ErrorCode::ProtocolError, "DATA on a stream that was never opened");
          return false;
        }
        if (opts_.opener && h.stream_id >= next_stream_id_) {
          close(ErrorCode::ProtocolError, "DATA on a stream that was never opened");
          return false;
        }
        return true;
      }
      auto stream = it->second;  // keep alive across callbacks
      stream->on_data(payload, (h.flags & proto::flags::kFin) != 0);
      return true;
    }
    case FrameType::WindowUpdate: {
      auto it = streams_.find(h.stream_id);
      if (it != streams_.end()) {
        auto stream = it->second;
        stream->on_window_update(proto::get_u32(payload.data()));
      }
      return true;
    }
    case FrameType::CloseStream: {
      auto it = streams_.find(h.stream_id);
      if (it != streams_.end()) {
        auto stream = it->second;
        auto code = payload.size() == 4 ? static_cast<ErrorCode>(proto::get_u32(payload.data()))
                                        : ErrorCode::None;
        streams_.erase(it);
        stream->on_reset(code);
      }
      return true;
    }
    case FrameType::OpenStream: {
      if (opts_.opener || h.stream_id % 2 == 0 || h.stream_id <= highest_peer_stream_) {
        close(ErrorCode::ProtocolError, "OPEN_STREAM with an invalid stream id");
        return false;
      }
      highest_peer_stream_ = h.stream_id;
      std::string err;
      auto open = proto::decode_open_stream(payload, &err);
      if (!open) {
        close(ErrorCode::ProtocolError, err);
        return false;
      }
      // After our GOAWAY the peer opens nothing new once it has read it, so an OPEN_STREAM
      // arriving now crossed it on the wire: it is served (as HTTP/2 serves streams up to
      // GOAWAY's last-stream-id), which a carrier switch relies on.
      if (streams_.size() >= opts_.max_streams || closing_) {
        send_reset(h.stream_id, ErrorCode::Shutdown);
        return true;
      }
      auto s = std::make_shared<Stream>(shared_from_this(), h.stream_id, opts_.window);
      streams_.emplace(h.stream_id, s);
      if (handler_) handler_->on_open(*this, std::move(s), std::move(*open));
      return true;
    }
    case FrameType::Heartbeat: {
      if (h.flags & proto::flags::kAck) {
        const auto sent = proto::get_u64(payload.data());
        const auto now = monotonic_ns();
        if (now >= sent) rtt_ = std::chrono::microseconds((now - sent) / 1000);
      } else {
        send_control(FrameType::Heartbeat, proto::flags::kAck,
                     std::string_view(reinterpret_cast<const char*>(payload.data()), 8));
      }
      return true;
    }
    case FrameType::GoAway:
      peer_going_away_ = true;
      if (handler_) handler_->on_control(*this, h, payload);
      return true;
    case FrameType::Error: {
      std::string err;
      auto cr = proto::decode_code_reason(payload, &err);
      fail(cr ? "peer error: " + std::string(proto::to_string(cr->code)) +
                    (cr->reason.empty() ? "" : " (" + cr->reason + ")")
              : "peer error");
      return false;
    }
    case FrameType::AuthRequest:
    case FrameType::AuthResponse:
    case FrameType::RegisterTunnel:
    case FrameType::UnregisterTunnel:
    case FrameType::TunnelHealth:
      if (handler_) handler_->on_control(*this, h, payload);
      return !closed_;
  }
  return true;
}

awaitable<void> Session::ticker() {
  auto self = shared_from_this();
  for (;;) {
    auto period = opts_.heartbeat_interval.count() > 0
                      ? opts_.heartbeat_interval
                      : std::max(opts_.idle_timeout / 4, std::chrono::milliseconds(100));
    tick_timer_.expires_after(period);
    co_await tick_timer_.async_wait(use_nothrow);
    if (closed_) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (opts_.idle_timeout.count() > 0 && now - last_rx_ > opts_.idle_timeout) {
      logger()->info("{} {}: nothing received for {} ms, closing", opts_.name, remote_,
                     opts_.idle_timeout.count());
      close(ErrorCode::IdleTimeout, "heartbeat timeout");
      co_return;
    }
    if (opts_.heartbeat_interval.count() > 0 &&
        now - last_hb_sent_ >= opts_.heartbeat_interval / 2) {
      last_hb_sent_ = now;
      std::string ts(8, '\0');
      proto::put_u64(reinterpret_cast<std::uint8_t*>(ts.data()), monotonic_ns());
      send_control(FrameType::Heartbeat, 0, ts);
    }
  }
}

}  // namespace proxer::tunnel
