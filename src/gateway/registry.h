#pragma once
// Tunnel registry: tunnel name -> the agent session serving it, its per-tunnel token, its pool of
// idle streams (keep-alive over the tunnel) and its counters. Single-threaded: owned by the
// gateway's executor.
#include <boost/unordered/unordered_flat_map.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/secret.h"
#include "proto/control.h"
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

struct Tunnel {
  std::string name;
  proto::TunnelType type = proto::TunnelType::Http;
  std::string local_target;
  Secret token;  // per-tunnel token; empty = public
  std::string agent_id;
  std::weak_ptr<AgentConn> agent;
  std::shared_ptr<tunnel::Session> session;
  std::chrono::system_clock::time_point connected_since;
  struct IdleStream {
    std::shared_ptr<tunnel::Stream> stream;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<IdleStream> idle;  // LIFO pool of reusable streams (most recent at the back)
  TunnelStats stats;
  std::shared_ptr<TcpListener> tcp;  // TCP tunnels: the public port's listener
  std::uint16_t public_port = 0;     // TCP tunnels: the public port
};

class Registry {
 public:
  std::shared_ptr<Tunnel> find(std::string_view name) const;
  // Fails (returns false) when `name` is held by a live session of a different agent id.
  bool add(std::shared_ptr<Tunnel> t, std::string* error);
  // Whether add() would accept `t` (same rule, no change).
  bool can_add(const Tunnel& t, std::string* error) const;
  // Removes `name` if it is still served by `session`.
  void remove(std::string_view name, const tunnel::Session* session);
  std::vector<std::shared_ptr<Tunnel>> all() const;
  std::size_t size() const { return tunnels_.size(); }

  // Agents by id (for replacement of stale sessions).
  std::shared_ptr<AgentConn> agent(std::string_view id) const;
  void set_agent(const std::string& id, std::shared_ptr<AgentConn> conn);
  void remove_agent(const std::string& id, const AgentConn* conn);
  std::vector<std::shared_ptr<AgentConn>> agents() const;

 private:
  boost::unordered_flat_map<std::string, std::shared_ptr<Tunnel>> tunnels_;
  boost::unordered_flat_map<std::string, std::weak_ptr<AgentConn>> agents_;
};

// Takes an idle stream of `t` that is still reusable, or nullptr.
std::shared_ptr<tunnel::Stream> take_idle_stream(Tunnel& t);
// Returns a stream to the pool (or resets it when the pool is full or the stream unusable).
void give_back_stream(Tunnel& t, std::shared_ptr<tunnel::Stream> s, std::size_t max_idle);
// Resets pooled streams idle for longer than `max_idle_time`, and dead ones.
void expire_idle_streams(Tunnel& t, std::chrono::milliseconds max_idle_time);

}  // namespace proxer::gateway
