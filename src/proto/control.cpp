#include "proto/control.h"

#include <algorithm>
#include <boost/json.hpp>
#include <string_view>

namespace proxer::proto {

namespace json = boost::json;

namespace {

std::optional<json::object> parse_object(Bytes in, std::string* error) {
  json::error_code ec;
  json::parse_options opt;
  opt.max_depth = 8;
  auto v = json::parse(std::string_view(reinterpret_cast<const char*>(in.data()), in.size()), ec,
                       {}, opt);
  if (ec) {
    *error = "invalid JSON: " + ec.message();
    return std::nullopt;
  }
  if (!v.is_object()) {
    *error = "expected a JSON object";
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// Field readers: each sets *error and returns false when the field has the wrong type.
bool get_string(const json::object& o, std::string_view key, std::string& out, bool required,
                std::string* error) {
  auto it = o.find(key);
  if (it == o.end()) {
    if (required) *error = "missing field '" + std::string(key) + "'";
    return !required;
  }
  if (!it->value().is_string()) {
    *error = "field '" + std::string(key) + "' must be a string";
    return false;
  }
  out = std::string(it->value().as_string());
  return true;
}

bool get_bool(const json::object& o, std::string_view key, bool& out, std::string* error) {
  auto it = o.find(key);
  if (it == o.end()) {
    *error = "missing field '" + std::string(key) + "'";
    return false;
  }
  if (!it->value().is_bool()) {
    *error = "field '" + std::string(key) + "' must be a boolean";
    return false;
  }
  out = it->value().as_bool();
  return true;
}

bool get_u32(const json::object& o, std::string_view key, std::uint32_t& out, std::string* error) {
  auto it = o.find(key);
  if (it == o.end()) return true;  // optional, keeps its default
  const auto& v = it->value();
  std::int64_t n = -1;
  if (v.is_int64()) n = v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= 0xffffffffu) n = static_cast<std::int64_t>(v.as_uint64());
  if (n < 0 || n > 0xffffffffll) {
    *error = "field '" + std::string(key) + "' must be an unsigned 32-bit integer";
    return false;
  }
  out = static_cast<std::uint32_t>(n);
  return true;
}

bool get_strings(const json::object& o, std::string_view key, std::vector<std::string>& out,
                 std::string* error) {
  auto it = o.find(key);
  if (it == o.end()) return true;
  if (!it->value().is_array()) {
    *error = "field '" + std::string(key) + "' must be an array of strings";
    return false;
  }
  for (const auto& e : it->value().as_array()) {
    if (!e.is_string()) {
      *error = "field '" + std::string(key) + "' must be an array of strings";
      return false;
    }
    out.emplace_back(e.as_string());
  }
  return true;
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

void put_u16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

// Longest prefix of `s` of at most `max` bytes that does not split a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// Error messages may reach logs and the peer: quote untrusted text only when it is short,
// printable ASCII, so a hostile name cannot forge log lines or bloat a reply.
std::string quoted_if_printable(std::string_view s) {
  if (s.size() > 64) return "(too long)";
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return "(unprintable)";
  }
  return "'" + std::string(s) + "'";
}

}  // namespace

std::string encode(const AuthRequest& m) {
  json::object o{{"token", m.token},
                 {"agent_id", m.agent_id},
                 {"version", m.version},
                 {"capabilities", to_array(m.capabilities)},
                 {"carrier", m.carrier}};
  if (m.handover) o["handover"] = true;
  return json::serialize(o);
}

std::string encode(const AuthResponse& m) {
  json::object o{{"ok", m.ok},
                 {"session_id", m.session_id},
                 {"account_id", m.account_id},
                 {"heartbeat_interval_ms", m.heartbeat_interval_ms},
                 {"max_payload", m.max_payload},
                 {"window", m.window}};
  if (!m.ok) o["error"] = m.error;
  if (!m.features.empty()) o["features"] = to_array(m.features);
  return json::serialize(o);
}

std::string encode(const TunnelSpec& m) {
  json::object o{{"name", m.name},
                 {"type", m.type == TunnelType::Tcp ? "tcp" : "http"},
                 {"local_target", m.local_target},
                 {"token", m.token}};
  if (m.remote_port != 0) o["remote_port"] = m.remote_port;
  if (m.pool) o["pool"] = true;
  return json::serialize(o);
}

std::string encode(const RegisterResult& m) {
  json::object o{{"name", m.name}, {"ok", m.ok}, {"urls", to_array(m.urls)}};
  if (!m.ok) o["error"] = m.error;
  return json::serialize(o);
}

std::string encode(const TunnelHealth& m) {
  // The reason is for a log line: bounded so the frame always fits kMaxControlPayload.
  json::object o{{"name", m.name},
                 {"healthy", m.healthy},
                 {"reason", std::string(utf8_prefix(m.reason, 1024))}};
  return json::serialize(o);
}

std::string encode(const OpenStream& m) {
  // Fields are clamped so the result always decodes: a u16 length can't describe more than
  // 0xffff bytes, and the whole payload must fit kMaxControlPayload. Real values (a tunnel
  // name, "ip:port") are far shorter.
  const std::size_t room = kMaxControlPayload - 4;
  const std::string_view tunnel =
      std::string_view(m.tunnel).substr(0, std::min<std::size_t>(0xffff, room));
  const std::string_view addr = std::string_view(m.client_addr)
                                    .substr(0, std::min<std::size_t>(0xffff, room - tunnel.size()));
  std::string_view server;
  if (!m.server_addr.empty() && room - tunnel.size() - addr.size() > 2) {
    server = std::string_view(m.server_addr)
                 .substr(0, std::min<std::size_t>(0xffff, room - tunnel.size() - addr.size() - 2));
  }
  std::string out;
  out.reserve(6 + tunnel.size() + addr.size() + server.size());
  put_u16(out, tunnel.size());
  out += tunnel;
  put_u16(out, addr.size());
  out += addr;
  if (!server.empty()) {
    put_u16(out, server.size());
    out += server;
  }
  return out;
}

std::string encode(const CodeReason& m) {
  std::string out(4, '\0');
  put_u32(reinterpret_cast<std::uint8_t*>(out.data()), static_cast<std::uint32_t>(m.code));
  // A reason that made the frame exceed kMaxControlPayload would turn a clean GOAWAY/ERROR
  // into a decode error at the peer.
  out += utf8_prefix(m.reason, kMaxControlPayload - 4);
  return out;
}

std::optional<AuthRequest> decode_auth_request(Bytes in, std::string* error) {
  auto o = parse_object(in, error);
  if (!o) return std::nullopt;
  AuthRequest m;
  if (!get_string(*o, "token", m.token, true, error) ||
      !get_string(*o, "agent_id", m.agent_id, true, error) ||
      !get_string(*o, "version", m.version, false, error) ||
      !get_strings(*o, "capabilities", m.capabilities, error) ||
      !get_string(*o, "carrier", m.carrier, false, error)) {
    return std::nullopt;
  }
  if (o->contains("handover") && !get_bool(*o, "handover", m.handover, error)) return std::nullopt;
  if (m.agent_id.empty() || m.agent_id.size() > 128) {
    *error = "agent_id must be 1-128 characters";
    return std::nullopt;
  }
  return m;
}

std::optional<AuthResponse> decode_auth_response(Bytes in, std::string* error) {
  auto o = parse_object(in, error);
  if (!o) return std::nullopt;
  AuthResponse m;
  if (!get_bool(*o, "ok", m.ok, error) || !get_string(*o, "error", m.error, false, error) ||
      !get_string(*o, "session_id", m.session_id, false, error) ||
      !get_string(*o, "account_id", m.account_id, false, error) ||
      !get_u32(*o, "heartbeat_interval_ms", m.heartbeat_interval_ms, error) ||
      !get_u32(*o, "max_payload", m.max_payload, error) ||
      !get_u32(*o, "window", m.window, error) || !get_strings(*o, "features", m.features, error)) {
    return std::nullopt;
  }
  if (m.max_payload < 1024 || m.max_payload > kMaxPayloadCeiling) {
    *error = "max_payload out of range";
    return std::nullopt;
  }
  if (m.window < m.max_payload) {
    *error = "window smaller than max_payload";
    return std::nullopt;
  }
  return m;
}

std::optional<TunnelSpec> decode_tunnel_spec(Bytes in, std::string* error) {
  auto o = parse_object(in, error);
  if (!o) return std::nullopt;
  TunnelSpec m;
  std::string type = "http";
  if (!get_string(*o, "name", m.name, true, error) || !get_string(*o, "type", type, false, error) ||
      !get_string(*o, "local_target", m.local_target, false, error) ||
      !get_string(*o, "token", m.token, false, error)) {
    return std::nullopt;
  }
  if (o->contains("pool") && !get_bool(*o, "pool", m.pool, error)) return std::nullopt;
  std::uint32_t port = 0;
  if (!get_u32(*o, "remote_port", port, error)) return std::nullopt;
  if (port > 65535) {
    *error = "remote_port must be 0..65535";
    return std::nullopt;
  }
  m.remote_port = static_cast<std::uint16_t>(port);
  if (type == "http") {
    m.type = TunnelType::Http;
  } else if (type == "tcp") {
    m.type = TunnelType::Tcp;
  } else {
    *error = "tunnel type must be \"http\" or \"tcp\"";
    return std::nullopt;
  }
  if (!valid_tunnel_name(m.name)) {
    *error = "invalid tunnel name " + quoted_if_printable(m.name) +
             ": use 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'";
    return std::nullopt;
  }
  return m;
}

std::optional<RegisterResult> decode_register_result(Bytes in, std::string* error) {
  auto o = parse_object(in, error);
  if (!o) return std::nullopt;
  RegisterResult m;
  if (!get_string(*o, "name", m.name, true, error) || !get_bool(*o, "ok", m.ok, error) ||
      !get_string(*o, "error", m.error, false, error) || !get_strings(*o, "urls", m.urls, error)) {
    return std::nullopt;
  }
  return m;
}

std::optional<TunnelHealth> decode_tunnel_health(Bytes in, std::string* error) {
  auto o = parse_object(in, error);
  if (!o) return std::nullopt;
  TunnelHealth m;
  if (!get_string(*o, "name", m.name, true, error) || !get_bool(*o, "healthy", m.healthy, error) ||
      !get_string(*o, "reason", m.reason, false, error)) {
    return std::nullopt;
  }
  if (!valid_tunnel_name(m.name)) {
    *error = "invalid tunnel name " + quoted_if_printable(m.name);
    return std::nullopt;
  }
  return m;
}

std::optional<OpenStream> decode_open_stream(Bytes in, std::string* error) {
  OpenStream m;
  std::size_t pos = 0;
  auto read_str = [&](std::string& out) {
    if (in.size() - pos < 2) return false;
    std::size_t n = (std::size_t{in[pos]} << 8) | in[pos + 1];
    pos += 2;
    if (in.size() - pos < n) return false;
    out.assign(reinterpret_cast<const char*>(in.data() + pos), n);
    pos += n;
    return true;
  };
  // The server address is optional: absent, or a third length-prefixed field.
  if (!read_str(m.tunnel) || !read_str(m.client_addr) ||
      (pos != in.size() && !read_str(m.server_addr)) || pos != in.size()) {
    *error = "malformed OPEN_STREAM payload";
    return std::nullopt;
  }
  return m;
}

std::optional<CodeReason> decode_code_reason(Bytes in, std::string* error) {
  if (in.size() < 4) {
    *error = "code/reason payload shorter than 4 bytes";
    return std::nullopt;
  }
  CodeReason m;
  m.code = static_cast<ErrorCode>(get_u32(in.data()));
  m.reason.assign(reinterpret_cast<const char*>(in.data() + 4), in.size() - 4);
  return m;
}

bool valid_tunnel_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace proxer::proto
