#pragma once
// Which member of a tunnel pool (several agents serving one tunnel name) takes a request or a
// connection. Pure logic, no I/O, like the cluster Balancer; but members come and go with their
// agents, so this keeps no per-member state: the caller says which members are usable and how
// busy each is, and keeps the pool's cursor.
//
//   round_robin, weighted  in turn among the usable members (members have no weights)
//   least_request          fewest requests in flight; a tie goes to the first one at or after
//                          the cursor, so an idle pool is served in turn
//   random                 `key` is the caller's random draw: key modulo the usable members
//   ip_hash, ring_hash     rendezvous hashing of `key` with each member's id: a key stays on
//                          its member while that member is usable; when it leaves, only its
//                          keys move (to the other members, spread evenly)
#include <cstdint>
#include <optional>
#include <span>

#include "proxy/balancer.h"

namespace proxer::proxy {

struct Member {
  bool usable = true;        // connected, not leaving, healthy by its agent's checks
  std::uint32_t active = 0;  // requests in flight
  std::uint64_t id = 0;      // hash64 of a stable identity (the agent id): places hashed keys
};

// An index into `m` among the usable members, or nullopt when none is. `cursor` is the pool's
// rotation state (round robin, least_request ties), advanced past the pick.
std::optional<std::size_t> pick_member(std::span<const Member> m, Lb lb, std::uint64_t key,
                                       std::size_t& cursor);

}  // namespace proxer::proxy
