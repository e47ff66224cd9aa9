#pragma once
// One spdlog logger per component, created on first use. Logs record state transitions at info;
// per-event detail is debug. Nothing secret is ever formatted into a log line (see Secret).
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace proxer::log {

// Logger for `component` ("gateway", "agent", "session", ...). Thread-safe.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Sets the global level from "trace|debug|info|warn|error|off". Returns false if unknown.
bool set_level(const std::string& level);

// Switches every logger to one JSON object per line (structured logs).
void set_json(bool json);

}  // namespace proxer::log
