// The test vectors of docs/PROTOCOL.md ("Test vectors"). Each vector is checked three ways:
// the codec encodes the described frame to exactly these bytes, decodes them back to the
// described values, and the document shows exactly these bytes. The spec and the code can't
// drift apart without this test failing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "proto/control.h"
#include "proto/frame.h"
#include "test_bytes.h"

namespace proxer::proto {
namespace {

using namespace test_bytes;

constexpr std::uint64_t kTimestamp = 1'000'000'000;  // ns on the sender's monotonic clock

struct Vector {
  std::string title;                          // the "### " heading in the document
  const char* hex;                            // the bytes, in the document's format
  ByteVec encoded;                            // what the codec produces for the described frame
  std::function<void(const Decoded&)> check;  // the described values, checked on decode
};

std::string s(Bytes b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::vector<Vector> vectors() {
  std::vector<Vector> v;

  v.push_back({"V1 HEARTBEAT", R"(
01 00 00 00 00 00 00 00 00 00 00 08
00 00 00 00 3b 9a ca 00
)",
               frame(FrameType::Heartbeat, 0, 0, u64_payload(kTimestamp)), [](const Decoded& d) {
                 EXPECT_EQ(d.header.type, FrameType::Heartbeat);
                 EXPECT_EQ(d.header.flags, 0);
                 EXPECT_EQ(get_u64(d.payload.data()), kTimestamp);
               }});

  v.push_back({"V2 HEARTBEAT ACK", R"(
01 00 01 00 00 00 00 00 00 00 00 08
00 00 00 00 3b 9a ca 00
)",
               frame(FrameType::Heartbeat, flags::kAck, 0, u64_payload(kTimestamp)),
               [](const Decoded& d) {
                 EXPECT_EQ(d.header.flags, flags::kAck);
                 EXPECT_EQ(get_u64(d.payload.data()), kTimestamp);
               }});

  const AuthRequest auth{.token = "t0k3n",
                         .agent_id = "laptop-1",
                         .version = "0.1.0",
                         .capabilities = {"http", "tcp"},
                         .carrier = "tls"};
  v.push_back({"V3 AUTH_REQUEST", R"(
01 01 00 00 00 00 00 00 00 00 00 67
7b 22 74 6f 6b 65 6e 22 3a 22 74 30 6b 33 6e 22
2c 22 61 67 65 6e 74 5f 69 64 22 3a 22 6c 61 70
74 6f 70 2d 31 22 2c 22 76 65 72 73 69 6f 6e 22
3a 22 30 2e 31 2e 30 22 2c 22 63 61 70 61 62 69
6c 69 74 69 65 73 22 3a 5b 22 68 74 74 70 22 2c
22 74 63 70 22 5d 2c 22 63 61 72 72 69 65 72 22
3a 22 74 6c 73 22 7d
)",
               frame(FrameType::AuthRequest, 0, 0, encode(auth)), [auth](const Decoded& d) {
                 std::string err;
                 auto m = decode_auth_request(d.payload, &err);
                 ASSERT_TRUE(m) << err;
                 EXPECT_EQ(m->token, auth.token);
                 EXPECT_EQ(m->agent_id, auth.agent_id);
                 EXPECT_EQ(m->version, auth.version);
                 EXPECT_EQ(m->capabilities, auth.capabilities);
                 EXPECT_EQ(m->carrier, auth.carrier);
               }});

