#include "http/char_class.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

namespace proxer::http::chars {
namespace {

const char* slow_value_end(const char* p, const char* end) {
  while (p != end && is_value_char(*p)) ++p;
  return p;
}

const char* slow_target_end(const char* p, const char* end) {
  while (p != end && static_cast<unsigned char>(*p) > 0x20 && *p != 0x7F) ++p;
  return p;
}

const char* slow_token_end(const char* p, const char* end) {
  while (p != end && is_token_char(*p)) ++p;
  return p;
}

TEST(CharClass, IequalsMatchesToLowerOnEveryBytePair) {
  for (int x = 0; x < 256; ++x) {
    for (int y = 0; y < 256; ++y) {
      const std::string a(1, static_cast<char>(x));
      const std::string b(1, static_cast<char>(y));
      const bool want = to_lower(a[0]) == to_lower(b[0]);
      ASSERT_EQ(iequals(a, b), want) << x << " " << y;
    }
  }
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
  EXPECT_FALSE(iequals("@", "`"));  // differ only in bit 0x20, but not letters
  EXPECT_FALSE(iequals("[", "{"));
}

// The word-at-a-time scanners stop exactly where the byte loops stop, for every position of a
// stopping byte in and around a word and for every byte value.
TEST(CharClass, WordScannersAgreeWithByteLoops) {
  for (int stop = 0; stop < 256; ++stop) {
    for (std::size_t len = 0; len <= 20; ++len) {
      for (std::size_t at = 0; at <= len; ++at) {
        std::string s(len, 'a');
        if (at < len) s[at] = static_cast<char>(stop);
        const char* b = s.data();
        const char* e = s.data() + s.size();
        ASSERT_EQ(skip_value_chars(b, e), slow_value_end(b, e)) << stop << " " << len << " " << at;
        ASSERT_EQ(skip_target_chars(b, e), slow_target_end(b, e))
            << stop << " " << len << " " << at;
        ASSERT_EQ(skip_token_chars(b, e), slow_token_end(b, e)) << stop << " " << len << " " << at;
        // A HTAB before the stop: the value scan goes on past it, the others stop there.
        if (at > 0) {
          std::string t = s;
          t[at - 1] = '\t';
          const char* tb = t.data();
          const char* te = t.data() + t.size();
          ASSERT_EQ(skip_value_chars(tb, te), slow_value_end(tb, te)) << stop << " " << at;
          ASSERT_EQ(skip_target_chars(tb, te), slow_target_end(tb, te)) << stop << " " << at;
        }
      }
    }
  }
  std::mt19937 rng(7);  // fixed seed: deterministic
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 40, ' ');
    for (char& c : s) {
      // Mostly printable, sometimes HTAB, CTLs, DEL and obs-text.
      const auto r = rng() % 100;
      c = r < 85   ? static_cast<char>(0x20 + rng() % 0x5F)
          : r < 90 ? '\t'
          : r < 95 ? static_cast<char>(0x80 + rng() % 0x80)
                   : static_cast<char>(rng() % 0x20 == 0 ? 0x7F : rng() % 0x20);
    }
    const char* b = s.data();
    const char* e = s.data() + s.size();
    ASSERT_EQ(skip_value_chars(b, e), slow_value_end(b, e)) << s;
    ASSERT_EQ(skip_target_chars(b, e), slow_target_end(b, e)) << s;
    // Field names: mostly tchars, now and then anything.
    std::string name(rng() % 40, 'x');
    for (char& c : name) {
      static constexpr std::string_view kTchars =
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
      c = rng() % 50 ? kTchars[rng() % kTchars.size()] : static_cast<char>(rng() % 256);
    }
    ASSERT_EQ(skip_token_chars(name.data(), name.data() + name.size()),
              slow_token_end(name.data(), name.data() + name.size()))
        << name;
  }
}

}  // namespace
}  // namespace proxer::http::chars
