#pragma once
// Tunnel registry: tunnel name -> its pool of members. A member is one agent session serving the
// name, with its per-tunnel token, its idle streams (keep-alive over the tunnel), its counters
// and the health its agent reports. A name has one member unless its agents opted in to share
// it (pool = true): then requests and TCP connections are spread over the usable members.
// Single-threaded: owned by the gateway's executor.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/secret.h"
#include "proto/control.h"
#include "proxy/balancer.h"
#include "proxy/member_health.h"
#include "tunnel/session.h"

namespace proxer::gateway {

class AgentConn;
class TcpListener;

struct TunnelStats {
  std::uint64_t request_count = 0;
  std::uint64_t error_count = 0;  // proxer-generated errors and 5xx from the local service
  std::uint64_t bytes_in = 0;     // request bytes from public clients (head + body)
  std::uint64_t bytes_out = 0;    // response bytes to public clients (head + body)
  std::uint64_t latency_us_total = 0;
  unsigned last_status = 0;
};

// One member of a tunnel name's pool: one agent session serving it.
struct Tunnel {
  // The registry's number for this member, unique for the registry's life (Registry::add sets
  // it): state kept about a member elsewhere (a cluster's active checks) is keyed by it, so an
  // agent that registers again is a new member and never inherits its old one's verdicts.
  std::uint64_t id = 0;
  std::string name;
  proto::TunnelType type = proto::TunnelType::Http;
  std::string local_target;
  Secret token;  // per-tunnel token; empty = public (the same for every member of a pool)
  std::string agent_id;
  bool pool = false;  // registered with pool = true (may share the name)
  std::weak_ptr<AgentConn> agent;
  std::shared_ptr<tunnel::Session> session;
  std::chrono::system_clock::time_point connected_since;
  struct IdleStream {
    std::shared_ptr<tunnel::Stream> stream;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<IdleStream> idle;  // LIFO pool of reusable streams (most recent at the back)
  TunnelStats stats;
  // Health of the local target as the agent's own checks see it (TUNNEL_HEALTH); healthy until
  // the agent says otherwise. An unhealthy member gets no new requests or connections.
  bool healthy = true;
  std::string health_reason;             // the agent's reason for the last transition
  std::uint64_t health_transitions = 0;  // transitions reported by the agent
  std::uint32_t active = 0;              // requests in flight through this member
  std::shared_ptr<TcpListener> tcp;  // TCP tunnels: the public port's listener (shared by a pool)
  std::uint16_t public_port = 0;     // TCP tunnels: the public port
};

// Whether `t` can take new requests: its session is up and not leaving, and its agent has not
// reported the local target unhealthy.
bool usable(const Tunnel& t);
// The same through a cluster endpoint whose active checks keep their verdict on each member
// (`checks`, nullptr: none): usable, and not excluded by those checks.
inline bool usable(const Tunnel& t, const proxy::MemberHealth* checks) {
  return usable(t) && !(checks && checks->excluded(t.id));
}

// Every member serving one name, in the order they joined.
struct TunnelPool {
  std::string name;
  std::vector<std::shared_ptr<Tunnel>> members;
  std::size_t cursor = 0;  // rotation state of proxy::pick_member
};

// Whether `p`'s members registered as a pool (pool = true), even when one member is left: a
// cluster's active checks then judge each member on its own.
bool is_pool(const TunnelPool& p);

// Counts a request in flight on a member for as long as it lives (least_request reads it).
class MemberLoad {
 public:
  MemberLoad() = default;
  explicit MemberLoad(std::shared_ptr<Tunnel> t) : t_(std::move(t)) {
    if (t_) ++t_->active;
  }
  MemberLoad(MemberLoad&& o) noexcept : t_(std::move(o.t_)) {}
  MemberLoad& operator=(MemberLoad&& o) noexcept {
    if (this != &o) {
      release();
      t_ = std::move(o.t_);
    }
    return *this;
  }
  MemberLoad(const MemberLoad&) = delete;
  MemberLoad& operator=(const MemberLoad&) = delete;
  ~MemberLoad() { release(); }

