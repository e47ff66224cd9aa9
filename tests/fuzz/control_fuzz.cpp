// Fuzz target: every control-payload decoder on the same input.
//
// Beyond "no crash, no UB, no exception", whatever a decoder accepts must survive a round trip:
// the binary formats re-encode to the very same bytes, and a JSON message re-encodes to one that
// decodes to equal values (so the gateway never sends what it would itself reject). A violation
// aborts.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "proto/control.h"
#include "proto/frame.h"

namespace {

using namespace proxer::proto;

void require(bool ok) {
  if (!ok) std::abort();
}

Bytes as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool same(const AuthRequest& a, const AuthRequest& b) {
  return a.token == b.token && a.agent_id == b.agent_id && a.version == b.version &&
         a.capabilities == b.capabilities && a.carrier == b.carrier;
}

// `error` is only sent when !ok.
bool same(const AuthResponse& a, const AuthResponse& b) {
  return a.ok == b.ok && (a.ok || a.error == b.error) && a.session_id == b.session_id &&
         a.account_id == b.account_id && a.heartbeat_interval_ms == b.heartbeat_interval_ms &&
         a.max_payload == b.max_payload && a.window == b.window;
}

bool same(const TunnelSpec& a, const TunnelSpec& b) {
  return a.name == b.name && a.type == b.type && a.local_target == b.local_target &&
         a.token == b.token;
}

bool same(const RegisterResult& a, const RegisterResult& b) {
  return a.name == b.name && a.ok == b.ok && (a.ok || a.error == b.error) && a.urls == b.urls;
}

// decode -> encode -> decode gives the same message.
template <typename Decode>
void json_round_trip(Bytes in, Decode decode) {
  std::string err;
  auto first = decode(in, &err);
  if (!first) {
    require(!err.empty());
    return;
  }
  const std::string wire = encode(*first);
  std::string err2;
  auto second = decode(as_bytes(wire), &err2);
  require(second.has_value() && same(*first, *second));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes in(data, size);

  json_round_trip(in, decode_auth_request);
  json_round_trip(in, decode_auth_response);
  json_round_trip(in, decode_tunnel_spec);
  json_round_trip(in, decode_register_result);

  std::string err;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto open = decode_open_stream(in, &err)) {
    // The encoder only truncates what could not be sent in one control frame.
    if (size <= kMaxControlPayload) require(encode(*open) == text);
  } else {
    require(err == "malformed OPEN_STREAM payload");
  }

  err.clear();
  if (auto cr = decode_code_reason(in, &err)) {
    require(size >= 4);
    if (size <= kMaxControlPayload) {
      require(encode(*cr) == text);
    }
  } else {
    require(size < 4);
  }

  // A name the validator accepts is one REGISTER_TUNNEL can carry.
  if (valid_tunnel_name(text)) {
    std::string e;
    auto spec = decode_tunnel_spec(as_bytes(encode(TunnelSpec{.name = std::string(text)})), &e);
    require(spec.has_value() && spec->name == text);
  }
  return 0;
}
