// Frame codec (src/proto/frame.cpp): header layout, validation, incremental decoding.
#include "proto/frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "test_bytes.h"

namespace proxer::proto {
namespace {

using namespace test_bytes;

constexpr FrameType kAllTypes[] = {
    FrameType::Heartbeat,        FrameType::AuthRequest,
    FrameType::AuthResponse,     FrameType::RegisterTunnel,
    FrameType::UnregisterTunnel, FrameType::TunnelHealth,
    FrameType::OpenStream,       FrameType::Data,
    FrameType::CloseStream,      FrameType::WindowUpdate,
    FrameType::GoAway,           FrameType::Error,
};

bool is_stream_type(FrameType t) {
  return t == FrameType::OpenStream || t == FrameType::Data || t == FrameType::CloseStream ||
         t == FrameType::WindowUpdate;
}

TEST(FrameHeader, EncodesBigEndianLayout) {
  const auto h = encode_header(FrameType::Data, flags::kFin, 0x01020304, 0x0a0b0c0d);
  EXPECT_EQ(to_hex(h), "01 21 01 00 01 02 03 04 0a 0b 0c 0d");
}

TEST(FrameHeader, BigEndianHelpersRoundTrip) {
  std::uint8_t buf[8];
  put_u32(buf, 0xdeadbeef);
  EXPECT_EQ(to_hex(std::span(buf, 4)), "de ad be ef");
  EXPECT_EQ(get_u32(buf), 0xdeadbeefu);
  put_u64(buf, 0x0102030405060708ull);
  EXPECT_EQ(to_hex(buf), "01 02 03 04 05 06 07 08");
  EXPECT_EQ(get_u64(buf), 0x0102030405060708ull);
}

TEST(FrameHeader, NamesEveryKnownTypeAndNothingElse) {
  int known = 0;
  for (int v = 0; v < 256; ++v) {
    const auto t = static_cast<FrameType>(v);
    if (is_known(t)) {
      ++known;
      EXPECT_NE(to_string(t), "UNKNOWN");
    } else {
      EXPECT_EQ(to_string(t), "UNKNOWN") << v;
    }
  }
  EXPECT_EQ(known, static_cast<int>(std::size(kAllTypes)));
  for (auto t : kAllTypes) EXPECT_TRUE(is_known(t));
}

TEST(FrameHeader, NamesEveryErrorCode) {
  for (std::uint32_t c = 0; c <= static_cast<std::uint32_t>(ErrorCode::LocalReset); ++c) {
    EXPECT_NE(to_string(static_cast<ErrorCode>(c)), "unknown error") << c;
  }
  EXPECT_EQ(to_string(static_cast<ErrorCode>(0xdeadbeef)), "unknown error");
  EXPECT_EQ(to_string(DecodeError::TooLarge), "frame payload larger than the negotiated maximum");
}

// --- round trips ----------------------------------------------------------------------------

struct ValidCase {
  const char* name;
  FrameType type;
  std::uint8_t flags;
  std::uint32_t stream_id;
  ByteVec payload;
};

std::vector<ValidCase> valid_cases() {
  return {
      {"heartbeat", FrameType::Heartbeat, 0, 0, u64_payload(123456789)},
      {"heartbeat ack", FrameType::Heartbeat, flags::kAck, 0, u64_payload(~0ull)},
      {"auth request", FrameType::AuthRequest, 0, 0, bytes_of(R"({"token":"t","agent_id":"a"})")},
      {"auth response", FrameType::AuthResponse, 0, 0, bytes_of(R"({"ok":true})")},
      {"register", FrameType::RegisterTunnel, 0, 0, bytes_of(R"({"name":"web"})")},
      {"register ack", FrameType::RegisterTunnel, flags::kAck, 0,
       bytes_of(R"({"name":"web","ok":true})")},
      {"unregister", FrameType::UnregisterTunnel, 0, 0, bytes_of(R"({"name":"web"})")},
      {"unregister empty", FrameType::UnregisterTunnel, 0, 0, {}},
      {"tunnel health", FrameType::TunnelHealth, 0, 0,
       bytes_of(R"({"name":"web","healthy":false})")},
      {"open", FrameType::OpenStream, 0, 1, hex("0003 776562 0000")},
      {"data", FrameType::Data, 0, 1, bytes_of("hello")},
      {"data fin", FrameType::Data, flags::kFin, 3, bytes_of("bye")},
      {"data empty fin", FrameType::Data, flags::kFin, 5, {}},
      {"data empty", FrameType::Data, 0, 5, {}},
      {"data max stream id", FrameType::Data, 0, 0xffffffff, bytes_of("x")},
      {"close", FrameType::CloseStream, 0, 7, {}},
      {"close rst", FrameType::CloseStream, flags::kRst, 7,
       u32_payload(static_cast<std::uint32_t>(ErrorCode::ConnectRefused))},
      {"window update", FrameType::WindowUpdate, 0, 9, u32_payload(65536)},
      {"goaway", FrameType::GoAway, 0, 0, concat({u32_payload(9), bytes_of("bye")})},
      {"goaway no reason", FrameType::GoAway, 0, 0, u32_payload(0)},
      {"error", FrameType::Error, 0, 0, concat({u32_payload(1), bytes_of("bad")})},
  };
}

TEST(FrameCodec, RoundTripsEveryFrameType) {
  std::vector<bool> seen(256, false);
  for (const auto& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    const auto wire = frame(c.type, c.flags, c.stream_id, c.payload);
    const auto d = decode(wire, kDefaultMaxPayload);
    ASSERT_EQ(d.status, DecodeStatus::Frame) << to_string(d.error);
    EXPECT_EQ(d.error, DecodeError::None);
    EXPECT_EQ(d.header.version, kVersion);
    EXPECT_EQ(d.header.type, c.type);
    EXPECT_EQ(d.header.flags, c.flags);
    EXPECT_EQ(d.header.stream_id, c.stream_id);
    EXPECT_EQ(d.header.length, c.payload.size());
    EXPECT_EQ(d.consumed, wire.size());
    EXPECT_EQ(ByteVec(d.payload.begin(), d.payload.end()), c.payload);
    // The payload is a view into the input, not a copy.
    if (!c.payload.empty()) {
      EXPECT_EQ(d.payload.data(), wire.data() + kHeaderSize);
    }
    // Re-encoding the decoded header gives back the same 12 bytes.
    const auto again =
        encode_header(d.header.type, d.header.flags, d.header.stream_id, d.header.length);
    EXPECT_TRUE(std::equal(again.begin(), again.end(), wire.begin()));
    seen[static_cast<std::uint8_t>(c.type)] = true;
  }
  for (auto t : kAllTypes) EXPECT_TRUE(seen[static_cast<std::uint8_t>(t)]) << to_string(t);
}

TEST(FrameCodec, AcceptsPayloadsAtTheirLimits) {
  // DATA: exactly max_payload, whatever max_payload is (even above the control limit).
  for (std::uint32_t max : {1024u, kDefaultMaxPayload, kMaxPayloadCeiling}) {
    const auto d = decode(header(FrameType::Data, 0, 1, max), max);
    EXPECT_EQ(d.status, DecodeStatus::NeedMore) << max;
    EXPECT_EQ(d.needed, kHeaderSize + max);
  }
  // Control frames: exactly kMaxControlPayload, even when max_payload is smaller.
  for (auto t : {FrameType::AuthRequest, FrameType::RegisterTunnel, FrameType::GoAway,
                 FrameType::OpenStream}) {
    const auto d = decode(header(t, 0, is_stream_type(t) ? 1 : 0, kMaxControlPayload), 1024);
    EXPECT_EQ(d.status, DecodeStatus::NeedMore) << to_string(t);
    EXPECT_EQ(d.needed, kHeaderSize + kMaxControlPayload);
  }
}

// --- malformed headers ----------------------------------------------------------------------

struct BadCase {
  const char* name;
  ByteVec head;  // the 12 header bytes; the payload (if any) is appended by the test
  std::uint32_t max_payload;
  DecodeError want;
};

ByteVec with_byte(ByteVec h, std::size_t i, std::uint8_t v) {
  h[i] = v;
  return h;
}

std::vector<BadCase> bad_cases() {
  const auto hb = header(FrameType::Heartbeat, 0, 0, 8);
  std::vector<BadCase> cases = {
      {"version 0", with_byte(hb, 0, 0), kDefaultMaxPayload, DecodeError::BadVersion},
      {"version 2", with_byte(hb, 0, 2), kDefaultMaxPayload, DecodeError::BadVersion},
      {"version ff", with_byte(hb, 0, 0xff), kDefaultMaxPayload, DecodeError::BadVersion},
      {"type 03", with_byte(hb, 1, 0x03), kDefaultMaxPayload, DecodeError::UnknownType},
      {"type 13", with_byte(hb, 1, 0x13), kDefaultMaxPayload, DecodeError::UnknownType},
      {"type 25", with_byte(hb, 1, 0x25), kDefaultMaxPayload, DecodeError::UnknownType},
      {"type fe", with_byte(hb, 1, 0xfe), kDefaultMaxPayload, DecodeError::UnknownType},
      {"reserved 01", with_byte(hb, 3, 0x01), kDefaultMaxPayload, DecodeError::ReservedNotZero},
      {"reserved 80", with_byte(hb, 3, 0x80), kDefaultMaxPayload, DecodeError::ReservedNotZero},
      // Oversized: DATA against max_payload, everything else against kMaxControlPayload.
      {"data max+1", header(FrameType::Data, 0, 1, 1025), 1024, DecodeError::TooLarge},
      {"data default+1", header(FrameType::Data, 0, 1, kDefaultMaxPayload + 1), kDefaultMaxPayload,
       DecodeError::TooLarge},
      {"data 4 GiB", header(FrameType::Data, 0, 1, 0xffffffff), kMaxPayloadCeiling,
       DecodeError::TooLarge},
      {"data with max 0", header(FrameType::Data, 0, 1, 1), 0, DecodeError::TooLarge},
      {"auth control+1", header(FrameType::AuthRequest, 0, 0, kMaxControlPayload + 1),
       kMaxPayloadCeiling, DecodeError::TooLarge},
      {"register control+1", header(FrameType::RegisterTunnel, 0, 0, kMaxControlPayload + 1),
       kMaxPayloadCeiling, DecodeError::TooLarge},
      {"goaway control+1", header(FrameType::GoAway, 0, 0, kMaxControlPayload + 1),
       kMaxPayloadCeiling, DecodeError::TooLarge},
      {"open control+1", header(FrameType::OpenStream, 0, 1, kMaxControlPayload + 1),
       kMaxPayloadCeiling, DecodeError::TooLarge},
      {"heartbeat 4 GiB", header(FrameType::Heartbeat, 0, 0, 0xffffffff), kMaxPayloadCeiling,
       DecodeError::TooLarge},
      // Wrong fixed payload sizes.
      {"heartbeat 0", header(FrameType::Heartbeat, 0, 0, 0), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"heartbeat 7", header(FrameType::Heartbeat, 0, 0, 7), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"heartbeat ack 9", header(FrameType::Heartbeat, flags::kAck, 0, 9), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"window update 0", header(FrameType::WindowUpdate, 0, 1, 0), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"window update 3", header(FrameType::WindowUpdate, 0, 1, 3), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"window update 5", header(FrameType::WindowUpdate, 0, 1, 5), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"close rst 0", header(FrameType::CloseStream, flags::kRst, 1, 0), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"close rst 3", header(FrameType::CloseStream, flags::kRst, 1, 3), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"close rst 5", header(FrameType::CloseStream, flags::kRst, 1, 5), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"close without rst 4", header(FrameType::CloseStream, 0, 1, 4), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"goaway 3", header(FrameType::GoAway, 0, 0, 3), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"error 0", header(FrameType::Error, 0, 0, 0), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      {"open 3", header(FrameType::OpenStream, 0, 1, 3), kDefaultMaxPayload,
       DecodeError::BadPayloadSize},
      // Undefined flags.
      {"heartbeat 02", header(FrameType::Heartbeat, 0x02, 0, 8), kDefaultMaxPayload,
       DecodeError::BadFlags},
      {"heartbeat 81", header(FrameType::Heartbeat, 0x81, 0, 8), kDefaultMaxPayload,
       DecodeError::BadFlags},
      {"data 02", header(FrameType::Data, 0x02, 1, 0), kDefaultMaxPayload, DecodeError::BadFlags},
      {"data 80", header(FrameType::Data, 0x80, 1, 0), kDefaultMaxPayload, DecodeError::BadFlags},
      {"close 02", header(FrameType::CloseStream, 0x02, 1, 0), kDefaultMaxPayload,
       DecodeError::BadFlags},
      {"register 02", header(FrameType::RegisterTunnel, 0x02, 0, 2), kDefaultMaxPayload,
       DecodeError::BadFlags},
  };
  // Types that define no flag at all reject every bit.
  for (auto t : {FrameType::AuthRequest, FrameType::AuthResponse, FrameType::UnregisterTunnel,
                 FrameType::TunnelHealth, FrameType::OpenStream, FrameType::WindowUpdate,
                 FrameType::GoAway, FrameType::Error}) {
    cases.push_back({"flag 01 on a flagless type", header(t, 0x01, is_stream_type(t) ? 1 : 0, 4),
                     kDefaultMaxPayload, DecodeError::BadFlags});
  }
  // Stream-id rule: control types only on stream 0, stream types never on it.
  for (auto t : kAllTypes) {
    const std::uint32_t len = t == FrameType::Heartbeat ? 8 : 4;
    cases.push_back({is_stream_type(t) ? "stream type on stream 0" : "control type on stream 5",
                     header(t, 0, is_stream_type(t) ? 0 : 5, len), kDefaultMaxPayload,
                     DecodeError::BadStreamId});
  }
  return cases;
}

TEST(FrameCodec, RejectsMalformedHeaders) {
  for (const auto& c : bad_cases()) {
    const std::string trace = std::string(c.name) + " " + to_hex(c.head);
    SCOPED_TRACE(trace);
    ASSERT_EQ(c.head.size(), kHeaderSize);
    // The header alone is enough to reject the frame: no waiting for a payload that may be huge.
    const auto d = decode(c.head, c.max_payload);
    EXPECT_EQ(d.status, DecodeStatus::Error);
    EXPECT_EQ(d.error, c.want) << to_string(d.error);
    // A shorter prefix is just incomplete.
    const auto partial = decode(std::span(c.head).first(kHeaderSize - 1), c.max_payload);
    EXPECT_EQ(partial.status, DecodeStatus::NeedMore);
    // The same header followed by its full payload fails the same way (when that is small).
    const std::uint32_t len = get_u32(c.head.data() + 8);
    if (len <= 4096) {
      auto whole = c.head;
      whole.resize(kHeaderSize + len, 0);
      const auto full = decode(whole, c.max_payload);
      EXPECT_EQ(full.status, DecodeStatus::Error);
      EXPECT_EQ(full.error, c.want);
    }
  }
}

TEST(FrameCodec, RejectsOversizedLengthFromTheHeaderAlone) {
  // Only the header has arrived; a 4 GiB length must already be an error, not NeedMore.
  const auto h = header(FrameType::Data, 0, 1, kDefaultMaxPayload + 1);
  const auto d = decode(h, kDefaultMaxPayload);
  EXPECT_EQ(d.status, DecodeStatus::Error);
  EXPECT_EQ(d.error, DecodeError::TooLarge);
  EXPECT_EQ(d.header.length, kDefaultMaxPayload + 1);
}

TEST(FrameCodec, ReportsTheHeaderOfARejectedFrame) {
  // The session logs what it rejected; the parsed header must be filled in.
  const auto d = decode(header(FrameType::Heartbeat, 0, 7, 8), kDefaultMaxPayload);
  ASSERT_EQ(d.error, DecodeError::BadStreamId);
  EXPECT_EQ(d.header.type, FrameType::Heartbeat);
  EXPECT_EQ(d.header.stream_id, 7u);
  EXPECT_EQ(d.header.length, 8u);
}

// --- incremental decoding -------------------------------------------------------------------

TEST(FrameCodec, NeedsMoreWithPartialHeader) {
  const auto wire = frame(FrameType::Data, 0, 1, "hello");
  for (std::size_t n = 0; n < kHeaderSize; ++n) {
    const auto d = decode(std::span(wire).first(n), kDefaultMaxPayload);
    EXPECT_EQ(d.status, DecodeStatus::NeedMore) << n;
    EXPECT_EQ(d.needed, kHeaderSize) << n;
    EXPECT_EQ(d.consumed, 0u);
  }
}

TEST(FrameCodec, NeedsMoreWithPartialPayload) {
  const auto wire = frame(FrameType::Data, 0, 1, "hello");
  for (std::size_t n = kHeaderSize; n < wire.size(); ++n) {
    const auto d = decode(std::span(wire).first(n), kDefaultMaxPayload);
    EXPECT_EQ(d.status, DecodeStatus::NeedMore) << n;
    EXPECT_EQ(d.needed, wire.size()) << n;
    EXPECT_EQ(d.header.length, 5u);
  }
}

TEST(FrameCodec, NeverReadsPastTheInputSpan) {
  // The buffer holds the whole frame, but the span given to decode stops short of it.
  const auto wire = frame(FrameType::Data, 0, 1, "hello");
  const auto d = decode(std::span(wire).first(wire.size() - 1), kDefaultMaxPayload);
  EXPECT_EQ(d.status, DecodeStatus::NeedMore);
  EXPECT_TRUE(d.payload.empty());
}

// A small reference sequence that exercises every kind of payload.
ByteVec conversation() {
  return concat({
      frame(FrameType::AuthRequest, 0, 0, R"({"token":"t","agent_id":"a"})"),
      frame(FrameType::Heartbeat, 0, 0, u64_payload(42)),
      frame(FrameType::OpenStream, 0, 1, hex("0003 776562 0009 3132372e302e302e31")),
      frame(FrameType::Data, 0, 1, "GET / HTTP/1.1\r\n\r\n"),
      frame(FrameType::Data, flags::kFin, 1, ""),
      frame(FrameType::WindowUpdate, 0, 1, u32_payload(1 << 17)),
      frame(FrameType::CloseStream, flags::kRst, 3, u32_payload(4)),
      frame(FrameType::GoAway, 0, 0, concat({u32_payload(9), bytes_of("restart")})),
  });
}

struct Seen {
  FrameType type;
  std::uint8_t flags;
  std::uint32_t stream_id;
  ByteVec payload;
  bool operator==(const Seen&) const = default;
};

// Decodes every complete frame of `buf`, returning what is left over.
std::size_t drain(std::span<const std::uint8_t> buf, std::vector<Seen>& out) {
  std::size_t pos = 0;
  for (;;) {
    const auto d = decode(buf.subspan(pos), kDefaultMaxPayload);
    if (d.status != DecodeStatus::Frame) {
      EXPECT_EQ(d.status, DecodeStatus::NeedMore) << to_string(d.error);
      EXPECT_GT(d.needed, buf.size() - pos);
      return pos;
    }
    out.push_back({d.header.type, d.header.flags, d.header.stream_id,
                   ByteVec(d.payload.begin(), d.payload.end())});
    pos += d.consumed;
  }
}

TEST(FrameCodec, DecodesFramesBackToBack) {
  const auto wire = conversation();
  std::vector<Seen> frames;
  EXPECT_EQ(drain(wire, frames), wire.size());
  ASSERT_EQ(frames.size(), 8u);
  EXPECT_EQ(frames[0].type, FrameType::AuthRequest);
  EXPECT_EQ(frames[2].type, FrameType::OpenStream);
  EXPECT_EQ(frames[3].payload, bytes_of("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(frames[4].flags, flags::kFin);
  EXPECT_TRUE(frames[4].payload.empty());
  EXPECT_EQ(frames[7].type, FrameType::GoAway);

  // A trailing partial frame is left for the next read.
  auto more = wire;
  const auto extra = frame(FrameType::Data, 0, 5, "tail");
  more.insert(more.end(), extra.begin(), extra.end() - 2);
  std::vector<Seen> again;
  EXPECT_EQ(drain(more, again), wire.size());
  EXPECT_EQ(again, frames);
}

TEST(FrameCodec, DecodesByteByByte) {
  const auto wire = conversation();
  std::vector<Seen> whole;
  drain(wire, whole);

  // Feed one byte at a time into a receive buffer, as a slow socket would.
  ByteVec rx;
  std::vector<Seen> fed;
  for (std::uint8_t b : wire) {
    rx.push_back(b);
    const auto used = drain(rx, fed);
    rx.erase(rx.begin(), rx.begin() + static_cast<std::ptrdiff_t>(used));
  }
  EXPECT_TRUE(rx.empty());
  EXPECT_EQ(fed, whole);
}

TEST(FrameCodec, NeededNeverOvershootsTheFrame) {
  // `needed` lets a reader size one read; it must never ask for bytes of the next frame.
  const auto wire = conversation();
  std::size_t start = 0;
  while (start < wire.size()) {
    const auto full = decode(std::span(wire).subspan(start), kDefaultMaxPayload);
    ASSERT_EQ(full.status, DecodeStatus::Frame);
    for (std::size_t n = 0; n < full.consumed; ++n) {
      const auto d = decode(std::span(wire).subspan(start, n), kDefaultMaxPayload);
      ASSERT_EQ(d.status, DecodeStatus::NeedMore);
      EXPECT_GT(d.needed, n);
      EXPECT_LE(d.needed, full.consumed);
    }
    start += full.consumed;
  }
}

}  // namespace
}  // namespace proxer::proto
