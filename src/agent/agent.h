#pragma once
// The agent: dials the gateway over one carrier (TCP, TLS, WebSocket or HTTP long-poll),
// authenticates, registers its tunnels, heartbeats, and pipes every stream the gateway opens to
// the tunnel's local target. After any failure it reconnects with capped exponential backoff
// and jitter. It never parses HTTP.
//
// With transport "auto" the carriers form a ladder, best first: TLS, WebSocket over TLS, HTTP
// long-poll over TLS, all on the gateway's one address. A connection attempt walks down the
// ladder until a carrier works (starting with the one that worked last). While on a lower
// carrier, the agent tries the higher ones every `reconnect.climb`; when one works it moves up
// make-before-break: the new session authenticates with `handover`, registers every tunnel
// (the gateway moves each tunnel as its registration arrives), and only then is the old
// session sent GOAWAY and closed once its streams end. A tunnel never stops routing.
//
// A tunnel with [tunnels.health_check] has its local target checked on a timer (a connect, or
// an HTTP request) with hysteresis (proxy::HealthTracker). Each verdict change is logged once
// and sent to the gateway as TUNNEL_HEALTH (when it lists the tunnel_health feature), which
// takes this agent out of the tunnel's rotation while the target is unhealthy. A session that
// registers a tunnel whose target is unhealthy reports that right after the registration.
#include <functional>
#include <memory>
#include <vector>

#include "config/config.h"
#include "core/asio.h"
#include "core/event.h"
#include "proxy/health.h"
#include "tunnel/session.h"

namespace proxer::agent {

enum class State { Connecting, Authenticating, Connected, Disconnected, Stopped };
std::string_view to_string(State s);

class Agent : public tunnel::SessionHandler, public std::enable_shared_from_this<Agent> {
 public:
  Agent(net::any_io_executor ex, config::AgentConfig cfg);

  // Called for each REGISTER_TUNNEL reply (e.g. to print public URLs); not for the
  // re-registrations of a carrier switch, whose URLs are the same.
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
  // The carrier of the current session ("tls", "wss", "poll", ...); empty when there is none.
  std::string carrier() const;

  // tunnel::SessionHandler
  void on_control(tunnel::Session& s, const proto::FrameHeader& h, proto::Bytes payload) override;
  void on_open(tunnel::Session& s, std::shared_ptr<tunnel::Stream> stream,
               proto::OpenStream open) override;
  void on_closed(tunnel::Session& s, const std::string& reason) override;

  // Whether tunnel `name`'s local target passes the agent's health checks (true without checks).
  bool tunnel_healthy(std::string_view name) const;

 private:
  // One way to reach the gateway: a scheme of config (tcp, tls, ws, wss, http, https) and its
  // path (WebSocket path, long-poll prefix), on cfg_'s host and port.
  struct Rung {
    std::string scheme, path;
  };
  // One session with the gateway and what the agent learnt of it.
  struct Link {
    std::shared_ptr<tunnel::Session> session;
    std::size_t rung = 0;
    std::optional<proto::AuthResponse> auth;
    bool closed = false;
    std::string closed_reason;
    bool handover = false;       // opened to replace a live session (climbing)
    std::size_t replies = 0;     // REGISTER_TUNNEL replies received
    std::size_t registered = 0;  // ... of which accepted
  };
  // The agent's checks of one tunnel's local target ([tunnels.health_check]).
  struct Check {
    std::size_t tunnel = 0;  // index in cfg_.tunnels
    proxy::HealthTracker tracker;
    std::string reason;  // the last failed check's reason
  };
  // Checks tunnel `c` every interval until the agent stops.
  awaitable<void> check_loop(std::size_t c);
  // One check; nullopt when it passed, else why it failed.
  awaitable<std::optional<std::string>> probe(const config::TunnelConfig& t);
  // Sends TUNNEL_HEALTH for check `c` on `link` when the gateway takes it.
  void report_health(const std::shared_ptr<Link>& link, const Check& c);

  awaitable<void> run();
  // Dials rung `r` and authenticates; nullptr with *why on failure.
  awaitable<std::shared_ptr<Link>> establish(std::size_t r, bool handover, std::string* why);
  awaitable<std::optional<transport::Stream>> dial(const Rung& rung, std::string* why);
  void send_registrations(const std::shared_ptr<Link>& link);
  // Waits until every tunnel of `link` got its reply; false when the link closed or the connect
  // timeout passed first.
  awaitable<bool> wait_registered(const std::shared_ptr<Link>& link);
  // While the current link is below the top of the ladder: periodically try to move up.
  awaitable<void> climb(std::uint64_t generation);
  // GOAWAY on `old`, then close it once its streams ended (or after the drain timeout).
  awaitable<void> drain(std::shared_ptr<Link> old);
  awaitable<void> serve_stream(std::shared_ptr<tunnel::Stream> stream, proto::OpenStream open);
  std::shared_ptr<Link> link_of(const tunnel::Session& s) const;
  // The scheme of `link`'s rung, for logs ("tls", "wss", "https").
  const std::string& scheme_of(const Link& link) const { return ladder_[link.rung].scheme; }
  void forget(const std::shared_ptr<Link>& link);
  void set_state(State s);

  net::any_io_executor ex_;
  config::AgentConfig cfg_;
  std::vector<Rung> ladder_;
  std::shared_ptr<transport::ssl::context> tls_;
  std::optional<transport::HttpProxy> proxy_;
  std::shared_ptr<Link> current_;             // the session tunnels are registered on
  std::vector<std::shared_ptr<Link>> links_;  // every open session (current, new, draining)
  std::uint64_t generation_ = 0;              // bumped per (re)connection of run()
  Event event_;
  State state_ = State::Disconnected;
  bool stopping_ = false;
  bool auth_refused_ = false;
  std::function<void(const proto::RegisterResult&)> on_registered_;
  std::function<void(const std::string&)> on_auth_failed_;
  net::steady_timer sleep_timer_;
  net::steady_timer climb_timer_;
  std::vector<Check> checks_;
  std::vector<std::shared_ptr<net::steady_timer>> check_timers_;  // one per check; stop() cancels
  bool warned_no_health_feature_ = false;
};

}  // namespace proxer::agent
