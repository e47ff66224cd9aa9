#pragma once
// The agent: dials the gateway (TCP or TLS), authenticates, registers its tunnels, heartbeats,
// and pipes every stream the gateway opens to the tunnel's local target. After any failure it
// reconnects with capped exponential backoff and jitter. It never parses HTTP.
#include <functional>
#include <memory>

#include "config/config.h"
#include "core/asio.h"
#include "core/event.h"
#include "tunnel/session.h"

namespace proxer::agent {

enum class State { Connecting, Authenticating, Connected, Disconnected, Stopped };
std::string_view to_string(State s);

class Agent : public tunnel::SessionHandler, public std::enable_shared_from_this<Agent> {
 public:
  Agent(net::any_io_executor ex, config::AgentConfig cfg);

  // Called for each REGISTER_TUNNEL reply (e.g. to print public URLs).
  void on_registered(std::function<void(const proto::RegisterResult&)> cb) {
    on_registered_ = std::move(cb);
  }
  // Called when authentication is refused by the gateway (the agent keeps retrying).
  void on_auth_failed(std::function<void(const std::string&)> cb) {
    on_auth_failed_ = std::move(cb);
  }

  void start();
  // Sends GOAWAY, waits briefly for open streams, closes. `done` runs when stopped.
  void stop(std::function<void()> done);
  State state() const { return state_; }

  // tunnel::SessionHandler
  void on_control(tunnel::Session& s, const proto::FrameHeader& h, proto::Bytes payload) override;
  void on_open(tunnel::Session& s, std::shared_ptr<tunnel::Stream> stream,
               proto::OpenStream open) override;
  void on_closed(tunnel::Session& s, const std::string& reason) override;

 private:
  awaitable<void> run();
  awaitable<std::string> connect_once();                         // returns why the session ended
  awaitable<std::string> run_session(const std::string& where);  // auth, register, serve
  awaitable<void> serve_stream(std::shared_ptr<tunnel::Stream> stream, proto::OpenStream open);
  void set_state(State s);

  net::any_io_executor ex_;
  config::AgentConfig cfg_;
  std::shared_ptr<transport::ssl::context> tls_;
  std::optional<transport::HttpProxy> proxy_;
  std::shared_ptr<tunnel::Session> session_;
  Event event_;
  State state_ = State::Disconnected;
  std::optional<proto::AuthResponse> auth_;
  std::string closed_reason_;
  bool session_closed_ = false;
  bool stopping_ = false;
  bool auth_refused_ = false;
  std::size_t registered_ = 0;
  std::function<void(const proto::RegisterResult&)> on_registered_;
  std::function<void(const std::string&)> on_auth_failed_;
  net::steady_timer sleep_timer_;
};

}  // namespace proxer::agent
