#pragma once
// Tunnel protocol v1: frame layout, types, flags, limits. Sans-IO: nothing here touches a socket.
// docs/PROTOCOL.md is the normative description and carries test vectors.
//
//  0        1        2        3        4                 8                 12
//  +--------+--------+--------+--------+-----------------+-----------------+-------------
//  |version |  type  | flags  |reserved| stream_id u32BE |  length u32BE   | payload ...
//  +--------+--------+--------+--------+-----------------+-----------------+-------------
//
// Each side first sends the 8-byte preface "PRXR/1\r\n", then frames.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace proxer::proto {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::string_view kPreface{"PRXR/1\r\n", 8};
inline constexpr std::size_t kHeaderSize = 12;
// Default maximum payload of one frame; the agent may ask for more up to kMaxPayloadCeiling.
inline constexpr std::uint32_t kDefaultMaxPayload = 64 * 1024;
inline constexpr std::uint32_t kMaxPayloadCeiling = 1024 * 1024;
// Control payloads (JSON) are small; they never get the data-frame limit.
inline constexpr std::uint32_t kMaxControlPayload = 64 * 1024;
inline constexpr std::uint32_t kDefaultWindow = 256 * 1024;

enum class FrameType : std::uint8_t {
  Heartbeat = 0x00,         // stream 0; 8-byte timestamp; flag Ack on the reply
  AuthRequest = 0x01,       // stream 0; JSON AuthRequest
  AuthResponse = 0x02,      // stream 0; JSON AuthResponse
  RegisterTunnel = 0x10,    // stream 0; JSON TunnelSpec, reply with flag Ack: JSON RegisterResult
  UnregisterTunnel = 0x11,  // stream 0; JSON {"name"}
  TunnelHealth = 0x12,      // stream 0; JSON TunnelHealth (agent -> gateway; feature-gated)
  OpenStream = 0x20,        // stream != 0; binary OpenStream
  Data = 0x21,              // stream != 0; raw bytes; flag Fin half-closes
  CloseStream = 0x22,       // stream != 0; flag Rst: abortive, 4-byte error code
  WindowUpdate = 0x23,      // stream != 0; 4-byte increment
  GoAway = 0x24,            // stream 0; 4-byte code + UTF-8 reason
  Error = 0xFF,             // stream 0; 4-byte code + UTF-8 reason; then close
};

namespace flags {
inline constexpr std::uint8_t kAck = 0x01;  // Heartbeat, RegisterTunnel
inline constexpr std::uint8_t kFin = 0x01;  // Data
inline constexpr std::uint8_t kRst = 0x01;  // CloseStream
}  // namespace flags

// Codes carried by CloseStream (Rst), GoAway and Error.
enum class ErrorCode : std::uint32_t {
  None = 0,
  ProtocolError = 1,
  InternalError = 2,
  FlowControlError = 3,
  ConnectRefused = 4,  // the agent could not connect to the local target
  ConnectTimeout = 5,  // the local target did not accept in time
  Cancelled = 6,       // the opener gave up on the stream
  UnknownTunnel = 7,   // OPEN for a tunnel the agent does not serve
  AuthFailed = 8,
  Shutdown = 9,  // going away: process stopping
  FrameTooLarge = 10,
  Replaced = 11,     // a newer session of the same agent took over
  IdleTimeout = 12,  // heartbeats missed
  LocalReset = 13,   // the local target reset the connection
};

std::string_view to_string(FrameType t);
std::string_view to_string(ErrorCode c);
bool is_known(FrameType t);

struct FrameHeader {
  FrameType type = FrameType::Heartbeat;
  std::uint8_t flags = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t length = 0;
  std::uint8_t version = kVersion;
};

using HeaderBytes = std::array<std::uint8_t, kHeaderSize>;

// Writes the 12-byte header (version is always kVersion, reserved always 0).
HeaderBytes encode_header(FrameType type, std::uint8_t flags, std::uint32_t stream_id,
                          std::uint32_t length);

enum class DecodeStatus : std::uint8_t {
  Frame,     // a whole frame is available: header + payload
  NeedMore,  // fewer bytes than a frame; `needed` says how many in total
  Error,     // malformed; `error` says why; the session must send ERROR and close
};

enum class DecodeError : std::uint8_t {
  None,
  BadVersion,
  UnknownType,
  ReservedNotZero,
  TooLarge,        // length above the negotiated maximum (checked before any allocation)
  BadStreamId,     // control frame on a stream, or stream frame on stream 0
  BadPayloadSize,  // fixed-size payload of the wrong size
  BadFlags,        // flags not defined for the type
};
std::string_view to_string(DecodeError e);

struct Decoded {
  DecodeStatus status = DecodeStatus::NeedMore;
  DecodeError error = DecodeError::None;
  FrameHeader header;
  std::span<const std::uint8_t> payload;  // view into the input, valid while it is
  std::size_t consumed = 0;               // bytes of the input this frame used (Frame only)
  std::size_t needed = kHeaderSize;       // total bytes needed (NeedMore only)
};

// Decodes the first frame of `in`. `max_payload` bounds DATA payloads only; every other type is
// bounded by kMaxControlPayload whatever `max_payload` is. The whole header is validated before
// the payload is waited for, so an oversized or malformed frame is rejected from its 12 header
// bytes. Never reads past `in`, never allocates.
Decoded decode(std::span<const std::uint8_t> in, std::uint32_t max_payload);

// Big-endian helpers for fixed payloads.
inline void put_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
inline std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
inline void put_u64(std::uint8_t* p, std::uint64_t v) {
  put_u32(p, static_cast<std::uint32_t>(v >> 32));
  put_u32(p + 4, static_cast<std::uint32_t>(v));
}
inline std::uint64_t get_u64(const std::uint8_t* p) {
  return (std::uint64_t{get_u32(p)} << 32) | get_u32(p + 4);
}

}  // namespace proxer::proto
