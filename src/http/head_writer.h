#pragma once
// The appender the head serialisers write through (internal to src/http). A serialised head is
// some thirty small pieces (names, ": ", values, CRLFs); std::string::append checks capacity and
// calls into the library for each, which cost about as much as the bytes themselves. HeadWriter
// makes room for the whole head once, up front, and then copies each piece into it; the string
// is cut to what was written when the writer goes out of scope. The up-front size is an
// estimate only: a piece that does not fit makes more room, so a wrong estimate costs time,
// never correctness.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace proxer::http {

class HeadWriter {
 public:
  // Appends to `out`, with room made now for `expected` more bytes.
  HeadWriter(std::string& out, std::size_t expected) : out_(out), used_(out.size()) {
    out_.resize(used_ + expected);
    p_ = out_.data() + used_;
    end_ = out_.data() + out_.size();
  }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;
  ~HeadWriter() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

  // (Inlined: a call per piece is what this class is here to avoid; a piece whose size is known
  // at compile time, such as ": " or a field name, becomes a few moves.)
  [[gnu::always_inline]] void append(std::string_view s) {
    room(s.size());
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  [[gnu::always_inline]] void append(const char* s, std::size_t n) {
    append(std::string_view(s, n));
  }
  [[gnu::always_inline]] void push_back(char c) {
    room(1);
    *p_++ = c;
  }

 private:
  [[gnu::always_inline]] void room(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
  }
  [[gnu::noinline]] void grow(std::size_t n) {
    const auto used = static_cast<std::size_t>(p_ - out_.data());
    out_.resize(std::max(out_.size() * 2, used + n));
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  std::size_t used_;  // the size of `out` before this writer
  char* p_;
  char* end_;
};

}  // namespace proxer::http
