#include "http/response_head.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <string>
#include <utility>
#include <vector>

#include "http/rules.h"

namespace proxer::http {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs fields_of(const ResponseHead& h) {
  Pairs out;
  for (const auto& f : h.fields) out.emplace_back(f.name, f.value);
  return out;
}

TEST(ParseResponseHead, RecordsStatusReasonFieldsAndFraming) {
  const std::string raw =
      "HTTP/1.1 201 Created Here\r\nServer: x\r\ncontent-length:  42 \r\nSet-Cookie: a=1\r\n"
      "Set-Cookie: b=2\r\n\r\n";
  ResponseHead h;
  ASSERT_EQ(parse_response_head(raw, h), std::nullopt);
  EXPECT_EQ(h.status, 201u);
  EXPECT_FALSE(h.http10);
  EXPECT_EQ(h.reason, "Created Here");
  EXPECT_EQ(fields_of(h), (Pairs{{"Server", "x"},
                                 {"content-length", "42"},
                                 {"Set-Cookie", "a=1"},
                                 {"Set-Cookie", "b=2"}}));
  EXPECT_EQ(h.content_length, 42u);
  EXPECT_FALSE(h.chunked);
  // Views into the raw bytes, not copies.
  EXPECT_GE(h.fields[0].name.data(), raw.data());
  EXPECT_LT(h.fields[0].name.data(), raw.data() + raw.size());
  ASSERT_NE(h.find("SET-COOKIE"), nullptr);
  EXPECT_EQ(h.find("set-cookie")->value, "a=1");
  EXPECT_EQ(h.find("absent"), nullptr);
}

TEST(ParseResponseHead, ChunkedNoReasonAndReuse) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", h), std::nullopt);
  EXPECT_EQ(h.content_length, 5u);
  // A second head parsed into the same object starts clean.
  ASSERT_EQ(parse_response_head("HTTP/1.1 200\r\nTransfer-Encoding: Chunked\r\n\r\n", h),
            std::nullopt);
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(h.reason, "");
  EXPECT_EQ(h.content_length, std::nullopt);
  EXPECT_TRUE(h.chunked);
  EXPECT_EQ(fields_of(h), (Pairs{{"Transfer-Encoding", "Chunked"}}));
}

TEST(ParseResponseHead, Http10AndEmptyReason) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.0 200\r\nX: 1\r\n\r\n", h), std::nullopt);
  EXPECT_TRUE(h.http10);
  EXPECT_EQ(h.reason, "");
  EXPECT_EQ(h.content_length, std::nullopt);
  EXPECT_FALSE(h.chunked);
}

// parse_response_head() refuses exactly what check_response_head() refuses, for the same reason.
TEST(ParseResponseHead, AgreesWithCheckResponseHead) {
  const std::string heads[] = {
      "HTTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 12345678901234567890\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
      "HTTP/1.1 200 OK\nX: y\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: y\r\n",
  };
  for (const auto& raw : heads) {
    ResponseHead h;
    EXPECT_EQ(parse_response_head(raw, h), check_response_head(raw)) << raw;
  }
}

TEST(ResponseHead, KeepAliveFollowsVersionAndConnection) {
  struct Case {
    std::string raw;
    bool keep;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: x-a\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", true},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    ResponseHead h;
    ASSERT_EQ(parse_response_head(c.raw, h), std::nullopt) << c.raw;
    EXPECT_EQ(h.keep_alive(), c.keep) << c.raw;
  }
}

// The relay path used to be: Beast's parser, strip_hop_by_hop(), erase the hidden and removed
// names, set/insert the route's fields, then serialize_response_head(). The raw path must write
// the same bytes for the same edits.
struct Edits {
  bool keep_upgrade = false;
  std::vector<std::string> hide, remove;
  Pairs set, add;
  bool chunked = false, close = false;
};

