#pragma once
// Helpers for tests that check lists of error messages (config loading and validation).
#include <algorithm>
#include <string>
#include <vector>

namespace proxer::testing {

// One message per line, for failure output.
inline std::string join(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

// Whether some message contains `needle`.
inline bool has_error(const std::vector<std::string>& errors, const std::string& needle) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const std::string& e) { return e.find(needle) != std::string::npos; });
}

}  // namespace proxer::testing
