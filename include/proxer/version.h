#pragma once
// Version of the proxer library. The macros describe the headers a program was compiled with;
// proxer::version() the library it is linked with (the build checks that they agree).
#define PROXER_VERSION_MAJOR 0
#define PROXER_VERSION_MINOR 1
#define PROXER_VERSION_PATCH 0
#define PROXER_VERSION_STRING "0.1.0"
// One number for comparisons: MAJOR * 10000 + MINOR * 100 + PATCH.
#define PROXER_VERSION \
  (PROXER_VERSION_MAJOR * 10000 + PROXER_VERSION_MINOR * 100 + PROXER_VERSION_PATCH)

namespace proxer {
// "MAJOR.MINOR.PATCH" of the linked library.
const char* version() noexcept;
}  // namespace proxer
