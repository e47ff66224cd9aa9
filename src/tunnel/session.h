#pragma once
// A multiplexed tunnel session over one byte stream (protocol v1, docs/PROTOCOL.md).
//
// Threading: a Session, its Streams and every coroutine using them live on one executor (one
// thread). There are no locks: state changes and wake-ups happen on that thread.
//
// Coroutines of a session: one reader (decode frames, dispatch), one writer (the only one that
// writes to the transport, gathering queued frames into one write), one timer (heartbeats and
// the idle deadline). Streams read from a per-stream queue bounded by the flow-control window and
// write through the session's queue; a large write is not copied: the writer sends the caller's
// buffer and the caller waits until it is flushed.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/asio.h"
#include "core/event.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "transport/stream.h"
#include "tunnel/byte_queue.h"

namespace proxer::tunnel {

class Session;

struct SessionOptions {
  std::uint32_t max_payload = proto::kDefaultMaxPayload;  // largest DATA payload sent/accepted
  std::uint32_t window = proto::kDefaultWindow;           // initial per-stream window, both ways
  std::uint32_t max_streams = 16384;                      // concurrent streams accepted
  std::chrono::milliseconds heartbeat_interval{0};        // 0: never send heartbeats
  std::chrono::milliseconds idle_timeout{30'000};         // close when nothing is received
  bool opener = false;  // true on the gateway: opens streams (odd ids)
  std::string name;     // for logs: "agent laptop-1" / "gateway"
};

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  Stream(std::shared_ptr<Session> session, std::uint32_t id, std::uint32_t window);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  std::uint32_t id() const { return id_; }

  // Reads at least one byte. net::error::eof after the peer's FIN; connection_reset when the
  // peer reset the stream (see reset_code()); connection_aborted when the session died;
  // operation_aborted after abort().
  awaitable<std::pair<error_code, std::size_t>> read_some(net::mutable_buffer buf);
  // The first contiguous run of received, unread bytes, without copying; empty when none.
  // Stays valid (the bytes do not move) while more data arrives, until consume().
  std::span<const std::uint8_t> peek() const { return inbound_.front(); }
  // All received, unread bytes as one contiguous run (merges internal chunks: earlier views
  // from peek() become invalid). For parsing a head that may span several frames.
  std::span<const std::uint8_t> peek_all() { return inbound_.contiguous(); }
  std::size_t buffered() const { return inbound_.size(); }
  // Waits until peek() is non-empty or the stream can give no more (returns the error then).
  awaitable<error_code> wait_readable();
  // Waits until more than `have` bytes are buffered (see peek_all()).
  awaitable<error_code> wait_more(std::size_t have);
  // Marks `n` bytes of peek() as read (replenishes the peer's window).
  void consume(std::size_t n);

  // Writes all of `data`, waiting for window credit. Returns once the bytes are queued (small
  // writes: copied) or flushed to the transport (large writes: sent from `data`, no copy).
  awaitable<error_code> write(net::const_buffer data);
  // Half-close: sends FIN after everything written so far.
  void shutdown_send();
  // Abortive close with `code` (sends CLOSE_STREAM RST unless already finished).
  void reset(proto::ErrorCode code);
  // Wakes pending reads/writes with operation_aborted and resets the stream with Cancelled.
  void abort();

  bool fin_received() const { return fin_received_; }
  bool fin_sent() const { return fin_sent_; }
  bool is_reset() const { return reset_; }
  // Why the stream was reset (the peer's code, or ours).
  proto::ErrorCode reset_code() const { return reset_code_; }
  // Open in both directions, nothing pending: may carry another request.
  bool reusable() const;
  std::uint64_t bytes_in() const { return bytes_in_; }
  std::uint64_t bytes_out() const { return bytes_out_; }

 private:
  friend class Session;
  void on_data(std::span<const std::uint8_t> payload, bool fin);
  void on_window_update(std::uint32_t increment);
  void on_reset(proto::ErrorCode code);
  void on_session_closed();
  void on_flushed(std::uint64_t seq);
  error_code read_error() const;

