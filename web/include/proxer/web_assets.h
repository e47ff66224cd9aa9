#pragma once
// Static files of the dashboard and the demo site, embedded at build time (cmake/embed.cmake).
#include <span>
#include <string_view>

namespace proxer::web {

struct Asset {
  std::string_view path;  // "/index.html", "/demo/index.html", ...
  std::string_view content_type;
  std::string_view body;
};

// All embedded files, sorted by path.
std::span<const Asset> assets();

// The asset at `path`, or nullptr.
const Asset* find_asset(std::string_view path);

}  // namespace proxer::web
