// The JSON side of POST /forward: request validation and the HTTP head it produces.
#include "gateway/forward_api.h"

#include <gtest/gtest.h>

namespace proxer::gateway {
namespace {

TEST(ForwardRequest, DefaultsNeedOnlyTheTunnel) {
  std::string err;
  auto r = parse_forward_request(R"({"tunnel":"app"})", &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->tunnel, "app");
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/");
  EXPECT_TRUE(r->headers.empty());
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->timeout.count(), 0);
  EXPECT_EQ(forward_request_head(*r, "app.localhost"),
            "GET / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 0\r\nConnection: "
            "close\r\n\r\n");
}

TEST(ForwardRequest, EveryFieldAndRepeatedHeaders) {
  std::string err;
  auto r = parse_forward_request(
      R"({"tunnel":"api","method":"PATCH","path":"/v1/x?q=1","timeout_ms":250,
          "headers":{"Host":"api.internal","X-A":["1","2"]},"body_base64":"aGk="})",
      &err);
  ASSERT_TRUE(r) << err;
  EXPECT_EQ(r->body, "hi");
  EXPECT_EQ(r->timeout.count(), 250);
  EXPECT_EQ(forward_request_head(*r, "ignored"),
            "PATCH /v1/x?q=1 HTTP/1.1\r\nHost: api.internal\r\nX-A: 1\r\nX-A: 2\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n");
}

TEST(ForwardRequest, RejectsWhatCouldBreakOrSmuggle) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1]", "must be a JSON object"},
      {R"({"tunnel":"a","method":"GE T"})", "'method' must be an HTTP token"},
      {R"({"tunnel":"a","path":"/a b"})", "'path' must start with '/'"},
      {R"({"tunnel":"a","path":"/a\r\nX: y"})", "'path' must start with '/'"},
      {R"({"tunnel":"a","headers":{"X":"v\u0000"}})", "control characters"},
      {R"({"tunnel":"a","headers":{"Transfer-Encoding":"chunked"}})", "set by the gateway"},
      {R"({"tunnel":"a","headers":{"X":5}})", "must be a string"},
      {R"({"tunnel":"a","headers":["X"]})", "'headers' must be an object"},
      {R"({"tunnel":"a","body_base64":"a"})", "not valid base64"},
      {R"({"tunnel":"a","timeout_ms":0})", "'timeout_ms' must be between"},
      {R"({"tunnel":"a","timeout_ms":"5"})", "'timeout_ms' must be an integer"},
      {R"({"tunnel":7})", "'tunnel' must be a string"},
      {R"({"tunnel":"a","extra":1})", "unknown field 'extra'"},
      {R"({})", "'tunnel' is required"},
  };
  for (const auto& [json, want] : cases) {
    std::string err;
    EXPECT_FALSE(parse_forward_request(json, &err)) << json;
    EXPECT_NE(err.find(want), std::string::npos) << json << " -> " << err;
  }
}

}  // namespace
}  // namespace proxer::gateway
