#pragma once
// The gateway's side of one agent session: authenticates the agent, registers its tunnels,
// and removes them when the session ends.
#include <memory>
#include <string>
#include <vector>

#include "gateway/context.h"
#include "transport/stream.h"
#include "tunnel/session.h"

namespace proxer::gateway {

class AgentConn : public tunnel::SessionHandler, public std::enable_shared_from_this<AgentConn> {
 public:
  AgentConn(Context& ctx, std::shared_ptr<tunnel::Session> session, std::string session_id = {});

  // Runs the protocol over an accepted agent connection (any carrier): builds the session with
  // the gateway's settings and starts authentication. `session_id` is the id already told to
  // the agent (WebSocket carriers send it in the 101), else one is drawn at authentication.
  static void start_session(Context& ctx, transport::Stream io, std::string session_id = {});
  // A fresh random connection id (16 hex digits).
  static std::string new_id();
  // Public URLs of HTTP tunnel `name`: by Host and by /t/{name}/.
  static std::vector<std::string> http_urls(const Context& ctx, const std::string& name);

  // Starts the session and the authentication deadline.
  void start();

  const std::string& agent_id() const { return agent_id_; }
  const std::string& session_id() const { return session_id_; }
  const std::shared_ptr<tunnel::Session>& session() const { return session_; }
  const std::vector<std::string>& tunnels() const { return tunnels_; }
  std::chrono::system_clock::time_point connected_since() const { return since_; }

  // tunnel::SessionHandler
  void on_control(tunnel::Session& s, const proto::FrameHeader& h, proto::Bytes payload) override;
  void on_open(tunnel::Session& s, std::shared_ptr<tunnel::Stream> stream,
               proto::OpenStream open) override;
  void on_closed(tunnel::Session& s, const std::string& reason) override;

 private:
  void on_auth(proto::Bytes payload);
  void on_register(proto::Bytes payload);
  void on_unregister(proto::Bytes payload);
  void on_health(proto::Bytes payload);
  std::vector<std::string> urls_for(const std::string& name) const;
  std::string tcp_url_for(std::uint16_t port) const;

  Context& ctx_;
  std::shared_ptr<tunnel::Session> session_;
  std::string agent_id_;
  std::string session_id_;
  std::vector<std::string> tunnels_;
  std::chrono::system_clock::time_point since_ = std::chrono::system_clock::now();
  net::steady_timer auth_timer_;
  bool authed_ = false;
};

}  // namespace proxer::gateway
