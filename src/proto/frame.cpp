#include "proto/frame.h"

namespace proxer::proto {

std::string_view to_string(FrameType t) {
  switch (t) {
    case FrameType::Heartbeat:
      return "HEARTBEAT";
    case FrameType::AuthRequest:
      return "AUTH_REQUEST";
    case FrameType::AuthResponse:
      return "AUTH_RESPONSE";
    case FrameType::RegisterTunnel:
      return "REGISTER_TUNNEL";
    case FrameType::UnregisterTunnel:
      return "UNREGISTER_TUNNEL";
    case FrameType::TunnelHealth:
      return "TUNNEL_HEALTH";
    case FrameType::OpenStream:
      return "OPEN_STREAM";
    case FrameType::Data:
      return "DATA";
    case FrameType::CloseStream:
      return "CLOSE_STREAM";
    case FrameType::WindowUpdate:
      return "WINDOW_UPDATE";
    case FrameType::GoAway:
      return "GOAWAY";
    case FrameType::Error:
      return "ERROR";
  }
  return "UNKNOWN";
}

bool is_known(FrameType t) {
  return to_string(t) != "UNKNOWN";
}

std::string_view to_string(ErrorCode c) {
  switch (c) {
    case ErrorCode::None:
      return "none";
    case ErrorCode::ProtocolError:
      return "protocol error";
    case ErrorCode::InternalError:
      return "internal error";
    case ErrorCode::FlowControlError:
      return "flow control error";
    case ErrorCode::ConnectRefused:
      return "local service refused the connection";
    case ErrorCode::ConnectTimeout:
      return "local service did not accept in time";
    case ErrorCode::Cancelled:
      return "cancelled";
    case ErrorCode::UnknownTunnel:
      return "unknown tunnel";
    case ErrorCode::AuthFailed:
      return "authentication failed";
    case ErrorCode::Shutdown:
      return "shutting down";
    case ErrorCode::FrameTooLarge:
      return "frame too large";
    case ErrorCode::Replaced:
      return "replaced by a newer session";
    case ErrorCode::IdleTimeout:
      return "heartbeat timeout";
    case ErrorCode::LocalReset:
      return "local service reset the connection";
  }
  return "unknown error";
}

std::string_view to_string(DecodeError e) {
  switch (e) {
    case DecodeError::None:
      return "none";
    case DecodeError::BadVersion:
      return "unsupported protocol version";
    case DecodeError::UnknownType:
      return "unknown frame type";
    case DecodeError::ReservedNotZero:
      return "reserved byte not zero";
    case DecodeError::TooLarge:
      return "frame payload larger than the negotiated maximum";
    case DecodeError::BadStreamId:
      return "stream id not allowed for this frame type";
    case DecodeError::BadPayloadSize:
      return "payload size wrong for this frame type";
    case DecodeError::BadFlags:
      return "flags not defined for this frame type";
  }
  return "unknown";
}

HeaderBytes encode_header(FrameType type, std::uint8_t flags, std::uint32_t stream_id,
                          std::uint32_t length) {
  HeaderBytes h{};
  h[0] = kVersion;
  h[1] = static_cast<std::uint8_t>(type);
  h[2] = flags;
  h[3] = 0;
  put_u32(h.data() + 4, stream_id);
  put_u32(h.data() + 8, length);
  return h;
}

namespace {

bool on_stream(FrameType t) {
  return t == FrameType::OpenStream || t == FrameType::Data || t == FrameType::CloseStream ||
         t == FrameType::WindowUpdate;
}

std::uint8_t allowed_flags(FrameType t) {
  switch (t) {
    case FrameType::Heartbeat:
    case FrameType::RegisterTunnel:
      return flags::kAck;
    case FrameType::Data:
      return flags::kFin;
    case FrameType::CloseStream:
      return flags::kRst;
    default:
      return 0;
  }
}

std::uint32_t payload_limit(FrameType t, std::uint32_t max_payload) {
  if (t == FrameType::Data) return max_payload;
  return kMaxControlPayload;
}

// Payload sizes fixed (or bounded below) by the frame type.
bool payload_size_ok(FrameType t, std::uint8_t fl, std::uint32_t len) {
  switch (t) {
    case FrameType::Heartbeat:
      return len == 8;
    case FrameType::WindowUpdate:
      return len == 4;
    case FrameType::CloseStream:
      return (fl & flags::kRst) ? len == 4 : len == 0;
    case FrameType::GoAway:
    case FrameType::Error:
      return len >= 4;
    case FrameType::OpenStream:
      return len >= 4;
    default:
      return true;
  }
}

}  // namespace

Decoded decode(std::span<const std::uint8_t> in, std::uint32_t max_payload) {
  Decoded d;
  if (in.size() < kHeaderSize) {
    d.needed = kHeaderSize;
    return d;
  }
  auto fail = [&d](DecodeError e) {
    d.status = DecodeStatus::Error;
    d.error = e;
    return d;
  };
  const std::uint8_t* p = in.data();
  d.header.version = p[0];
  d.header.type = static_cast<FrameType>(p[1]);
  d.header.flags = p[2];
  d.header.stream_id = get_u32(p + 4);
  d.header.length = get_u32(p + 8);
  if (d.header.version != kVersion) return fail(DecodeError::BadVersion);
  if (!is_known(d.header.type)) return fail(DecodeError::UnknownType);
  if (p[3] != 0) return fail(DecodeError::ReservedNotZero);
  if (d.header.length > payload_limit(d.header.type, max_payload)) {
    return fail(DecodeError::TooLarge);
  }
  if (on_stream(d.header.type) != (d.header.stream_id != 0)) return fail(DecodeError::BadStreamId);
  if ((d.header.flags & ~allowed_flags(d.header.type)) != 0) return fail(DecodeError::BadFlags);
  if (!payload_size_ok(d.header.type, d.header.flags, d.header.length)) {
    return fail(DecodeError::BadPayloadSize);
  }
  const std::size_t total = kHeaderSize + d.header.length;
  if (in.size() < total) {
    d.needed = total;
    return d;
  }
  d.status = DecodeStatus::Frame;
  d.payload = in.subspan(kHeaderSize, d.header.length);
  d.consumed = total;
  return d;
}

}  // namespace proxer::proto
