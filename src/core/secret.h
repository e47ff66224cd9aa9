#pragma once
// A string that never prints itself: formatting a Secret yields "***".
#include <fmt/format.h>
#include <openssl/crypto.h>

#include <string>
#include <string_view>

namespace proxer {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  bool empty() const { return value_.empty(); }
  // The secret itself; call only where it is compared or sent on the wire.
  const std::string& reveal() const { return value_; }

  // Constant-time comparison (the length of the secret may leak, its content does not).
  bool matches(std::string_view candidate) const {
    if (candidate.size() != value_.size()) return false;
    return CRYPTO_memcmp(candidate.data(), value_.data(), value_.size()) == 0;
  }

  friend bool operator==(const Secret& a, const Secret& b) { return a.matches(b.value_); }

 private:
  std::string value_;
};

}  // namespace proxer

template <>
struct fmt::formatter<proxer::Secret> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const proxer::Secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