  std::shared_ptr<Session> session_;
  std::uint32_t id_;
  std::uint32_t window_;
  ByteQueue inbound_;
  std::int64_t send_credit_;     // bytes we may still send
  std::int64_t recv_allowance_;  // bytes the peer may still send
  std::uint32_t unacked_consumed_ = 0;
  std::uint64_t flushed_seq_ = 0;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  bool fin_received_ = false;
  bool fin_sent_ = false;
  bool reset_ = false;
  bool aborted_ = false;
  bool session_closed_ = false;
  proto::ErrorCode reset_code_ = proto::ErrorCode::None;
  Event event_;
};

// What the owner of a session (gateway agent connection, agent) is told.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // A control frame on stream 0 (AUTH_*, REGISTER_TUNNEL, UNREGISTER_TUNNEL, GOAWAY).
  virtual void on_control(Session& s, const proto::FrameHeader& h, proto::Bytes payload) = 0;
  // The peer opened a stream (agent side). The handler owns the stream from here.
  virtual void on_open(Session& s, std::shared_ptr<Stream> stream, proto::OpenStream open) = 0;
  // The session ended; called once. `reason` is human readable.
  virtual void on_closed(Session& s, const std::string& reason) = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(transport::Stream io, SessionOptions opts);
  ~Session();

  // Starts the reader, writer and timer coroutines. The handler is kept until on_closed.
  void start(std::shared_ptr<SessionHandler> handler);

  // Opens a stream (opener side only). nullptr when closed, going away, or at max_streams.
  std::shared_ptr<Stream> open_stream(const proto::OpenStream& open);

  // Queues a control frame (copied).
  void send_control(proto::FrameType type, std::uint8_t flags, std::string_view payload);
  // Sends GOAWAY: the peer opens no new streams; existing ones finish.
  void go_away(proto::ErrorCode code, std::string_view reason);
  // Sends ERROR (when code != None), flushes, then closes the transport.
  void close(proto::ErrorCode code, std::string reason);

  // Negotiated values (set by the owner after AUTH).
  void set_max_payload(std::uint32_t v) { opts_.max_payload = v; }
  void set_window(std::uint32_t v) { opts_.window = v; }
  void set_heartbeat(std::chrono::milliseconds interval, std::chrono::milliseconds idle_timeout);

  bool closed() const { return closed_; }
  bool going_away() const { return going_away_ || peer_going_away_; }
  std::size_t stream_count() const { return streams_.size(); }
  std::chrono::microseconds rtt() const { return rtt_; }
  const std::string& remote_address() const { return remote_; }
  const char* carrier() const { return carrier_; }
  const SessionOptions& options() const { return opts_; }
  net::any_io_executor get_executor() const { return ex_; }

 private:
  friend class Stream;
  struct WriteItem {
    proto::HeaderBytes header;
    std::string owned;               // copied payload (control frames, small data)
    net::const_buffer borrowed;      // zero-copy payload (large data; caller waits)
    std::shared_ptr<Stream> waiter;  // notified with seq when flushed (borrowed only)
    std::uint64_t seq = 0;
    bool raw = false;  // no frame header (the preface)
  };

  awaitable<void> reader();
  awaitable<void> writer();
  awaitable<void> ticker();
  bool dispatch(const proto::FrameHeader& h, proto::Bytes payload);
  void enqueue(WriteItem item);
  std::uint64_t enqueue_data(const std::shared_ptr<Stream>& s, std::uint8_t flags,
                             net::const_buffer data, bool copy);
  void send_window_update(std::uint32_t id, std::uint32_t increment);
  void send_reset(std::uint32_t id, proto::ErrorCode code);
  void forget(std::uint32_t id);
  void maybe_forget(Stream& s);
  void fail(const std::string& reason);

  net::any_io_executor ex_;
  transport::Stream io_;
  SessionOptions opts_;
  std::shared_ptr<SessionHandler> handler_;
  boost::unordered_flat_map<std::uint32_t, std::shared_ptr<Stream>> streams_;
  std::deque<WriteItem> queue_;
  std::vector<WriteItem> inflight_;
  std::vector<net::const_buffer> gather_;
  Event write_event_;
  net::steady_timer tick_timer_;
  std::uint64_t next_seq_ = 1;
  std::uint32_t next_stream_id_;
  std::uint32_t highest_peer_stream_ = 0;
  std::chrono::steady_clock::time_point last_rx_;
  std::chrono::steady_clock::time_point last_hb_sent_{};
  std::chrono::microseconds rtt_{0};
  std::string remote_;
  const char* carrier_;
  bool closed_ = false;
  bool closing_ = false;  // flushing the queue, then close
  bool going_away_ = false;
  bool peer_going_away_ = false;
  std::string close_reason_;
};

// Monotonic nanoseconds, for heartbeat timestamps.
std::uint64_t monotonic_ns();

}  // namespace proxer::tunnel
