#pragma once
// Byte helpers shared by the proto tests: frames are written as hex or assembled from parts so
// each test shows the exact wire bytes it feeds the decoder.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/frame.h"

namespace proxer::proto::test_bytes {

using ByteVec = std::vector<std::uint8_t>;

// "01 0a ff" -> {0x01, 0x0a, 0xff}. Whitespace is ignored and '#' starts a comment that runs to
// the end of the line (the format of the test vectors in docs/PROTOCOL.md). Aborts on anything
// else: a typo in a vector must not silently shorten it.
inline ByteVec hex(std::string_view text) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  ByteVec out;
  int high = -1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') continue;
    const int v = nibble(c);
    if (v < 0) std::abort();
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  if (high >= 0) std::abort();
  return out;
}

inline std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) out.push_back(' ');
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0x0f]);
  }
  return out;
}

inline ByteVec bytes_of(std::string_view s) {
  return ByteVec(s.begin(), s.end());
}

inline std::span<const std::uint8_t> span_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Header + payload, with the length field taken from the payload.
inline ByteVec frame(FrameType type, std::uint8_t flags, std::uint32_t stream_id,
                     std::span<const std::uint8_t> payload = {}) {
  const auto h = encode_header(type, flags, stream_id, static_cast<std::uint32_t>(payload.size()));
  // Sized up front: GCC 12 misreports vector::insert here under -O2 (-Warray-bounds).
  ByteVec out(kHeaderSize + payload.size());
  std::copy(h.begin(), h.end(), out.begin());
  std::copy(payload.begin(), payload.end(), out.begin() + kHeaderSize);
  return out;
}

inline ByteVec frame(FrameType type, std::uint8_t flags, std::uint32_t stream_id,
                     std::string_view payload) {
  return frame(type, flags, stream_id, span_of(payload));
}

// Only the 12 header bytes, with an arbitrary length field (no payload follows).
inline ByteVec header(FrameType type, std::uint8_t flags, std::uint32_t stream_id,
                      std::uint32_t length) {
  const auto h = encode_header(type, flags, stream_id, length);
  return ByteVec(h.begin(), h.end());
}

inline ByteVec u32_payload(std::uint32_t v) {
  ByteVec out(4);
  put_u32(out.data(), v);
  return out;
}

inline ByteVec u64_payload(std::uint64_t v) {
  ByteVec out(8);
  put_u64(out.data(), v);
  return out;
}

inline ByteVec concat(std::initializer_list<ByteVec> parts) {
  ByteVec out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace proxer::proto::test_bytes
