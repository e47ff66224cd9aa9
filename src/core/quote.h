#pragma once
// Text from a user (a config value, a command-line argument) shown inside an error message.
#include <string>
#include <string_view>

namespace proxer {

// `value` in double quotes, shortened to its first 64 bytes ("..." marks the cut), with '"' and
// '\' escaped by a backslash and control bytes written as "\xNN": a message stays one printable
// line whatever the value holds.
std::string quote(std::string_view value);

}  // namespace proxer
