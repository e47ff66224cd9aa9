#pragma once
// File discovery: a text file with one endpoint per line, re-read when it changes.
//
//   # comments start with '#', at the start of a line or after whitespace
//   10.0.0.1:8080
//   10.0.0.2:8080 5            <- optional weight, 1-1000 (default 1)
//   [fd00::3]:8080 2
//   backend.internal:8080
//
// The file is parsed whole: one bad line (reported with its line number) rejects the whole file
// and the last good set stays, because a half-applied file would silently drop endpoints. A
// missing or unreadable file or one larger than max_bytes is an error of the same kind; an empty
// file (or only comments) is a valid empty set.
//
// Changes are seen through inotify on the file's directory, so replacing the file by rename (what
// editors, `mv` and configuration tools do, and Kubernetes' ..data symlink swap) is noticed as well
// as a write in place (on close). Events are coalesced for `settle` before the file is read, and
// the set is published only when the content changed. The file is also read every poll_interval,
// which covers file systems without inotify (NFS, FUSE), a symlink to another directory, and the
// case where inotify cannot be set up (then poll_interval is the only trigger; a warning says so).
// A read is a plain read of a local file of at most max_bytes on the executor.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/asio.h"
#include "discovery/provider.h"

namespace proxer::discovery {

struct FileOptions {
  std::string path;                                 // the endpoints file (required)
  std::chrono::milliseconds settle{50};             // coalesces a burst of change events
  std::chrono::milliseconds poll_interval{10'000};  // safety net and fallback
  std::size_t max_bytes = 1u << 20;                 // a larger file is an error
};

// "" when the options are usable, else the first problem ("file: path is empty").
std::string validate(const FileOptions& opts);

// Parses the file format above. On success returns the targets (not yet normalised); on failure
// nullopt and `*error` = "line N: reason".
std::optional<std::vector<Target>> parse_endpoints_file(std::string_view text, std::string* error);

class FileProvider final : public Provider {
 public:
  // Throws std::invalid_argument with validate()'s message for unusable options.
  FileProvider(net::any_io_executor ex, FileOptions opts);
  ~FileProvider() override;
  void start(OnUpdate on_update) override;
  void stop() override;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace proxer::discovery