  v.push_back({"V4 OPEN_STREAM", R"(
01 20 00 00 00 00 00 01 00 00 00 18
00 03 77 65 62 00 11 32 30 33 2e 30 2e 31 31 33
2e 37 3a 35 31 30 30 30
)",
               frame(FrameType::OpenStream, 0, 1, encode(OpenStream{"web", "203.0.113.7:51000"})),
               [](const Decoded& d) {
                 EXPECT_EQ(d.header.stream_id, 1u);
                 std::string err;
                 auto m = decode_open_stream(d.payload, &err);
                 ASSERT_TRUE(m) << err;
                 EXPECT_EQ(m->tunnel, "web");
                 EXPECT_EQ(m->client_addr, "203.0.113.7:51000");
               }});

  v.push_back({"V5 DATA FIN", R"(
01 21 01 00 00 00 00 01 00 00 00 05
68 65 6c 6c 6f
)",
               frame(FrameType::Data, flags::kFin, 1, "hello"), [](const Decoded& d) {
                 EXPECT_EQ(d.header.flags, flags::kFin);
                 EXPECT_EQ(d.header.stream_id, 1u);
                 EXPECT_EQ(s(d.payload), "hello");
               }});

  v.push_back({"V6 WINDOW_UPDATE", R"(
01 23 00 00 00 00 00 01 00 00 00 04
00 02 00 00
)",
               frame(FrameType::WindowUpdate, 0, 1, u32_payload(128 * 1024)), [](const Decoded& d) {
                 EXPECT_EQ(d.header.stream_id, 1u);
                 EXPECT_EQ(get_u32(d.payload.data()), 128u * 1024);
               }});

  v.push_back({"V7 CLOSE_STREAM RST", R"(
01 22 01 00 00 00 00 03 00 00 00 04
00 00 00 04
)",
               frame(FrameType::CloseStream, flags::kRst, 3,
                     u32_payload(static_cast<std::uint32_t>(ErrorCode::ConnectRefused))),
               [](const Decoded& d) {
                 EXPECT_EQ(d.header.flags, flags::kRst);
                 EXPECT_EQ(d.header.stream_id, 3u);
                 EXPECT_EQ(static_cast<ErrorCode>(get_u32(d.payload.data())),
                           ErrorCode::ConnectRefused);
               }});

  v.push_back({"V8 GOAWAY", R"(
01 24 00 00 00 00 00 00 00 00 00 0b
00 00 00 09 72 65 73 74 61 72 74
)",
               frame(FrameType::GoAway, 0, 0, encode(CodeReason{ErrorCode::Shutdown, "restart"})),
               [](const Decoded& d) {
                 std::string err;
                 auto m = decode_code_reason(d.payload, &err);
                 ASSERT_TRUE(m) << err;
                 EXPECT_EQ(m->code, ErrorCode::Shutdown);
                 EXPECT_EQ(m->reason, "restart");
               }});

  v.push_back(
      {"V9 ERROR", R"(
01 ff 00 00 00 00 00 00 00 00 00 0d
00 00 00 01 62 61 64 20 66 72 61 6d 65
)",
       frame(FrameType::Error, 0, 0, encode(CodeReason{ErrorCode::ProtocolError, "bad frame"})),
       [](const Decoded& d) {
         std::string err;
         auto m = decode_code_reason(d.payload, &err);
         ASSERT_TRUE(m) << err;
         EXPECT_EQ(m->code, ErrorCode::ProtocolError);
         EXPECT_EQ(m->reason, "bad frame");
       }});
  return v;
}

TEST(ProtocolVectors, EncoderProducesTheVectors) {
  for (const auto& v : vectors()) {
    EXPECT_EQ(to_hex(v.encoded), to_hex(hex(v.hex))) << v.title;
  }
}

TEST(ProtocolVectors, DecoderReadsTheVectors) {
  for (const auto& v : vectors()) {
    SCOPED_TRACE(v.title);
    const auto bytes = hex(v.hex);
    const auto d = decode(bytes, kDefaultMaxPayload);
    ASSERT_EQ(d.status, DecodeStatus::Frame) << to_string(d.error);
    EXPECT_EQ(d.consumed, bytes.size());
    v.check(d);
  }
}

// Every "### <title>" heading of the "## Test vectors" section followed by a ```hex block.
std::map<std::string, ByteVec> vectors_in_document(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::map<std::string, ByteVec> out;
  std::string line, title, block;
  bool in_section = false, in_block = false;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) in_section = line == "## Test vectors";
    if (!in_section) continue;
    if (in_block) {
      if (line.starts_with("```")) {
        in_block = false;
        out[title] = hex(block);
      } else {
        block += line + "\n";
      }
    } else if (line.starts_with("### ")) {
      title = line.substr(4);
    } else if (line == "```hex") {
      in_block = true;
      block.clear();
    }
  }
  return out;
}

TEST(ProtocolVectors, DocumentShowsTheSameBytes) {
  // This file lives at tests/unit/proto/; the spec at docs/PROTOCOL.md.
  const auto doc = std::filesystem::path(PROXER_SOURCE_DIR) / "docs/PROTOCOL.md";
  ASSERT_TRUE(std::filesystem::exists(doc)) << doc;
  const auto documented = vectors_in_document(doc);
  const auto expected = vectors();
  EXPECT_EQ(documented.size(), expected.size());
  for (const auto& v : expected) {
    auto it = documented.find(v.title);
    if (it == documented.end()) {
      ADD_FAILURE() << "docs/PROTOCOL.md has no vector titled '" << v.title << "'";
      continue;
    }
    EXPECT_EQ(to_hex(it->second), to_hex(hex(v.hex))) << v.title;
  }
}

}  // namespace
}  // namespace proxer::proto
