#pragma once
// Typed payloads of the control frames. Session setup (AUTH, REGISTER) is JSON: rare, and
// readable in captures. Per-stream frames (OPEN, CLOSE, WINDOW_UPDATE, HEARTBEAT) are binary.
// Every decoder validates fully and returns an error string instead of throwing.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/frame.h"

namespace proxer::proto {

using Bytes = std::span<const std::uint8_t>;

struct AuthRequest {
  std::string token;  // secret: never logged
  std::string agent_id;
  std::string version;                    // agent software version
  std::vector<std::string> capabilities;  // e.g. "tcp", "http"
  std::string carrier;                    // "tcp", "tls", "ws", "poll" (informational)
  // The agent's previous session is alive and moving to this one (make-before-break): the
  // gateway lets it drain instead of closing it. Omitted from the JSON when false.
  bool handover = false;
};

struct AuthResponse {
  bool ok = false;
  std::string error;  // set when !ok
  std::string session_id;
  std::string account_id;
  std::uint32_t heartbeat_interval_ms = 10'000;
  std::uint32_t max_payload = kDefaultMaxPayload;
  std::uint32_t window = kDefaultWindow;
  // What this gateway understands beyond the base protocol, e.g. "tunnel_health" (it accepts
  // TUNNEL_HEALTH frames). Omitted from the JSON when empty; an older gateway sends none.
  std::vector<std::string> features;
};

// Feature names of AuthResponse::features.
inline constexpr std::string_view kFeatureTunnelHealth = "tunnel_health";

enum class TunnelType : std::uint8_t { Http, Tcp };

struct TunnelSpec {
  std::string name;
  TunnelType type = TunnelType::Http;
  std::string local_target;       // informational: shown in the admin API
  std::string token;              // per-tunnel secret the gateway enforces; empty: none
  std::uint16_t remote_port = 0;  // TCP tunnels: public port asked for; 0 = the gateway picks
  // Opt-in to share the name with other agents that also set it (a pool the gateway balances
  // over). Omitted from the JSON when false; an older gateway ignores it and keeps one holder.
  bool pool = false;
};

// TUNNEL_HEALTH (agent -> gateway): the agent's own check of a tunnel's local target changed
// its verdict. Sent only to a gateway that lists kFeatureTunnelHealth.
struct TunnelHealth {
  std::string name;
  bool healthy = true;
  std::string reason;  // why (the failed check), for the gateway's log; may be empty
};

struct RegisterResult {
  std::string name;
  bool ok = false;
  std::string error;              // set when !ok
  std::vector<std::string> urls;  // public URLs when ok
};

struct OpenStream {
  std::string tunnel;
  std::string client_addr;  // "ip:port" of the public client, for logs/PROXY protocol
  std::string server_addr;  // "ip:port" the client connected to (optional; PROXY protocol)
};

struct CodeReason {
  ErrorCode code = ErrorCode::None;
  std::string reason;
};

std::string encode(const AuthRequest& m);
std::string encode(const AuthResponse& m);
std::string encode(const TunnelSpec& m);
std::string encode(const RegisterResult& m);
std::string encode(const TunnelHealth& m);
// Binary encoders always produce a payload the peer can decode: over-long fields are truncated
// to fit the u16 lengths and kMaxControlPayload (the reason at a UTF-8 boundary).
std::string encode(const OpenStream& m);
std::string encode(const CodeReason& m);  // GOAWAY and ERROR payloads

// Decoders return nullopt and set *error (human readable) on malformed input.
std::optional<AuthRequest> decode_auth_request(Bytes in, std::string* error);
std::optional<AuthResponse> decode_auth_response(Bytes in, std::string* error);
std::optional<TunnelSpec> decode_tunnel_spec(Bytes in, std::string* error);
std::optional<RegisterResult> decode_register_result(Bytes in, std::string* error);
std::optional<TunnelHealth> decode_tunnel_health(Bytes in, std::string* error);
std::optional<OpenStream> decode_open_stream(Bytes in, std::string* error);
std::optional<CodeReason> decode_code_reason(Bytes in, std::string* error);

// Tunnel names: 1-63 chars of [a-z0-9-], not starting or ending with '-' (a DNS label).
bool valid_tunnel_name(std::string_view name);

}  // namespace proxer::proto