std::string via_beast(const std::string& raw, const Edits& e) {
  bhttp::response_parser<bhttp::empty_body> p;
  p.eager(false);
  beast::error_code ec;
  p.put(boost::asio::buffer(raw), ec);
  EXPECT_FALSE(ec) << ec.message();
  auto& res = p.get();
  strip_hop_by_hop(res, e.keep_upgrade);
  for (const auto& n : e.hide) res.erase(n);
  for (const auto& n : e.remove) res.erase(n);
  for (const auto& [n, v] : e.set) res.set(n, v);
  for (const auto& [n, v] : e.add) res.insert(n, v);
  if (e.chunked) res.set(bhttp::field::transfer_encoding, "chunked");
  if (e.close) res.set(bhttp::field::connection, "close");
  std::string out;
  serialize_response_head(res.base(), out);
  return out;
}

std::string via_raw(const std::string& raw, const Edits& e) {
  ResponseHead h;
  EXPECT_EQ(parse_response_head(raw, h), std::nullopt) << raw;
  const ResponseEdits edits{.keep_upgrade = e.keep_upgrade,
                            .hide = e.hide,
                            .remove = e.remove,
                            .set = e.set,
                            .add = e.add,
                            .chunked = e.chunked,
                            .connection_close = e.close};
  std::string out;
  serialize_response_head(h, edits, out);
  return out;
}

TEST(SerializeRawResponseHead, SameBytesAsTheBeastPath) {
  struct Case {
    const char* name;
    std::string raw;
    Edits edits;
  };
  const Case cases[] = {
      {"plain", "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 13\r\n\r\n", {}},
      {"empty reason gets the standard one", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", {}},
      {"hop-by-hop fixed set",
       "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: x\r\n"
       "Trailer: X-Sum\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\nProxy-Authenticate: "
       "Basic\r\nProxy-Connection: close\r\nX-Keep: 1\r\n\r\n",
       {.chunked = true}},
      {"names listed in Connection; never Content-Length",
       "HTTP/1.1 200 OK\r\nconnection: X-Foo, content-length,, date\r\nX-Foo: 1\r\n"
       "Date: d\r\nContent-Length: 2\r\nx-foo: 2\r\nX-Keep: k\r\n\r\n",
       {.close = true}},
      {"101 keeps Upgrade and restores Connection",
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-A\r\n"
       "X-A: 1\r\nSec-WebSocket-Accept: abc\r\n\r\n",
       {.keep_upgrade = true, .hide = {"server"}}},
      {"hide, remove, set and add in order",
       "HTTP/1.1 200 OK\r\nServer: gunicorn\r\nX-Powered-By: PHP\r\nx-powered-by: again\r\n"
       "Cache-Control: private\r\nX-Multi: 1\r\nContent-Length: 0\r\nX-Multi: 2\r\n\r\n",
       {.hide = {"SERVER", "x-powered-by"},
        .remove = {"x-multi"},
        .set = {{"Cache-Control", "no-store"}, {"X-New", "n"}},
        .add = {{"X-Added", "1"}, {"x-added", "2"}}}},
      {"configured values cannot inject lines",
       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       {.set = {{"X-A", "a\r\nX-Evil: 1"}}, .add = {{"Bad Name", "v"}}}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(via_raw(c.raw, c.edits), via_beast(c.raw, c.edits)) << c.name;
  }
}

// Beast files a repeated field after the last one of its name; the raw path keeps the upstream's
// order of lines (what the via_beast() comparison above cannot show).
TEST(SerializeRawResponseHead, KeepsTheUpstreamsFieldOrder) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\na: 3\r\n\r\n", h),
            std::nullopt);
  std::string out;
  serialize_response_head(h, ResponseEdits{}, out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\na: 3\r\n\r\n");
}

TEST(SerializeRawResponseHead, AsIsForInterimResponses) {
  ResponseHead h;
  ASSERT_EQ(
      parse_response_head("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nConnection: x\r\n\r\n", h),
      std::nullopt);
  std::string out;
  serialize_response_head(h, ResponseEdits{.strip_hop_by_hop = false}, out);
  EXPECT_EQ(out, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nConnection: x\r\n\r\n");
}

TEST(SerializeRawResponseHead, Http10BecomesHttp11) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", h), std::nullopt);
  std::string out;
  serialize_response_head(h, ResponseEdits{}, out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n");
}

}  // namespace
}  // namespace proxer::http