 private:
  void release() {
    if (t_) --t_->active;
    t_.reset();
  }
  std::shared_ptr<Tunnel> t_;
};

class Registry {
 public:
  explicit Registry(std::uint64_t seed = std::random_device{}()) : rng_(seed) {}

  // The first member serving `name` (usable or not), or nullptr: what the name is (its type and
  // token are the same for every member).
  std::shared_ptr<Tunnel> find(std::string_view name) const;
  const TunnelPool* pool(std::string_view name) const;
  // The member of `name` served by `session`, or nullptr.
  std::shared_ptr<Tunnel> member(std::string_view name, const tunnel::Session* session) const;
  // A usable member of `name` chosen by `lb` (proxy/member.h; `key`: the request's hash key for
  // the hash policies), or nullptr when the name has none. `checks`: a cluster endpoint's
  // per-member verdicts; the members they exclude are not usable for this pick.
  std::shared_ptr<Tunnel> pick(std::string_view name, proxy::Lb lb = proxy::Lb::LeastRequest,
                               std::uint64_t key = 0, const proxy::MemberHealth* checks = nullptr);
  // Whether `name` has a usable member of type `type` (not excluded by `checks`).
  bool has_usable(std::string_view name, proto::TunnelType type,
                  const proxy::MemberHealth* checks = nullptr) const;

  // Adds `t` as a member of its name, numbering it (Tunnel::id) when it has no number yet. The
  // agent's own earlier member (same agent id, or the same
  // session) is replaced, never duplicated; members whose session ended are dropped. A name held
  // by live members of other agents is joined only when `t` and every one of them set pool, the
  // type is the same and the per-tunnel token matches; else it fails with the reason in *error.
  bool add(std::shared_ptr<Tunnel> t, std::string* error);
  // Whether add() would accept `t` (same rules, no change).
  bool can_add(const Tunnel& t, std::string* error) const;
  // TCP pools: the public port's listener `t` would share (that of a live member of another
  // agent), or nullptr when `t` needs its own.
  std::shared_ptr<TcpListener> shared_listener(const Tunnel& t) const;
  // Removes the member of `name` served by `session`; the last member's leaving frees the name
  // (and a TCP pool's port).
  void remove(std::string_view name, const tunnel::Session* session);
  // Every member of every name, by name then join order.
  std::vector<std::shared_ptr<Tunnel>> all() const;
  // Every pool, by name.
  std::vector<const TunnelPool*> pools() const;
  std::size_t size() const { return pools_.size(); }  // names

  // Agents by id (for replacement of stale sessions).
  std::shared_ptr<AgentConn> agent(std::string_view id) const;
  void set_agent(const std::string& id, std::shared_ptr<AgentConn> conn);
  void remove_agent(const std::string& id, const AgentConn* conn);
  std::vector<std::shared_ptr<AgentConn>> agents() const;

 private:
  // Drops `gone` members' idle streams, and stops the listeners no member of `p` uses any more.
  static void retire(TunnelPool& p, std::vector<std::shared_ptr<Tunnel>> gone);

  // Looked up by string_view (no string built per request); node-based: pool() pointers stay
  // valid.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, TunnelPool, NameHash, std::equal_to<>> pools_;
  boost::unordered_flat_map<std::string, std::weak_ptr<AgentConn>> agents_;
  std::mt19937_64 rng_;        // the random policy's draws
  std::uint64_t last_id_ = 0;  // the last Tunnel::id given
};

// Takes an idle stream of `t` that is still reusable, or nullptr.
std::shared_ptr<tunnel::Stream> take_idle_stream(Tunnel& t);
// Returns a stream to the pool (or resets it when the pool is full or the stream unusable).
void give_back_stream(Tunnel& t, std::shared_ptr<tunnel::Stream> s, std::size_t max_idle);
// Resets pooled streams idle for longer than `max_idle_time`, and dead ones.
void expire_idle_streams(Tunnel& t, std::chrono::milliseconds max_idle_time);

}  // namespace proxer::gateway
