#pragma once
// The receive buffer of a session: small while the link is quiet, large while it is busy.
//
// An idle agent session must cost the gateway little memory (DESIGN.md §7: under 16 KiB), yet a
// busy one wants room for several maximum-size frames per read() so bulk transfers take few
// system calls. The buffer starts small; a read that fills all the free space means more is
// waiting, so the next read gets the large size. Once every buffered byte has been consumed and
// several reads in a row came back short, it drops back to the small size. The memory is never
// zero-filled (only bytes actually read are touched), and whole frames always fit: the caller
// passes how many bytes the frame at the front needs.
//
// No I/O: the session reads into prepare() and reports the count with commit().
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

namespace proxer::tunnel {

class RecvBuffer {
 public:
  // `small`: size while quiet. `large`: size while busy (at least `small`).
  RecvBuffer(std::size_t small, std::size_t large)
      : small_(small), large_(std::max(small, large)) {}

  // The bytes received and not yet consumed.
  std::span<const std::uint8_t> pending() const { return {data_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  std::size_t capacity() const { return cap_; }

  void consume(std::size_t n) {
    begin_ += std::min(n, end_ - begin_);
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Space for the next read. `frame_size` is the total size of the frame that starts at the front
  // of pending() if known (0 otherwise): the space returned lets that frame complete. `large` may
  // be raised between calls (the negotiated payload size grows after authentication).
  std::span<std::uint8_t> prepare(std::size_t frame_size = 0) {
    std::size_t want = busy_ ? large_ : cap_;
    if (want == 0 || (empty() && quiet_reads_ >= kQuietReadsToShrink)) want = small_;
    want = std::max(want, frame_size);
    // Keep a useful amount of free space after the pending bytes.
    want = std::max(want, end_ - begin_ + small_ / 4 + 1);
    if (want != cap_) {
      reallocate(want);
    } else if (end_ == cap_ || cap_ - begin_ < frame_size) {
      compact();
    }
    return {data_.get() + end_, cap_ - end_};
  }

  // `n` bytes were read into the span returned by prepare().
  void commit(std::size_t n, std::size_t offered) {
    end_ += n;
    busy_ = n == offered;
    quiet_reads_ = n < small_ ? quiet_reads_ + 1 : 0;
  }

  void set_large(std::size_t large) { large_ = std::max(small_, large); }

  // Reads in a row shorter than `small` (with nothing pending) before the buffer shrinks back.
  static constexpr unsigned kQuietReadsToShrink = 4;

 private:
  void compact() {
    if (begin_ == 0) return;
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  void reallocate(std::size_t cap) {
    auto fresh = std::make_unique_for_overwrite<std::uint8_t[]>(cap);
    if (end_ > begin_) std::memcpy(fresh.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    data_ = std::move(fresh);
    cap_ = cap;
  }

  std::size_t small_;
  std::size_t large_;
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t cap_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  unsigned quiet_reads_ = 0;
  bool busy_ = false;
};

}  // namespace proxer::tunnel
