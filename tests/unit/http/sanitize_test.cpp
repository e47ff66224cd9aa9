#include "http/sanitize.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace proxer::http {
namespace {

// What normalize_target gives: the target (the input when unchanged) or the verdict's code.
std::string normalized(std::string_view target, const PathOptions& o = {}) {
  const auto r = normalize_target(target, o);
  if (r.verdict != PathVerdict::Ok) {
    EXPECT_FALSE(r.changed) << target;
    return "!" + std::string(verdict_message(r.verdict));
  }
  EXPECT_EQ(r.changed, !r.target.empty()) << target;
  if (r.changed) {
    EXPECT_NE(r.target, target) << "changed but equal: " << target;
  }
  return r.changed ? r.target : std::string(target);
}

std::string rejected(PathVerdict v) {
  return "!" + std::string(verdict_message(v));
}

struct Case {
  std::string_view in;
  std::string want;
};

void run(const std::vector<Case>& cases, const PathOptions& o) {
  for (const auto& c : cases) EXPECT_EQ(normalized(c.in, o), c.want) << "input: " << c.in;
}

TEST(NormalizeTarget, DefaultOptions) {
  const std::vector<Case> cases = {
      // Already normal: unchanged.
      {"/", "/"},
      {"/a/b/c", "/a/b/c"},
      {"/a/b/", "/a/b/"},
      {"/a.b/c..d/.e/..f", "/a.b/c..d/.e/..f"},  // dots inside names are no dot segments
      {"/x?y=/../z", "/x?y=/../z"},              // the query is never touched
      {"*", "*"},
      // Dot segments (RFC 3986 §5.2.4).
      {"/a/./b/", "/a/b/"},
      {"/a/./b/.", "/a/b/"},
      {"/./", "/"},
      {"/.", "/"},
      {"/a/..", "/"},
      {"/a/../", "/"},
      {"/a/b/../c", "/a/c"},
      {"/a/b/../../c/", "/c/"},
      {"/public/../admin", "/admin"},
      {"/a/b/..?q=..", "/a/?q=.."},
      {"/a/./b?x=%2e%2e/./", "/a/b?x=%2e%2e/./"},
      // Encoded dots count as dots.
      {"/a/%2e%2e/b", "/b"},
      {"/a/%2E./b", "/b"},
      {"/a/.%2e/b", "/b"},
      {"/a/%2e/b", "/a/b"},
      {"/a/%2E%2E", "/"},
      // Escapes of unreserved characters are decoded; the others get upper-case hex.
      {"/%41%7a%7E%2d%5F%30", "/Az~-_0"},
      {"/a%20b%3fc%3F", "/a%20b%3Fc%3F"},
      {"/caf%c3%a9", "/caf%C3%A9"},
      {"/%252e%252e/x", "/%252e%252e/x"},  // %25 is '%': never decoded twice
      {"/%25", "/%25"},
      // Empty segments stay (merge_slashes is off), and ".." removes one.
      {"//x", "//x"},
      {"/a//b", "/a//b"},
      {"/a//../b", "/a/b"},
      {"//..", "/"},
      // Encoded slashes are kept, and not segment separators.
      {"/a%2Fb", "/a%2Fb"},
      {"/a%2fb/%5c", "/a%2Fb/%5C"},
      {"/a/..%2F..%2Fetc", "/a/..%2F..%2Fetc"},  // one segment named "..%2F..%2Fetc"
      // Climbing above the root.
      {"/..", rejected(PathVerdict::Traversal)},
      {"/../", rejected(PathVerdict::Traversal)},
      {"/../a", rejected(PathVerdict::Traversal)},
      {"/a/../..", rejected(PathVerdict::Traversal)},
      {"/a/../../b", rejected(PathVerdict::Traversal)},
      {"/%2e%2e/etc/passwd", rejected(PathVerdict::Traversal)},
      {"/a/%2E%2e/%2e./b", rejected(PathVerdict::Traversal)},
      {"/./../x", rejected(PathVerdict::Traversal)},
      // Bytes and forms that are refused.
      {"/a%00b", rejected(PathVerdict::NulByte)},
      {"/a%0", rejected(PathVerdict::BadEscape)},
      {"/a%", rejected(PathVerdict::BadEscape)},
      {"/a%zz", rejected(PathVerdict::BadEscape)},
      {"/a%g1/b", rejected(PathVerdict::BadEscape)},
      {"/a\\b", rejected(PathVerdict::Backslash)},
      {"/a/..\\..\\x", rejected(PathVerdict::Backslash)},
      {"/a#frag", rejected(PathVerdict::Fragment)},
      {"http://example.com/a", rejected(PathVerdict::BadTarget)},
      {"example.com:443", rejected(PathVerdict::BadTarget)},
      {"", rejected(PathVerdict::BadTarget)},
      {"a/b", rejected(PathVerdict::BadTarget)},
  };
  run(cases, {});
}

TEST(NormalizeTarget, MergeSlashes) {
  PathOptions o;
  o.merge_slashes = true;
  run(
      {
          {"//x", "/x"},
          {"/a//b///c", "/a/b/c"},
          {"/a//", "/a/"},
          {"//", "/"},
          {"/a//..//b", "/b"},
          {"//..", rejected(PathVerdict::Traversal)},  // "//" is "/", and ".." above it climbs
          {"/x//y?a//b", "/x/y?a//b"},
      },
      o);
}

TEST(NormalizeTarget, EscapedSlashesReject) {
  PathOptions o;
  o.escaped_slashes = EscapedSlashes::Reject;
  run(
      {
          {"/a%2Fb", rejected(PathVerdict::EscapedSlash)},
          {"/a%2fb", rejected(PathVerdict::EscapedSlash)},
          {"/a%5Cb", rejected(PathVerdict::EscapedSlash)},
          {"/a%5c", rejected(PathVerdict::EscapedSlash)},
          {"/a\\b", rejected(PathVerdict::Backslash)},
          {"/a%2Eb", "/a.b"},
          {"/x?%2F", "/x?%2F"},  // the query may hold anything
      },
      o);
}

TEST(NormalizeTarget, EscapedSlashesDecode) {
  PathOptions o;
  o.escaped_slashes = EscapedSlashes::Decode;
  run(
      {
          {"/a%2Fb", "/a/b"},
          {"/a%5cb", "/a/b"},
          {"/a\\b", "/a/b"},
          {"/a/..%2Fb", "/b"},
          {"/public%2F..%2Fadmin", "/admin"},
          {"/public\\..\\admin", "/admin"},
          {"/a%2F..%2F..%2Fetc", rejected(PathVerdict::Traversal)},
          {"/..\\x", rejected(PathVerdict::Traversal)},
      },
      o);
}

TEST(NormalizeTarget, OffLeavesEverythingAlone) {
  PathOptions o;
  o.normalize = false;
  for (std::string_view t : {"/../x", "/a%00", "/a\\b", "http://h/p", "/a#b", "//x"}) {
    const auto r = normalize_target(t, o);
    EXPECT_EQ(r.verdict, PathVerdict::Ok) << t;
    EXPECT_FALSE(r.changed) << t;
  }
}

TEST(NormalizeTarget, IsIdempotent) {
  // Whatever comes out normalises to itself, in every mode (the post-rewrite check relies on it).
  const std::vector<std::string_view> inputs = {
      "/a/./b/../c/", "/%2e%2e%2f", "/a%2Fb/%2e/c", "/x//y/./%7e?q=%2e", "/caf%c3%a9/./",
      "/a\\b/../c",   "//a//b//",   "/%41%2f%42",   "/a/b/c/../../..",   "/."};
  for (auto merge : {false, true}) {
    for (auto esc : {EscapedSlashes::Keep, EscapedSlashes::Reject, EscapedSlashes::Decode}) {
      const PathOptions o{true, merge, esc};
      for (auto in : inputs) {
        const auto once = normalize_target(in, o);
        if (once.verdict != PathVerdict::Ok) continue;
        const std::string out = once.changed ? once.target : std::string(in);
        const auto twice = normalize_target(out, o);
        EXPECT_EQ(twice.verdict, PathVerdict::Ok) << in;
        EXPECT_FALSE(twice.changed) << in << " -> " << out << " -> " << twice.target;
      }
    }
  }
}

TEST(NormalizeTarget, CodesAndMessages) {
  EXPECT_EQ(verdict_code(PathVerdict::Traversal), "path_traversal");
  EXPECT_EQ(verdict_code(PathVerdict::NulByte), "bad_path");
  EXPECT_EQ(verdict_code(PathVerdict::BadEscape), "bad_path");
}

// --- Header names ------------------------------------------------------------------------------

std::vector<std::string> names(const bhttp::fields& f) {
  std::vector<std::string> out;
  for (const auto& field : f) out.emplace_back(field.name_string());
  return out;
}

TEST(UnderscoreHeaders, Policies) {
  auto make = [] {
    bhttp::fields f;
    f.insert("Host", "h");
    f.insert("X_Forwarded_For", "1.2.3.4");
    f.insert("X-Ok", "1");
    f.insert("_", "x");
    f.insert("user_id", "7");
    return f;
  };
  auto f = make();
  EXPECT_EQ(apply_underscore_policy(f, UnderscoreHeaders::Allow), std::nullopt);
  EXPECT_EQ(names(f),
            (std::vector<std::string>{"Host", "X_Forwarded_For", "X-Ok", "_", "user_id"}));

  f = make();
  EXPECT_EQ(apply_underscore_policy(f, UnderscoreHeaders::Drop), std::nullopt);
  EXPECT_EQ(names(f), (std::vector<std::string>{"Host", "X-Ok"}));

  f = make();
  EXPECT_EQ(apply_underscore_policy(f, UnderscoreHeaders::Reject), "X_Forwarded_For");
  EXPECT_EQ(names(f).size(), 5u);  // left alone: the request is refused anyway

  bhttp::fields clean;
  clean.insert("X-A", "1");
  EXPECT_EQ(apply_underscore_policy(clean, UnderscoreHeaders::Reject), std::nullopt);
}

// --- Trusted networks --------------------------------------------------------------------------

// The parser and the per-network match are tested with core/cidr.h (tests/unit/core/cidr_test.cpp);
// here, the set of trusted networks as the request path asks it, with addresses as text.
TEST(CidrSet, Contains) {
  std::vector<Cidr> nets;
  for (auto t : {"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "172.16.0.0/12"}) {
    nets.push_back(*Cidr::parse(t));
  }
  const CidrSet set(nets);
  struct Case {
    std::string_view ip;
    bool in;
  };
  const Case cases[] = {
      {"10.1.2.3", true},           {"10.255.255.255", true},
      {"11.0.0.0", false},          {"192.0.2.7", true},
      {"192.0.2.8", false},         {"172.31.255.1", true},
      {"172.32.0.1", false},        {"2001:db8::1", true},
      {"[2001:db8:ffff::1]", true}, {"2001:db9::1", false},
      {"::ffff:10.9.8.7", true},  // an IPv4 client on a dual-stack listener
      {"::ffff:11.0.0.1", false},   {"fe80::1%eth0", false},
      {"unknown", false},           {"", false},
  };
  for (const auto& c : cases) EXPECT_EQ(set.contains(c.ip), c.in) << c.ip;
  EXPECT_FALSE(CidrSet().contains("10.0.0.1"));
  const CidrSet all({*Cidr::parse("0.0.0.0/0"), *Cidr::parse("::/0")});
  EXPECT_TRUE(all.contains("203.0.113.9"));
  EXPECT_TRUE(all.contains("::1"));
  EXPECT_TRUE(CidrSet({*Cidr::parse("fe80::/10")}).contains("fe80::1%eth0"));
}

}  // namespace
}  // namespace proxer::http
