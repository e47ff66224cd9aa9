#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <exception>

#include "core/asio.h"

namespace proxer::log {

namespace {
// The pattern is configuration of the process's output, set once at start-up.
const char* pattern(bool json) {
  return json ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n","msg":"%v"})"
              : "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v";
}
}  // namespace

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_level(spdlog::get_level());
  return logger;
}

bool set_level(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return false;
  spdlog::set_level(lvl);
  return true;
}

void set_json(bool json) {
  spdlog::set_pattern(pattern(json));
}

}  // namespace proxer::log

namespace proxer {
void log_coroutine_exception(std::exception_ptr e, const char* what) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::get("core")->error("task '{}' failed: {}", what, ex.what());
  } catch (...) {
    log::get("core")->error("task '{}' failed with an unknown exception", what);
  }
}
}  // namespace proxer
