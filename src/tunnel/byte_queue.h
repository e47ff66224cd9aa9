#pragma once
// A FIFO of received bytes, kept as a list of chunks whose bytes never move until consumed:
// a caller may write straight from peek() while more data is appended (zero-copy relay).
// Appends fill the last chunk only within its capacity (no reallocation), else start a new
// chunk. An empty queue holds no memory, so an idle stream costs nothing.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <span>
#include <vector>

namespace proxer::tunnel {

class ByteQueue {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The first contiguous run of bytes (the front chunk). Stable until consume().
  std::span<const std::uint8_t> front() const {
    if (chunks_.empty()) return {};
    const auto& c = chunks_.front();
    return {c.data.data() + c.begin, c.data.size() - c.begin};
  }

  // All bytes as one contiguous run, merging chunks if needed. Invalidates earlier views: call
  // only when no write is in flight from front().
  std::span<const std::uint8_t> contiguous() {
    if (chunks_.size() > 1) {
      Chunk merged;
      merged.data.reserve(size_);
      for (const auto& c : chunks_) {
        merged.data.insert(merged.data.end(), c.data.begin() + static_cast<std::ptrdiff_t>(c.begin),
                           c.data.end());
      }
      chunks_.clear();
      chunks_.push_back(std::move(merged));
    }
    return front();
  }

  void append(std::span<const std::uint8_t> in) {
    if (in.empty()) return;
    if (!chunks_.empty()) {
      auto& back = chunks_.back().data;
      if (back.capacity() - back.size() >= in.size()) {  // fits: no reallocation, no move
        back.insert(back.end(), in.begin(), in.end());
        size_ += in.size();
        return;
      }
    }
    // Into an empty queue (a request or response arriving whole, the usual case) the chunk is
    // exactly the payload: small allocations are cheap for malloc. Data that piles up behind
    // earlier data (a stream the consumer is not keeping up with) gets room for more.
    Chunk c;
    c.data.reserve(chunks_.empty() ? in.size() : std::max(in.size(), kMinChunk));
    c.data.assign(in.begin(), in.end());
    chunks_.push_back(std::move(c));
    size_ += in.size();
  }

  // Drops `n` bytes from the front (n <= size()).
  void consume(std::size_t n) {
    size_ -= n;
    while (n > 0) {
      auto& c = chunks_.front();
      const std::size_t avail = c.data.size() - c.begin;
      if (n < avail) {
        c.begin += n;
        return;
      }
      n -= avail;
      chunks_.pop_front();
    }
  }

 private:
  static constexpr std::size_t kMinChunk = 16 * 1024;
  struct Chunk {
    std::vector<std::uint8_t> data;
    std::size_t begin = 0;
  };
  std::deque<Chunk> chunks_;
  std::size_t size_ = 0;
};

}  // namespace proxer::tunnel
