#include "proxy/member_health.h"

#include <algorithm>

namespace proxer::proxy {

HealthTracker::Transition MemberHealth::record(std::uint64_t id, std::string_view name, bool passed,
                                               std::string_view reason) {
  auto it =
      std::find_if(members_.begin(), members_.end(), [id](const Member& m) { return m.id == id; });
  if (it == members_.end()) {
    members_.emplace_back(id, std::string(name),
                          HealthTracker(healthy_threshold_, unhealthy_threshold_));
    it = members_.end() - 1;
  }
  const auto t = it->health.record(passed);
  if (!passed) {
    it->last_failure = reason;
  } else if (it->health.healthy()) {
    it->last_failure.clear();
  }
  return t;
}

std::size_t MemberHealth::retain(std::span<const std::uint64_t> ids) {
  return std::erase_if(members_, [ids](const Member& m) {
    return std::find(ids.begin(), ids.end(), m.id) == ids.end();
  });
}

const MemberHealth::Member* MemberHealth::find(std::uint64_t id) const {
  for (const auto& m : members_) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

}  // namespace proxer::proxy
