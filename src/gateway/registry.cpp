#include "gateway/registry.h"

#include "gateway/agent_conn.h"
#include "gateway/tcp_tunnels.h"

namespace proxer::gateway {

std::shared_ptr<Tunnel> Registry::find(std::string_view name) const {
  auto it = tunnels_.find(std::string(name));
  return it == tunnels_.end() ? nullptr : it->second;
}

bool Registry::can_add(const Tunnel& t, std::string* error) const {
  auto it = tunnels_.find(t.name);
  if (it == tunnels_.end()) return true;
  const auto& old = it->second;
  const bool live = old->session && !old->session->closed();
  // The same agent may move a tunnel to its new session (a carrier switch); anyone else waits
  // until the holder's session ends.
  if (live && old->session != t.session && old->agent_id != t.agent_id) {
    *error = "tunnel name '" + t.name + "' is already served by agent '" + old->agent_id + "'";
    return false;
  }
  return true;
}

bool Registry::add(std::shared_ptr<Tunnel> t, std::string* error) {
  if (!can_add(*t, error)) return false;
  auto& slot = tunnels_[t->name];
  if (slot && slot != t) {
    // The previous holder's pooled streams lead to a session that no longer serves the name.
    for (auto& s : slot->idle) s.stream->reset(proto::ErrorCode::Cancelled);
    slot->idle.clear();
    if (slot->tcp) slot->tcp->stop();
  }
  slot = std::move(t);
  return true;
}

void Registry::remove(std::string_view name, const tunnel::Session* session) {
  auto it = tunnels_.find(std::string(name));
  if (it == tunnels_.end() || it->second->session.get() != session) return;
  for (auto& s : it->second->idle) s.stream->reset(proto::ErrorCode::Cancelled);
  it->second->idle.clear();
  if (it->second->tcp) it->second->tcp->stop();
  tunnels_.erase(it);
}

std::vector<std::shared_ptr<Tunnel>> Registry::all() const {
  std::vector<std::shared_ptr<Tunnel>> out;
  out.reserve(tunnels_.size());
  for (const auto& [name, t] : tunnels_) out.push_back(t);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
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
