#include "proxy/member_health.h"

#include <algorithm>

namespace proxer::proxy {

HealthTracker::Transition MemberHealth::record(std::uint64_t id, std::string_view name, bool passed,
                                               std::string_view reason) {
  const auto it = std::ranges::find(members_, id, &Member::id);
  Member& m = it != members_.end()
                  ? *it
                  : members_.emplace_back(id, std::string(name),
                                          HealthTracker(healthy_threshold_, unhealthy_threshold_));
  const auto t = m.health.record(passed);
  if (!passed) {
    m.last_failure = reason;
  } else if (m.health.healthy()) {
    m.last_failure.clear();
  }
  return t;
}

std::size_t MemberHealth::retain(std::span<const std::uint64_t> ids) {
  return std::erase_if(members_, [ids](const Member& m) {
    return std::find(ids.begin(), ids.end(), m.id) == ids.end();
  });
}

}  // namespace proxer::proxy
