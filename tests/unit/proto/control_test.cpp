// Control payloads (src/proto/control.cpp): JSON session setup, binary OPEN_STREAM and
// code+reason, and the validation each decoder owes the session.
#include "proto/control.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "test_bytes.h"

namespace proxer::proto {
namespace {

using namespace test_bytes;
using ::testing::HasSubstr;

// --- round trips ----------------------------------------------------------------------------

TEST(ControlPayload, AuthRequestRoundTrips) {
  AuthRequest in{.token = "s3cret",
                 .agent_id = "laptop-1",
                 .version = "0.1.0",
                 .capabilities = {"http", "tcp"},
                 .carrier = "tls"};
  std::string err;
  auto out = decode_auth_request(span_of(encode(in)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->token, in.token);
  EXPECT_EQ(out->agent_id, in.agent_id);
  EXPECT_EQ(out->version, in.version);
  EXPECT_EQ(out->capabilities, in.capabilities);
  EXPECT_EQ(out->carrier, in.carrier);
}

TEST(ControlPayload, AuthRequestNeedsOnlyTokenAndAgentId) {
  std::string err;
  auto out = decode_auth_request(span_of(R"({"token":"","agent_id":"a"})"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->agent_id, "a");
  EXPECT_TRUE(out->capabilities.empty());
  EXPECT_TRUE(out->version.empty());
  EXPECT_FALSE(out->handover);
}

TEST(ControlPayload, AuthRequestHandoverIsSentOnlyWhenSet) {
  AuthRequest in{.token = "t", .agent_id = "a"};
  EXPECT_THAT(encode(in), ::testing::Not(HasSubstr("handover")));  // the vectors stay as they were
  in.handover = true;
  std::string err;
  auto out = decode_auth_request(span_of(encode(in)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_TRUE(out->handover);
  EXPECT_FALSE(decode_auth_request(span_of(R"({"token":"","agent_id":"a","handover":1})"), &err));
  EXPECT_THAT(err, HasSubstr("'handover' must be a boolean"));
}

TEST(ControlPayload, AuthResponseRoundTrips) {
  AuthResponse in{.ok = true,
                  .session_id = "s-1",
                  .account_id = "acct",
                  .heartbeat_interval_ms = 5000,
                  .max_payload = 128 * 1024,
                  .window = 1024 * 1024};
  std::string err;
  const auto wire = encode(in);
  EXPECT_THAT(wire, ::testing::Not(HasSubstr("\"error\"")));  // only sent on failure
  auto out = decode_auth_response(span_of(wire), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(out->session_id, "s-1");
  EXPECT_EQ(out->account_id, "acct");
  EXPECT_EQ(out->heartbeat_interval_ms, 5000u);
  EXPECT_EQ(out->max_payload, 128u * 1024);
  EXPECT_EQ(out->window, 1024u * 1024);
}

TEST(ControlPayload, AuthResponseFailureCarriesError) {
  AuthResponse in;
  in.ok = false;
  in.error = "bad token";
  std::string err;
  auto out = decode_auth_response(span_of(encode(in)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_FALSE(out->ok);
  EXPECT_EQ(out->error, "bad token");
}

TEST(ControlPayload, AuthResponseDefaultsMissingLimits) {
  std::string err;
  auto out = decode_auth_response(span_of(R"({"ok":true})"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->heartbeat_interval_ms, 10'000u);
  EXPECT_EQ(out->max_payload, kDefaultMaxPayload);
  EXPECT_EQ(out->window, kDefaultWindow);
}

TEST(ControlPayload, TunnelSpecRoundTrips) {
  for (auto type : {TunnelType::Http, TunnelType::Tcp}) {
    TunnelSpec in{.name = "my-app", .type = type, .local_target = "127.0.0.1:3000", .token = "pw"};
    std::string err;
    auto out = decode_tunnel_spec(span_of(encode(in)), &err);
    ASSERT_TRUE(out) << err;
    EXPECT_EQ(out->name, "my-app");
    EXPECT_EQ(out->type, type);
    EXPECT_EQ(out->local_target, "127.0.0.1:3000");
    EXPECT_EQ(out->token, "pw");
  }
}

TEST(ControlPayload, TunnelSpecCarriesTheRequestedPort) {
  TunnelSpec in{.name = "db", .type = TunnelType::Tcp, .remote_port = 7000};
  std::string err;
  auto out = decode_tunnel_spec(span_of(encode(in)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->remote_port, 7000);
  // Absent means "the gateway picks"; the encoder leaves it out then.
  EXPECT_EQ(encode(TunnelSpec{.name = "db"}).find("remote_port"), std::string::npos);
  out = decode_tunnel_spec(span_of(R"({"name":"db","type":"tcp"})"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->remote_port, 0);
  EXPECT_FALSE(decode_tunnel_spec(span_of(R"({"name":"db","remote_port":65536})"), &err));
  EXPECT_NE(err.find("remote_port"), std::string::npos) << err;
  EXPECT_FALSE(decode_tunnel_spec(span_of(R"({"name":"db","remote_port":"80"})"), &err));
}

TEST(ControlPayload, TunnelSpecDefaultsToHttp) {
  // UNREGISTER_TUNNEL carries only {"name"} and is decoded with the same function.
  std::string err;
  auto out = decode_tunnel_spec(span_of(R"({"name":"web"})"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->type, TunnelType::Http);
  EXPECT_TRUE(out->token.empty());
}

TEST(ControlPayload, TunnelSpecPoolIsSentOnlyWhenSet) {
  // Old gateways never see the field unless an agent opts in; old agents' specs mean "no pool".
  EXPECT_THAT(encode(TunnelSpec{.name = "app"}), ::testing::Not(HasSubstr("pool")));
  std::string err;
  auto out = decode_tunnel_spec(span_of(encode(TunnelSpec{.name = "app", .pool = true})), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_TRUE(out->pool);
  out = decode_tunnel_spec(span_of(R"({"name":"app"})"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_FALSE(out->pool);
  EXPECT_FALSE(decode_tunnel_spec(span_of(R"({"name":"app","pool":"yes"})"), &err));
  EXPECT_THAT(err, HasSubstr("'pool' must be a boolean"));
  EXPECT_FALSE(decode_tunnel_spec(span_of(R"({"name":"app","pool":null})"), &err));
}

TEST(ControlPayload, AuthResponseFeatures) {
  AuthResponse in{.ok = true};
  EXPECT_THAT(encode(in), ::testing::Not(HasSubstr("features")));
  in.features = {std::string(kFeatureTunnelHealth)};
  std::string err;
  auto out = decode_auth_response(span_of(encode(in)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->features, std::vector<std::string>{"tunnel_health"});
  EXPECT_FALSE(decode_auth_response(span_of(R"({"ok":true,"features":"tunnel_health"})"), &err));
  EXPECT_FALSE(decode_auth_response(span_of(R"({"ok":true,"features":[1]})"), &err));
}

TEST(ControlPayload, TunnelHealthRoundTrips) {
  for (bool healthy : {true, false}) {
    TunnelHealth in{.name = "app", .healthy = healthy, .reason = "GET /healthz: status 503"};
    std::string err;
    auto out = decode_tunnel_health(span_of(encode(in)), &err);
    ASSERT_TRUE(out) << err;
    EXPECT_EQ(out->name, "app");
    EXPECT_EQ(out->healthy, healthy);
    EXPECT_EQ(out->reason, in.reason);
  }
  // The reason is bounded, so the frame always fits a control payload.
  TunnelHealth big{.name = "app", .healthy = false, .reason = std::string(200'000, 'x')};
  const auto wire = encode(big);
  EXPECT_LT(wire.size(), 2048u);
  std::string err;
  auto out = decode_tunnel_health(span_of(wire), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->reason.size(), 1024u);
}

TEST(ControlPayload, TunnelHealthRejectsMalformedInput) {
  std::string err;
  auto out = decode_tunnel_health(span_of(R"({"name":"app","healthy":false})"), &err);
  ASSERT_TRUE(out) << err;  // the reason is optional
  EXPECT_TRUE(out->reason.empty());
  const char* bad[] = {
      R"({"healthy":true})",                          // no name
      R"({"name":"app"})",                            // no verdict
      R"({"name":"app","healthy":"false"})",          // verdict not a boolean
      R"({"name":"App!","healthy":true})",            // not a tunnel name
      R"({"name":"app","healthy":true,"reason":1})",  // reason not a string
      R"(["app",true])",                              // not an object
      R"({"name":"app","healthy":tru)",               // not JSON
      "",
  };
  for (const char* b : bad) {
    err.clear();
    EXPECT_FALSE(decode_tunnel_health(span_of(b), &err)) << b;
    EXPECT_FALSE(err.empty()) << b;
  }
}

TEST(ControlPayload, RegisterResultRoundTrips) {
  RegisterResult ok{
      .name = "web", .ok = true, .urls = {"http://web.example.com/", "http://example.com/t/web/"}};
  std::string err;
  auto out = decode_register_result(span_of(encode(ok)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->name, "web");
  EXPECT_TRUE(out->ok);
  EXPECT_EQ(out->urls, ok.urls);

  RegisterResult bad{.name = "web", .ok = false, .error = "name taken"};
  out = decode_register_result(span_of(encode(bad)), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_FALSE(out->ok);
  EXPECT_EQ(out->error, "name taken");
  EXPECT_TRUE(out->urls.empty());
}

TEST(ControlPayload, OpenStreamRoundTrips) {
  for (const auto& in : std::vector<OpenStream>{
           {"web", "203.0.113.7:51000"},
           {"web", ""},
           {"a", "[2001:db8::1]:443"},
           {std::string(63, 'x'), std::string(300, 'y')},
       }) {
    const auto wire = encode(in);
    EXPECT_EQ(wire.size(), 4 + in.tunnel.size() + in.client_addr.size());
    std::string err;
    auto out = decode_open_stream(span_of(wire), &err);
    ASSERT_TRUE(out) << err;
    EXPECT_EQ(out->tunnel, in.tunnel);
    EXPECT_EQ(out->client_addr, in.client_addr);
  }
}

TEST(ControlPayload, OpenStreamServerAddressIsAnOptionalThirdField) {
  const auto wire = encode(OpenStream{"db", "1.2.3.4:5", "10.0.0.1:10001"});
  EXPECT_EQ(to_hex(span_of(wire)),
            "00 02 64 62 00 09 31 2e 32 2e 33 2e 34 3a 35 "
            "00 0e 31 30 2e 30 2e 30 2e 31 3a 31 30 30 30 31");
  std::string err;
  auto out = decode_open_stream(span_of(wire), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->server_addr, "10.0.0.1:10001");
  // Two fields (no server address) still decode; a cut third field does not.
  out = decode_open_stream(span_of(encode(OpenStream{"db", "1.2.3.4:5"})), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_TRUE(out->server_addr.empty());
  EXPECT_FALSE(decode_open_stream(span_of(wire.substr(0, wire.size() - 1)), &err));
  EXPECT_FALSE(decode_open_stream(span_of(wire + "x"), &err));
}

TEST(ControlPayload, OpenStreamEncodingIsLengthPrefixed) {
  EXPECT_EQ(to_hex(span_of(encode(OpenStream{"web", "1.2.3.4:5"}))),
            "00 03 77 65 62 00 09 31 2e 32 2e 33 2e 34 3a 35");
}

TEST(ControlPayload, OpenStreamEncoderClampsOverlongFields) {
  // A u16 length can't describe more than 0xffff bytes and the payload must fit the control
  // limit, so the encoder truncates instead of emitting something the peer rejects.
  struct Case {
    std::size_t tunnel, addr, want_tunnel, want_addr;
  };
  constexpr std::size_t kRoom = kMaxControlPayload - 4;
  for (const auto& c : std::vector<Case>{{70000, 70000, kRoom, 0},
                                         {3, 70000, 3, kRoom - 3},
                                         {40000, 40000, 40000, kRoom - 40000},
                                         {0xffff, 0, kRoom, 0}}) {
    const auto wire = encode(OpenStream{std::string(c.tunnel, 't'), std::string(c.addr, 'c')});
    EXPECT_LE(wire.size(), kMaxControlPayload);
    std::string err;
    auto out = decode_open_stream(span_of(wire), &err);
    ASSERT_TRUE(out) << err;
    EXPECT_EQ(out->tunnel.size(), c.want_tunnel);
    EXPECT_EQ(out->client_addr.size(), c.want_addr);
  }
}

TEST(ControlPayload, CodeReasonRoundTrips) {
  for (const auto& in : std::vector<CodeReason>{
           {ErrorCode::Shutdown, "restarting"},
           {ErrorCode::None, ""},
           {static_cast<ErrorCode>(0xdeadbeef), "from a newer peer"},  // unknown codes survive
           {ErrorCode::ProtocolError, "caf\xc3\xa9"},
       }) {
    std::string err;
    auto out = decode_code_reason(span_of(encode(in)), &err);
    ASSERT_TRUE(out) << err;
    EXPECT_EQ(out->code, in.code);
    EXPECT_EQ(out->reason, in.reason);
  }
  EXPECT_EQ(to_hex(span_of(encode(CodeReason{ErrorCode::Shutdown, "x"}))), "00 00 00 09 78");
}

TEST(ControlPayload, CodeReasonEncoderTruncatesAtACharacterBoundary) {
  // 'é' is two bytes; a cut in its middle would send invalid UTF-8.
  std::string reason(kMaxControlPayload - 5, 'a');
  reason += "\xc3\xa9";  // one byte over the limit
  const auto wire = encode(CodeReason{ErrorCode::Shutdown, reason});
  EXPECT_EQ(wire.size(), kMaxControlPayload - 1);
  EXPECT_EQ(wire.back(), 'a');
}

// --- malformed JSON payloads ----------------------------------------------------------------

using JsonDecoder = std::function<bool(Bytes, std::string*)>;

template <typename F>
JsonDecoder wrap(F f) {
  return [f](Bytes in, std::string* err) { return f(in, err).has_value(); };
}

struct Named {
  const char* name;
  JsonDecoder decode;
};

std::vector<Named> json_decoders() {
  return {{"auth_request", wrap(decode_auth_request)},
          {"auth_response", wrap(decode_auth_response)},
          {"tunnel_spec", wrap(decode_tunnel_spec)},
          {"register_result", wrap(decode_register_result)}};
}

TEST(ControlPayload, RejectsInputThatIsNotAJsonObject) {
  const std::vector<std::string> inputs = {
      "",
      "   ",
      "null",
      "[]",
      R"("name")",
      "42",
      "{",
      R"({"name":"web",})",
      R"({"name":"web"} {})",                                        // trailing data
      R"({"name":"web"} x)",                                         // trailing garbage
      std::string("{\"name\":\"\xff\"}"),                            // invalid UTF-8
      R"({"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}})",  // deeper than 8
  };
  for (const auto& d : json_decoders()) {
    for (const auto& in : inputs) {
      std::string err;
      EXPECT_FALSE(d.decode(span_of(in), &err)) << d.name << ": " << in;
      EXPECT_FALSE(err.empty()) << d.name << ": " << in;
    }
  }
}

struct JsonCase {
  const char* decoder;
  const char* json;
  const char* error;  // expected substring of the error message
};

TEST(ControlPayload, RejectsMissingAndMistypedFields) {
  const std::vector<JsonCase> cases = {
      // AUTH_REQUEST
      {"auth_request", R"({"agent_id":"a"})", "missing field 'token'"},
      {"auth_request", R"({"token":"t"})", "missing field 'agent_id'"},
      {"auth_request", R"({"token":1,"agent_id":"a"})", "'token' must be a string"},
      {"auth_request", R"({"token":null,"agent_id":"a"})", "'token' must be a string"},
      {"auth_request", R"({"token":"t","agent_id":["a"]})", "'agent_id' must be a string"},
      {"auth_request", R"({"token":"t","agent_id":"a","version":1})", "'version' must be"},
      {"auth_request", R"({"token":"t","agent_id":"a","carrier":false})", "'carrier' must be"},
      {"auth_request", R"({"token":"t","agent_id":"a","capabilities":"http"})",
       "'capabilities' must be an array of strings"},
      {"auth_request", R"({"token":"t","agent_id":"a","capabilities":["http",1]})",
       "'capabilities' must be an array of strings"},
      {"auth_request", R"({"token":"t","agent_id":""})", "agent_id must be 1-128"},
      // AUTH_RESPONSE
      {"auth_response", R"({})", "missing field 'ok'"},
      {"auth_response", R"({"ok":"true"})", "'ok' must be a boolean"},
      {"auth_response", R"({"ok":1})", "'ok' must be a boolean"},
      {"auth_response", R"({"ok":false,"error":7})", "'error' must be a string"},
      {"auth_response", R"({"ok":true,"session_id":1})", "'session_id' must be a string"},
      {"auth_response", R"({"ok":true,"account_id":{}})", "'account_id' must be a string"},
      {"auth_response", R"({"ok":true,"heartbeat_interval_ms":-1})",
       "'heartbeat_interval_ms' must be an unsigned 32-bit integer"},
      {"auth_response", R"({"ok":true,"heartbeat_interval_ms":4294967296})",
       "'heartbeat_interval_ms' must be an unsigned 32-bit integer"},
      {"auth_response", R"({"ok":true,"heartbeat_interval_ms":18446744073709551615})",
       "'heartbeat_interval_ms' must be an unsigned 32-bit integer"},
      {"auth_response", R"({"ok":true,"heartbeat_interval_ms":1.5})",
       "'heartbeat_interval_ms' must be an unsigned 32-bit integer"},
      {"auth_response", R"({"ok":true,"heartbeat_interval_ms":"1000"})",
       "'heartbeat_interval_ms' must be an unsigned 32-bit integer"},
      {"auth_response", R"({"ok":true,"max_payload":true})", "'max_payload' must be"},
      {"auth_response", R"({"ok":true,"window":null})", "'window' must be"},
      {"auth_response", R"({"ok":true,"max_payload":1023})", "max_payload out of range"},
      {"auth_response", R"({"ok":true,"max_payload":1048577,"window":2000000})",
       "max_payload out of range"},
      {"auth_response", R"({"ok":true,"max_payload":65536,"window":65535})",
       "window smaller than max_payload"},
      // REGISTER_TUNNEL / UNREGISTER_TUNNEL
      {"tunnel_spec", R"({})", "missing field 'name'"},
      {"tunnel_spec", R"({"type":"http"})", "missing field 'name'"},
      {"tunnel_spec", R"({"name":5})", "'name' must be a string"},
      {"tunnel_spec", R"({"name":"web","type":1})", "'type' must be a string"},
      {"tunnel_spec", R"({"name":"web","type":"udp"})", "tunnel type must be"},
      {"tunnel_spec", R"({"name":"web","type":"HTTP"})", "tunnel type must be"},
      {"tunnel_spec", R"({"name":"web","local_target":3000})", "'local_target' must be"},
      {"tunnel_spec", R"({"name":"web","token":[]})", "'token' must be a string"},
      {"tunnel_spec", R"({"name":"Web"})", "invalid tunnel name 'Web'"},
      {"tunnel_spec", R"({"name":""})", "invalid tunnel name"},
      // REGISTER_TUNNEL with ACK
      {"register_result", R"({"ok":true})", "missing field 'name'"},
      {"register_result", R"({"name":"web"})", "missing field 'ok'"},
      {"register_result", R"({"name":"web","ok":"yes"})", "'ok' must be a boolean"},
      {"register_result", R"({"name":"web","ok":false,"error":false})", "'error' must be"},
      {"register_result", R"({"name":"web","ok":true,"urls":"http://x/"})",
       "'urls' must be an array of strings"},
      {"register_result", R"({"name":"web","ok":true,"urls":[null]})",
       "'urls' must be an array of strings"},
  };
  for (const auto& c : cases) {
    JsonDecoder dec;
    for (const auto& d : json_decoders()) {
      if (std::string_view(d.name) == c.decoder) dec = d.decode;
    }
    ASSERT_TRUE(dec) << c.decoder;
    std::string err;
    EXPECT_FALSE(dec(span_of(c.json), &err)) << c.decoder << ": " << c.json;
    EXPECT_THAT(err, HasSubstr(c.error)) << c.decoder << ": " << c.json;
  }
}

TEST(ControlPayload, AcceptsBoundaryValues) {
  std::string err;
  EXPECT_TRUE(decode_auth_request(
      span_of(R"({"token":"t","agent_id":")" + std::string(128, 'a') + R"("})"), &err))
      << err;
  EXPECT_FALSE(decode_auth_request(
      span_of(R"({"token":"t","agent_id":")" + std::string(129, 'a') + R"("})"), &err));
  auto r = decode_auth_response(
      span_of(R"({"ok":true,"heartbeat_interval_ms":4294967295,"max_payload":1024,"window":1024})"),
      &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->heartbeat_interval_ms, 4294967295u);
  r = decode_auth_response(span_of(R"({"ok":true,"max_payload":1048576,"window":1048576})"), &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->max_payload, kMaxPayloadCeiling);
}

TEST(ControlPayload, IgnoresUnknownFields) {
  // Forward compatibility: a newer peer may add fields (docs/PROTOCOL.md, "JSON payloads").
  std::string err;
  EXPECT_TRUE(decode_auth_request(
      span_of(R"({"token":"t","agent_id":"a","hostnames":["x"],"extra":{"n":1}})"), &err))
      << err;
  EXPECT_TRUE(decode_auth_response(span_of(R"({"ok":true,"motd":"hi"})"), &err)) << err;
  EXPECT_TRUE(decode_tunnel_spec(span_of(R"({"name":"web","hostnames":[]})"), &err)) << err;
  EXPECT_TRUE(decode_register_result(span_of(R"({"name":"web","ok":true,"ttl":5})"), &err)) << err;
}

TEST(ControlPayload, ErrorMessagesDoNotEchoHostileNames) {
  std::string err;
  EXPECT_FALSE(decode_tunnel_spec(span_of(R"({"name":"bad\nINFO forged line"})"), &err));
  EXPECT_EQ(err.find('\n'), std::string::npos);
  EXPECT_FALSE(
      decode_tunnel_spec(span_of(R"({"name":")" + std::string(10000, 'A') + R"("})"), &err));
  EXPECT_LT(err.size(), 200u);
}

// --- tunnel names ---------------------------------------------------------------------------

TEST(TunnelName, FollowsTheDnsLabelRule) {
  struct Case {
    std::string name;
    bool valid;
  };
  const std::vector<Case> cases = {
      {"a", true},
      {"0", true},
      {"web", true},
      {"my-app-2", true},
      {"a--b", true},
      {std::string(63, 'z'), true},
      {"", false},
      {std::string(64, 'z'), false},
      {"-web", false},
      {"web-", false},
      {"-", false},
      {"Web", false},
      {"my_app", false},
      {"my.app", false},
      {"my app", false},
      {"caf\xc3\xa9", false},
      {std::string("we\0b", 4), false},
      {"web/", false},
  };
  for (const auto& c : cases) EXPECT_EQ(valid_tunnel_name(c.name), c.valid) << c.name;
}

// --- malformed binary payloads --------------------------------------------------------------

TEST(ControlPayload, RejectsMalformedOpenStream) {
  const std::vector<std::pair<const char*, ByteVec>> cases = {
      {"empty", {}},
      {"one byte", hex("00")},
      {"tunnel length only", hex("0003")},
      {"tunnel truncated", hex("0003 7765")},
      {"missing addr length", hex("0003 776562")},
      {"half addr length", hex("0003 776562 00")},
      {"addr truncated", hex("0003 776562 0005 3132")},
      {"trailing byte", hex("0003 776562 0000 00")},
      {"trailing frame", hex("0003 776562 0000 0003 776562 0000")},
      {"tunnel length ffff", hex("ffff 776562 0000")},
      {"addr length ffff", hex("0003 776562 ffff 31")},
      {"tunnel length 8000", hex("8000 00")},
  };
  for (const auto& [name, in] : cases) {
    std::string err;
    EXPECT_FALSE(decode_open_stream(in, &err)) << name;
    EXPECT_EQ(err, "malformed OPEN_STREAM payload") << name;
  }
  // Empty fields are well-formed here; the session answers an unknown tunnel with a reset.
  std::string err;
  auto out = decode_open_stream(hex("0000 0000"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_TRUE(out->tunnel.empty());
}

TEST(ControlPayload, RejectsShortCodeReason) {
  for (std::size_t n = 0; n < 4; ++n) {
    std::string err;
    const ByteVec in(n, 0);
    EXPECT_FALSE(decode_code_reason(in, &err)) << n;
    EXPECT_THAT(err, HasSubstr("shorter than 4 bytes"));
  }
  std::string err;
  auto out = decode_code_reason(hex("00000001"), &err);
  ASSERT_TRUE(out) << err;
  EXPECT_EQ(out->code, ErrorCode::ProtocolError);
  EXPECT_TRUE(out->reason.empty());
}

}  // namespace
}  // namespace proxer::proto
