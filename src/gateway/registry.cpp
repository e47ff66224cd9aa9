#include "gateway/registry.h"

#include <algorithm>

#include "gateway/agent_conn.h"
#include "gateway/tcp_tunnels.h"
#include "proxy/member.h"

namespace proxer::gateway {

namespace {

bool live(const Tunnel& t) {
  return t.session && !t.session->closed();
}

// The agent's own member, which a new registration replaces (a reconnect, a carrier switch).
bool own(const Tunnel& member, const Tunnel& t) {
  return member.agent_id == t.agent_id || (t.session && member.session == t.session);
}

const char* type_name(proto::TunnelType type) {
  return type == proto::TunnelType::Tcp ? "TCP" : "HTTP";
}

}  // namespace

bool usable(const Tunnel& t) {
  return t.healthy && t.session && !t.session->closed() && !t.session->going_away();
}

bool is_pool(const TunnelPool& p) {
  return std::any_of(p.members.begin(), p.members.end(), [](const auto& m) { return m->pool; });
}

std::shared_ptr<Tunnel> Registry::find(std::string_view name) const {
  const auto* p = pool(name);
  return p && !p->members.empty() ? p->members.front() : nullptr;
}

const TunnelPool* Registry::pool(std::string_view name) const {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : &it->second;
}

std::shared_ptr<Tunnel> Registry::member(std::string_view name,
                                         const tunnel::Session* session) const {
  if (const auto* p = pool(name)) {
    for (const auto& m : p->members) {
      if (m->session.get() == session) return m;
    }
  }
  return nullptr;
}

std::shared_ptr<Tunnel> Registry::pick(std::string_view name, proxy::Lb lb, std::uint64_t key,
                                       const proxy::MemberHealth* checks) {
  auto it = pools_.find(name);
  if (it == pools_.end()) return nullptr;
  auto& p = it->second;
  if (p.members.size() == 1) {  // the common case: no pool
    return usable(*p.members.front(), checks) ? p.members.front() : nullptr;
  }
  std::vector<proxy::Member> view(p.members.size());
  for (std::size_t i = 0; i < view.size(); ++i) {
    const auto& m = *p.members[i];
    view[i] = {usable(m, checks), m.active, proxy::hash64(m.agent_id)};
  }
  if (lb == proxy::Lb::Random) key = rng_();
  const auto i = proxy::pick_member(view, lb, key, p.cursor);
  return i ? p.members[*i] : nullptr;
}

bool Registry::has_usable(std::string_view name, proto::TunnelType type,
                          const proxy::MemberHealth* checks) const {
  if (const auto* p = pool(name)) {
    for (const auto& m : p->members) {
      if (m->type == type && usable(*m, checks)) return true;
    }
  }
  return false;
}

bool Registry::can_add(const Tunnel& t, std::string* error) const {
  const auto* p = pool(t.name);
  if (!p) return true;
  for (const auto& m : p->members) {
    // The agent's own member is replaced, and one whose session ended is dropped; every other
    // member stays, so the newcomer must be able to share the name with it.
    if (own(*m, t) || !live(*m)) continue;
    const std::string held =
        "tunnel '" + t.name + "' is already served by agent '" + m->agent_id + "'";
    if (!m->pool) {
      *error = held + " without pool = true";
      return false;
    }
    if (!t.pool) {
      *error = held + " as a pool: set pool = true on this tunnel to join it";
      return false;
    }
    if (m->type != t.type) {
      *error = held + " as a " + type_name(m->type) + " tunnel; a " + type_name(t.type) +
               " tunnel cannot join its pool";
      return false;
    }
    if (!(m->token == t.token)) {
      *error = held + " with a different per-tunnel token; every member of a pool needs the same";
      return false;
    }
  }
  return true;
}

std::shared_ptr<TcpListener> Registry::shared_listener(const Tunnel& t) const {
  if (const auto* p = pool(t.name)) {
    for (const auto& m : p->members) {
      if (!own(*m, t) && live(*m) && m->tcp) return m->tcp;
    }
  }
  return nullptr;
}

void Registry::retire(TunnelPool& p, std::vector<std::shared_ptr<Tunnel>> gone) {
  for (auto& g : gone) {
    // Its pooled streams lead to a session that no longer serves the name.
    for (auto& s : g->idle) s.stream->reset(proto::ErrorCode::Cancelled);
    g->idle.clear();
    if (!g->tcp) continue;
    const bool shared = std::any_of(p.members.begin(), p.members.end(),
                                    [&](const auto& m) { return m->tcp == g->tcp; });
    if (!shared) g->tcp->stop();
  }
}

bool Registry::add(std::shared_ptr<Tunnel> t, std::string* error) {
  if (!can_add(*t, error)) return false;
  if (t->id == 0) t->id = ++last_id_;
  auto& p = pools_[t->name];
  p.name = t->name;
  std::vector<std::shared_ptr<Tunnel>> gone;
  std::erase_if(p.members, [&](const std::shared_ptr<Tunnel>& m) {
    if (m == t || !(own(*m, *t) || !live(*m))) return false;
    gone.push_back(m);
    return true;
  });
  if (std::find(p.members.begin(), p.members.end(), t) == p.members.end()) {
    p.members.push_back(std::move(t));
  }
  retire(p, std::move(gone));
  return true;
}

void Registry::remove(std::string_view name, const tunnel::Session* session) {
  auto it = pools_.find(name);
  if (it == pools_.end()) return;
  auto& p = it->second;
  std::vector<std::shared_ptr<Tunnel>> gone;
  std::erase_if(p.members, [&](const std::shared_ptr<Tunnel>& m) {
    if (m->session.get() != session) return false;
    gone.push_back(m);
    return true;
  });
  retire(p, std::move(gone));
  if (p.members.empty()) pools_.erase(it);
}

std::vector<std::shared_ptr<Tunnel>> Registry::all() const {
  std::vector<std::shared_ptr<Tunnel>> out;
  for (const auto* p : pools()) out.insert(out.end(), p->members.begin(), p->members.end());
  return out;
}

std::vector<const TunnelPool*> Registry::pools() const {
  std::vector<const TunnelPool*> out;
  out.reserve(pools_.size());
  for (const auto& [name, p] : pools_) out.push_back(&p);
  std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  return out;
}

std::shared_ptr<AgentConn> Registry::agent(std::string_view id) const {
  auto it = agents_.find(std::string(id));
  return it == agents_.end() ? nullptr : it->second.lock();
}

void Registry::set_agent(const std::string& id, std::shared_ptr<AgentConn> conn) {
  agents_[id] = conn;
}

void Registry::remove_agent(const std::string& id, const AgentConn* conn) {
  auto it = agents_.find(id);
  if (it == agents_.end()) return;
  auto cur = it->second.lock();
  if (!cur || cur.get() == conn) agents_.erase(it);
}

std::vector<std::shared_ptr<AgentConn>> Registry::agents() const {
  std::vector<std::shared_ptr<AgentConn>> out;
  for (const auto& [id, w] : agents_) {
    if (auto a = w.lock()) out.push_back(a);
  }
  return out;
}

std::shared_ptr<tunnel::Stream> take_idle_stream(Tunnel& t) {
  while (!t.idle.empty()) {
    auto s = std::move(t.idle.back().stream);
    t.idle.pop_back();
    if (s->reusable()) return s;
    s->reset(proto::ErrorCode::Cancelled);
  }
  return nullptr;
}

void give_back_stream(Tunnel& t, std::shared_ptr<tunnel::Stream> s, std::size_t max_idle) {
  if (!s->reusable() || t.idle.size() >= max_idle || !t.session || t.session->closed()) {
    s->reset(proto::ErrorCode::Cancelled);
    return;
  }
  t.idle.push_back({std::move(s), std::chrono::steady_clock::now()});
}

void expire_idle_streams(Tunnel& t, std::chrono::milliseconds max_idle_time) {
  const auto cutoff = std::chrono::steady_clock::now() - max_idle_time;
  std::erase_if(t.idle, [cutoff](Tunnel::IdleStream& e) {
    if (e.since >= cutoff && e.stream->reusable()) return false;
    e.stream->reset(proto::ErrorCode::Cancelled);
    return true;
  });
}

}  // namespace proxer::gateway
