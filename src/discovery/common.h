#pragma once
// Internal to the discovery layer: what every provider does the same way.
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "discovery/provider.h"

namespace proxer::discovery {

// Logs a warning once per distinct error and the recovery once (logger "discovery").
class Health {
 public:
  explicit Health(std::string what);  // "dns web.internal", "etcd /services/web/", ...
  void fail(const std::string& error);
  void ok();
  bool failing() const { return failing_; }
  const std::string& what() const { return what_; }
  spdlog::logger& log() { return *log_; }

 private:
  std::shared_ptr<spdlog::logger> log_;
  std::string what_;
  std::string error_;
  bool failing_ = false;
};

// Holds the last published set and calls the callback when a new one differs (the first one is
// always published).
class Publisher {
 public:
  void set(OnUpdate cb) { on_update_ = std::move(cb); }
  void clear() { on_update_ = nullptr; }
  // Normalises `set` and reports it when it changed. Returns whether it changed.
  bool publish(std::vector<Target> set);
  const std::optional<std::vector<Target>>& last() const { return last_; }

 private:
  OnUpdate on_update_;
  std::optional<std::vector<Target>> last_;
};

}  // namespace proxer::discovery
