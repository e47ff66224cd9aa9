#pragma once
// A FIFO of bytes in one contiguous vector: append at the back, consume from the front. Compacts
// lazily, and gives memory back when it drains after a burst, so an idle stream costs nothing.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace proxer::tunnel {

class ByteQueue {
 public:
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::span<const std::uint8_t> data() const { return {buf_.data() + begin_, size()}; }

  void append(std::span<const std::uint8_t> in) {
    if (in.empty()) return;
    if (buf_.size() - end_ < in.size()) {
      if (begin_ > 0) {  // slide the live bytes to the front first
        std::memmove(buf_.data(), buf_.data() + begin_, size());
        end_ -= begin_;
        begin_ = 0;
      }
      if (buf_.size() - end_ < in.size()) buf_.resize(std::max(buf_.size() * 2, end_ + in.size()));
    }
    std::memcpy(buf_.data() + end_, in.data(), in.size());
    end_ += in.size();
  }

  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
      if (buf_.capacity() > kKeepCapacity) std::vector<std::uint8_t>().swap(buf_);
    }
  }

 private:
  static constexpr std::size_t kKeepCapacity = 64 * 1024;
  std::vector<std::uint8_t> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace proxer::tunnel
