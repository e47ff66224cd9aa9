#pragma once
// Active health checks of a pooled tunnel endpoint, member by member: the decision half. A cluster
// endpoint `tunnel:NAME` whose tunnel is served by a pool of agents is one endpoint to the
// cluster's balancer, but the gateway's checker probes every member of the pool on each interval,
// as a host of its own, and feeds each outcome here. A member the checks find unhealthy gets no
// requests through this endpoint; the other members keep serving.
//
//   - one HealthTracker per member, with the cluster's thresholds (the same hysteresis as an
//     endpoint), keyed by the member's id: the gateway's registry numbers every registration, so
//     an agent that reconnects is a new member and starts afresh;
//   - a member the checks have not seen yet is healthy, as a new endpoint starts healthy (traffic
//     flows before its first check has finished);
//   - retain() drops the state of members that left the pool;
//   - the endpoint's own verdict is the caller's to derive: healthy while a member that can take
//     requests is not excluded here.
// Pure logic, no clock, no I/O. Per (cluster endpoint, member): two clusters that reference the
// same tunnel with different checks each keep their own.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/health.h"

namespace proxer::proxy {

class MemberHealth {
 public:
  struct Member {
    Member(std::uint64_t i, std::string n, HealthTracker h)
        : id(i), name(std::move(n)), health(h) {}
    std::uint64_t id = 0;
    std::string name;  // the member's agent id, for logs and the admin API
    HealthTracker health;
    // Why its last check failed; cleared by a pass after which it is healthy.
    std::string last_failure;
  };

  explicit MemberHealth(const config::HealthCheckConfig& cfg)
      : MemberHealth(cfg.healthy_threshold, cfg.unhealthy_threshold) {}
  MemberHealth(std::uint32_t healthy_threshold, std::uint32_t unhealthy_threshold)
      : healthy_threshold_(healthy_threshold), unhealthy_threshold_(unhealthy_threshold) {}

  // One check's outcome for member `id` (`name`: its agent id; `reason`: why it failed). A
  // member not seen yet is added first, healthy.
  HealthTracker::Transition record(std::uint64_t id, std::string_view name, bool passed,
                                   std::string_view reason = {});
  // Keeps the state of the members in `ids` only (the pool's members now): a member that left
  // drops its state. Returns how many were dropped.
  std::size_t retain(std::span<const std::uint64_t> ids);
  // Whether the checks keep member `id` out of the endpoint's rotation: seen, and unhealthy.
  bool excluded(std::uint64_t id) const {
    const auto* m = find(id);
    return m && !m->health.healthy();
  }
  // The state of member `id`, or nullptr when the checks have not seen it.
  const Member* find(std::uint64_t id) const {
    const auto it = std::ranges::find(members_, id, &Member::id);
    return it == members_.end() ? nullptr : &*it;
  }
  // In the order first seen.
  const std::vector<Member>& members() const { return members_; }
  bool empty() const { return members_.empty(); }
  void clear() { members_.clear(); }

 private:
  std::uint32_t healthy_threshold_;
  std::uint32_t unhealthy_threshold_;
  std::vector<Member> members_;
};

}  // namespace proxer::proxy
