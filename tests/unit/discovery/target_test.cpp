// The endpoint value shapes shared by the etcd and file providers, and normalize().
#include <gtest/gtest.h>

#include "discovery/provider.h"

namespace proxer::discovery {
namespace {

TEST(ParseTarget, Shapes) {
  EXPECT_EQ(parse_target(" Web.Internal:8080 "), (Target{"web.internal", 8080, 1}));
  EXPECT_EQ(parse_target("[FD00::1]:80"), (Target{"fd00::1", 80, 1}));
  EXPECT_EQ(parse_target(R"({"host":"10.0.0.1","port":8080,"weight":7})"),
            (Target{"10.0.0.1", 8080, 7}));
  EXPECT_EQ(parse_target(R"({"host":"[fd00::1]","port":80})"), (Target{"fd00::1", 80, 1}));
  EXPECT_EQ(parse_target(R"({"url":"http://b.test","weight":3})"), (Target{"b.test", 80, 3}));
  EXPECT_EQ(parse_target(R"({"url":"http://[::1]:81/"})"), (Target{"::1", 81, 1}));
  for (const char* bad :
       {"", "host", "host:", ":80", "h:80x", "h:-1", "[::1]", R"({"host":"a"})",
        R"({"host":"a","port":"80"})", R"({"host":"a","port":80,"weight":0})",
        R"({"host":"a","port":80,"extra":1})", R"({"url":"https://a:443"})",
        R"({"url":"http://a/path"})", R"({"url":"http://a","host":"b","port":1})", "{bad json"}) {
    std::string err;
    EXPECT_FALSE(parse_target(bad, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(Normalize, SortsAndKeepsTheHeaviestDuplicate) {
  EXPECT_EQ(normalize({{"b", 1, 1}, {"a", 2, 1}, {"a", 1, 3}, {"a", 1, 9}, {"a", 1, 2}}),
            (std::vector<Target>{{"a", 1, 9}, {"a", 2, 1}, {"b", 1, 1}}));
}

TEST(Target, ToString) {
  EXPECT_EQ(to_string(Target{"fd00::1", 80, 1}), "[fd00::1]:80");
  EXPECT_EQ(to_string(Target{"a.test", 8080, 1}), "a.test:8080");
}

}  // namespace
}  // namespace proxer::discovery
