// Fuzz target: the frame decoder, driven the way a session reads a byte stream.
//
// Input: byte 0 picks the negotiated DATA limit; the rest is the received byte stream, decoded
// frame after frame until it runs out or is rejected. Each frame's payload goes to the decoder the
// session would use for its type. Beyond "no crash, no UB", the codec's contract is checked and a
// violation aborts: payload views stay inside the input, `needed` is exact, a rejection is
// decided from the 12 header bytes alone, and the header re-encodes to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "proto/control.h"
#include "proto/frame.h"

namespace {

using namespace proxer::proto;

void require(bool ok) {
  if (!ok) std::abort();
}

bool on_stream(FrameType t) {
  return t == FrameType::OpenStream || t == FrameType::Data || t == FrameType::CloseStream ||
         t == FrameType::WindowUpdate;
}

// What the session does with a decoded frame's payload.
void decode_payload(const Decoded& d) {
  std::string err;
  const auto& h = d.header;
  switch (h.type) {
    case FrameType::Heartbeat:
      require(h.length == 8);
      (void)get_u64(d.payload.data());
      break;
    case FrameType::AuthRequest:
      (void)decode_auth_request(d.payload, &err);
      break;
    case FrameType::AuthResponse:
      (void)decode_auth_response(d.payload, &err);
      break;
    case FrameType::RegisterTunnel:
      if (h.flags & flags::kAck) {
        (void)decode_register_result(d.payload, &err);
      } else {
        (void)decode_tunnel_spec(d.payload, &err);
      }
      break;
    case FrameType::UnregisterTunnel:
      (void)decode_tunnel_spec(d.payload, &err);
      break;
    case FrameType::TunnelHealth:
      (void)decode_tunnel_health(d.payload, &err);
      break;
    case FrameType::OpenStream: {
      auto open = decode_open_stream(d.payload, &err);
      // Two u16-prefixed fields and nothing else.
      if (open) require(open->tunnel.size() + open->client_addr.size() + 4 == h.length);
      break;
    }
    case FrameType::Data:
      break;
    case FrameType::CloseStream:
      require(h.length == ((h.flags & flags::kRst) ? 4u : 0u));
      if (h.length == 4) (void)get_u32(d.payload.data());
      break;
    case FrameType::WindowUpdate:
      require(h.length == 4);
      (void)get_u32(d.payload.data());
      break;
    case FrameType::GoAway:
    case FrameType::Error: {
      // The frame decoder guarantees at least the 4-byte code.
      auto cr = decode_code_reason(d.payload, &err);
      require(cr.has_value() && cr->reason.size() + 4 == h.length);
      break;
    }
  }
}

void check_frame(std::span<const std::uint8_t> in, const Decoded& d, std::uint32_t max_payload) {
  const auto& h = d.header;
  require(d.error == DecodeError::None);
  require(d.consumed == kHeaderSize + h.length && d.consumed <= in.size());
  require(d.payload.data() == in.data() + kHeaderSize && d.payload.size() == h.length);
  require(h.version == kVersion && is_known(h.type));
  require(on_stream(h.type) == (h.stream_id != 0));
  require(h.length <= (h.type == FrameType::Data ? max_payload : kMaxControlPayload));
  const auto again = encode_header(h.type, h.flags, h.stream_id, h.length);
  require(std::memcmp(again.data(), in.data(), kHeaderSize) == 0);
  decode_payload(d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // 1 MiB >> 0..20: from the protocol ceiling down to 0, so short inputs reach TooLarge too.
  const std::uint32_t max_payload = kMaxPayloadCeiling >> (data[0] % 21);
  const std::span<const std::uint8_t> stream(data + 1, size - 1);

  std::size_t pos = 0;
  for (;;) {
    const auto in = stream.subspan(pos);
    const auto d = decode(in, max_payload);
    if (in.size() >= kHeaderSize) {
      // The verdict on the header must not depend on how much payload has arrived.
      const auto head = decode(in.first(kHeaderSize), max_payload);
      require((head.status == DecodeStatus::Error) == (d.status == DecodeStatus::Error));
      require(head.error == d.error);
    }
    if (d.status == DecodeStatus::NeedMore) {
      require(d.error == DecodeError::None && d.consumed == 0 && d.needed > in.size());
      require(in.size() < kHeaderSize ? d.needed == kHeaderSize
                                      : d.needed == kHeaderSize + d.header.length);
      break;
    }
    if (d.status == DecodeStatus::Error) {
      require(d.error != DecodeError::None && in.size() >= kHeaderSize);
      break;
    }
    check_frame(in, d, max_payload);
    pos += d.consumed;
  }
  return 0;
}
