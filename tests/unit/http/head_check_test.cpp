#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>

#include "http/rules.h"

namespace proxer::http {
namespace {

using namespace std::string_literals;

// Whether Beast 1.81's parser refuses the message (head and, if it gets that far, body).
template <bool isRequest>
bool beast_rejects(std::string_view raw) {
  bhttp::parser<isRequest, bhttp::string_body> p;
  p.eager(true);
  beast::error_code ec;
  std::size_t used = 0;
  while (!ec && !p.is_done() && used < raw.size()) {
    const auto n = p.put(boost::asio::buffer(raw.data() + used, raw.size() - used), ec);
    if (n == 0) break;
    used += n;
  }
  return static_cast<bool>(ec);
}

struct HeadCase {
  const char* name;
  std::string head;
  std::optional<std::string> reason;  // nullopt: must pass
};

// Each request head must end in the empty line; check_request_head only looks at the head.
const HeadCase kRequestCases[] = {
    // Legitimate requests.
    {"GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", std::nullopt},
    {"GET HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", std::nullopt},
    {"POST with CL", "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", std::nullopt},
    {"POST with CL 0 and OWS", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t0 \r\n\r\n",
     std::nullopt},
    {"POST chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
     std::nullopt},
    {"chunked any case", "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding:  CHUNKED\r\n\r\n",
     std::nullopt},
    {"values with colons",
     "GET /a:b?c=d:e HTTP/1.1\r\nHost: a:8080\r\nReferer: http://x:1/y\r\nX-T: 12:30:00\r\n\r\n",
     std::nullopt},
    {"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Sp: \r\n\r\n", std::nullopt},
    {"obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX-N: caf\xc3\xa9\r\n\r\n", std::nullopt},
    {"tab inside value", "GET / HTTP/1.1\r\nHost: a\r\nX-T: a\tb\r\n\r\n", std::nullopt},
    {"token punctuation in names", "GET / HTTP/1.1\r\nHost: a\r\nX-a.b_c!#$%&'*+^`|~: v\r\n\r\n",
     std::nullopt},
    {"absolute-form target", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", std::nullopt},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", std::nullopt},
    {"bytes after the head are not looked at",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n\0\r\r"s, std::nullopt},

    // Smuggling and malformed framing.
    {"obs-fold SP", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "obs-fold"},
    {"obs-fold HTAB", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", "obs-fold"},
    {"whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "obs-fold"},
    {"folded Transfer-Encoding",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"CL then TE",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     "Content-Length with Transfer-Encoding"},
    {"TE then CL",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     "Content-Length with Transfer-Encoding"},
    {"two equal CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
     "multiple Content-Length"},
    {"two different CL",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     "multiple Content-Length"},
    {"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
     "invalid Content-Length"},
    {"CL plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
     "invalid Content-Length"},
    {"CL minus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
     "invalid Content-Length"},
    {"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
     "invalid Content-Length"},
    {"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
     "invalid Content-Length"},
    {"CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
     "invalid Content-Length"},
    {"CL 20 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00000000000000000001\r\n\r\n",
     "invalid Content-Length"},
    {"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE chunked twice in list",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE two lines",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
     "chunked\r\n\r\n",
     "multiple Transfer-Encoding"},
    {"TE vertical tab",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b"
     "chunked\r\n\r\n",
     "control character in field value"},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
     "Transfer-Encoding in HTTP/1.0"},
    {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace before colon"},
    {"tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n",
     "whitespace before colon"},
    {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", "empty field name"},
    {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nXv\r\n\r\n", "field line without colon"},
    {"bad name char", "GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n", "invalid field name"},
    {"bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", "bare LF"},
    {"bare LF in field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF"},
    {"bare LF ends head", "GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF"},
    {"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n", "bare CR"},
    {"bare CR before CRLF", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\r\n\r\n", "bare CR"},
    {"bare CR ends head", "GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n", "bare CR"},
    {"bare CR in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", "bare CR"},
    {"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\0c\r\n\r\n"s, "NUL byte"},
    {"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\0: c\r\n\r\n"s, "NUL byte"},
    {"NUL in target", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"s, "NUL byte"},
    {"NUL in method", "G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"s, "NUL byte"},
    {"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\x7f\r\n\r\n",
     "control character in field value"},
    {"ESC in value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\x1b[0m\r\n\r\n",
     "control character in field value"},
    {"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request line"},
    {"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request line"},
    {"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "unsupported HTTP version"},
    {"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "invalid request line"},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "unsupported HTTP version"},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "unsupported HTTP version"},
    {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", "unsupported HTTP version"},
    {"HTTP/0.9", "GET /\r\n\r\n", "invalid request line"},
    {"missing Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "missing Host"},
    {"two Host", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "multiple Host"},
    {"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", "incomplete head"},
    {"incomplete mid line", "GET / HTTP/1.1\r\nHost: a", "incomplete head"},
    {"incomplete after CR", "GET / HTTP/1.1\r\nHost: a\r\n\r", "incomplete head"},
    {"empty", "", "incomplete head"},
};

TEST(CheckRequestHead, TableOfCases) {
  for (const auto& c : kRequestCases) {
    EXPECT_EQ(check_request_head(c.head), c.reason) << c.name;
  }
}

TEST(CheckRequestHead, ManyHeadersPass) {
  std::string head = "GET /x HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 200; ++i) {
    head += "X-Header-" + std::to_string(i) + ": value " + std::to_string(i) + ": with colon\r\n";
  }
  head += "\r\n";
  EXPECT_EQ(check_request_head(head), std::nullopt);
}

// Every prefix of a valid head is merely incomplete, never misreported as malformed.
TEST(CheckRequestHead, PrefixesAreIncomplete) {
  const std::string head = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Y: z\r\n\r\n";
  for (std::size_t n = 0; n < head.size(); ++n) {
    EXPECT_EQ(check_request_head(std::string_view(head).substr(0, n)), "incomplete head") << n;
  }
}

// The measurement behind the comment at the top of rules.h: which smuggling cases Beast 1.81
// already refuses on its own. If a Boost upgrade changes a row, update the comment.
TEST(BeastBaseline, WhatBeastAcceptsThatWeReject) {
  struct Case {
    const char* name;
    std::string raw;  // head and body
    bool beast_rejects;
  };
  const Case cases[] = {
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", false},
      {"two equal CL",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
      {"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", false},
      {"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", false},
      {"TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       false},
      {"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", false},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", false},
      {"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
      {"CL+TE",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       true},
      {"TE+CL",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       true},
      {"two different CL",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", true},
      {"CL plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", true},
      {"TE two lines",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       true},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", true},
      {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", true},
      {"bare CR", "GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n", true},
      {"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: b\0c\r\n\r\n"s, true},
      {"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(beast_rejects<true>(c.raw), c.beast_rejects) << c.name;
    const auto head = std::string_view(c.raw).substr(0, find_head_end(c.raw));
    EXPECT_NE(check_request_head(head), std::nullopt) << c.name;
  }
}

// The legitimate requests pass both us and Beast.
TEST(BeastBaseline, LegitimateRequestsPassBoth) {
  const std::string cases[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a:1\r\nX-U: http://b:2/c\r\n\r\n",
  };
  for (const auto& raw : cases) {
    EXPECT_FALSE(beast_rejects<true>(raw)) << raw;
    EXPECT_EQ(check_request_head(std::string_view(raw).substr(0, find_head_end(raw))), std::nullopt)
        << raw;
  }
}

const HeadCase kResponseCases[] = {
    {"200", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", std::nullopt},
    {"no reason", "HTTP/1.1 204 \r\n\r\n", std::nullopt},
    {"no SP after code", "HTTP/1.1 204\r\n\r\n", std::nullopt},
    {"HTTP/1.0 close-delimited", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", std::nullopt},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", std::nullopt},
    {"reason with obs-text", "HTTP/1.1 200 D\xc3\xa9j\xc3\xa0 vu\r\n\r\n", std::nullopt},
    {"no Host needed", "HTTP/1.1 200 OK\r\n\r\n", std::nullopt},
    {"two equal CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
     "multiple Content-Length"},
    {"two different CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
     "multiple Content-Length"},
    {"CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
     "Content-Length with Transfer-Encoding"},
    {"CL not digits", "HTTP/1.1 200 OK\r\nContent-Length: 2a\r\n\r\n", "invalid Content-Length"},
    {"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
     "unsupported Transfer-Encoding"},
    {"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     "Transfer-Encoding in HTTP/1.0"},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obs-fold"},
    {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
     "whitespace before colon"},
    {"NUL", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n"s, "NUL byte"},
    {"bare LF", "HTTP/1.1 200 OK\nX: a\r\n\r\n", "bare LF"},
    {"status 4 digits", "HTTP/1.1 2000 OK\r\n\r\n", "invalid status line"},
    {"status 2 digits", "HTTP/1.1 20 OK\r\n\r\n", "invalid status line"},
    {"status leading 0", "HTTP/1.1 099 OK\r\n\r\n", "invalid status line"},
    {"HTTP/2", "HTTP/2 200 OK\r\n\r\n", "unsupported HTTP version"},
    {"garbage", "hello\r\n\r\n", "unsupported HTTP version"},
    {"short garbage", "OK\r\n\r\n", "unsupported HTTP version"},
    {"short HTTP", "HTTP\r\n\r\n", "unsupported HTTP version"},
    {"version cut short", "HTTP/1.", "incomplete head"},
    {"first bytes", "HT", "incomplete head"},
    {"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", "invalid status line"},
    {"incomplete", "HTTP/1.1 200 OK\r\n", "incomplete head"},
};

TEST(CheckResponseHead, TableOfCases) {
  for (const auto& c : kResponseCases) {
    EXPECT_EQ(check_response_head(c.head), c.reason) << c.name;
  }
}

TEST(FindHeadEnd, FindsFirstEmptyLine) {
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\r\n\r\n"), 27u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), std::string_view::npos);
  EXPECT_EQ(find_head_end(""), std::string_view::npos);
}

}  // namespace
}  // namespace proxer::http
