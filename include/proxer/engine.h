#pragma once
// proxer as a library: the gateway's reverse-proxy engine inside another program's HTTP server.
//
// This header (with proxer/version.h) is the whole public API. It includes only standard headers;
// link the `proxer::engine` CMake target. Everything else under src/ is internal.
//
// The host program keeps its own HTTP server and hands the engine the requests a configured
// route claims (the middleware pattern):
//
//   auto engine = proxer::Engine::create(toml_text);   // throws proxer::ConfigError
//   engine->start();                                    // listeners + the engine's thread
//   ...
//   if (engine->matches(req)) engine->handle(std::move(req), reply_later);
//   else serve_it_myself(req);
//
// The engine runs the same request path as `proxer gateway`: [[routes]] (host, path, method and
// header matching, prefix rewrites, header changes, timeouts, body limits, retries) and
// [clusters] (balancing, active health checks, outlier ejection, circuit breaking, pooled
// direct connections, tunnel endpoints served by agents), the built-in tunnel routing
// ({name}.{domain}, /t/{name}/) and the admin API's counters.
//
// Threads: the engine runs on one thread of its own, started by start(). create(), start(),
// stop() and the destructor belong to the thread that owns the Engine; matches(), handle(),
// reload() and the port accessors may be called from any thread at any time.
//
// Logging: the engine logs through spdlog loggers named after its components ("gateway",
// "http", "session", ...), created in spdlog's registry on first use with a stderr sink at the
// registry's global level. It never changes the global level or pattern and ignores the [log]
// keys of the configuration; a program that wants other sinks registers loggers of those names
// before start(), and set_log_level() below is the one call that changes the global level.
// The engine installs no signal handlers.
//
// Limitation: handle() buffers whole messages. The request body is handed over whole, and the
// response is read whole into memory before `done` runs: nothing streams in either direction,
// there are no upgrades (Upgrade is removed, so no WebSocket) and no trailers. A response body
// larger than EngineOptions::max_response_body is not delivered at all (502
// response_too_large), and every handle() in flight may hold up to that much memory. Large
// downloads and long-lived responses (server-sent events, long polls) belong on the engine's own
// public listener (`listen` in the configuration), which streams like `proxer gateway`.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "proxer/version.h"

namespace proxer {

struct Header {
  std::string name, value;
  bool operator==(const Header&) const = default;
};

// A request for the engine: what the host's server parsed, with the body read whole.
struct Request {
  std::string method = "GET";
  std::string target = "/";  // origin form (path and query, as received) or "*"; else a 400
  // As received, Host included (routes match on it). Hop-by-hop fields (Connection, Keep-Alive,
  // Upgrade, TE, Trailer, Transfer-Encoding, Proxy-Connection, Expect) and Content-Length are
  // dropped: the engine frames `body` itself. Names must be tokens; a value with a control
  // character other than HTAB (CR, LF, NUL, ...) or DEL makes the request a 400.
  std::vector<Header> headers;
  std::string body;
  // The client as the host saw it: "IP" or "IP:PORT" ("[v6]:PORT"). Goes into X-Forwarded-For /
  // Forwarded and the ip_hash key. Empty: "unknown".
  std::string client_address;
};

// The response, complete. `status` is never 0 once the engine answered: failures on the engine's
// side come back as 5xx responses like the gateway's own (text/plain body, X-Proxer-Error).
struct Response {
  unsigned status = 0;
  // End-to-end fields of the upstream's response (after the route's response_headers changes).
  // Connection, Keep-Alive, Transfer-Encoding and Content-Length are removed: `body` is whole
  // and the host frames it.
  std::vector<Header> headers;
  std::string body;
  // The value of the first field named `name` (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

// A configuration that does not load or validate. what() lists every error, one a line; each
// error starts with its key path (and line:column in the text when it has one).
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const noexcept { return errors_; }

 private:
  std::vector<std::string> errors_;
};

struct EngineOptions {
  // Limits on a response read back from the engine's request path; beyond them the caller gets
  // a 502 (response_too_large). The body is buffered whole (see "Limitation" above).
  std::size_t max_response_head = 64 * 1024;
  std::size_t max_response_body = 64 * 1024 * 1024;
  // Deadline of one handle() from its start to the last body byte; over it the caller gets a 504
  // (engine_timeout). 0 = the longest response-head timeout of the configuration (timeouts.request
  // and every route's timeout) plus timeouts.idle.
  std::chrono::milliseconds timeout{0};
  // handle() reaches the request path over internal connections (socket pairs inside the
  // process), kept open for later handle() calls once a response completed cleanly, as an HTTP
  // client keeps its connections alive. This caps the idle ones: beyond it the one idle longest
  // is closed. A call in flight uses a connection of its own, so with more calls in flight than
  // this, the extra connections close once answered. Each idle connection holds two descriptors,
  // counts in limits.max_connections like a client of the public listener, and may keep the
  // upstream connection of its last request (as any keep-alive client of the gateway). Idle ones
  // close after timeouts.idle and at stop(). 0 = a new connection for every handle().
  std::size_t max_idle_connections = 32;
  // Name used in the configuration's error messages ("engine.toml:3:1: ...").
  std::string source_name = "engine";
};

class Engine {
 public:
  // From a gateway configuration in TOML: the keys of `proxer gateway` (docs/CONFIG.md). The
  // listeners differ: each of `listen` (a public HTTP listener of the engine's own, next to
  // handle()), `agent_listen` (agents and their tunnels) and `admin_listen` (admin API and
  // dashboard) is opened only when the text sets it. [log] and [reload] are ignored (the host owns
  // logging and decides when to reload). Throws ConfigError with every problem found.
  static std::unique_ptr<Engine> create(std::string_view toml, EngineOptions options = {});

  ~Engine();  // stop(), then releases everything
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens the listeners the configuration sets and starts the engine's thread. Throws
  // std::runtime_error naming the address when a listener cannot be opened (the engine is then
  // stopped: nothing runs, handle() answers 503), and std::logic_error when called twice or
  // after stop().
  void start();

  // Graceful stop: no new requests (handle() answers 503 engine_stopped), agents are told to go
  // away, requests in flight finish within timeouts.shutdown_grace and are then cut, listeners
  // close. Blocks until the engine's thread ended (so never call it from a `done` callback).
  // Idempotent.
  void stop();

  bool running() const;

  // Whether a configured [[routes]] entry claims the request (by host, path prefix, method and
  // headers, as the engine would route it). Requests no route claims may still be given to
  // handle(): they get the built-in tunnel routing or a 404.
  bool matches(const Request& request) const;

  // Runs the request through the engine. `done` is called exactly once with the complete
  // response: on the engine's thread; at once on the calling thread when the engine is not
  // running; or, for a request still queued when a forced stop ends the loop, from ~Engine with
  // 503 engine_stopped. It should not block (it holds up the engine's loop); an exception it
  // throws is logged and dropped. Hand the response to your own loop from there.
  void handle(Request request, std::function<void(Response)> done);
  // The same, as a future.
  std::future<Response> handle(Request request);

  // Hot reload: the [[routes]] and [clusters] of `toml` replace the running ones; requests in
  // flight finish on the configuration they started with, and clusters whose settings did not
  // change keep their state (health, ejections, pools). Returns "" when applied, else every error
  // (one a line) and the running configuration stays. Other keys that changed are logged as
  // needing a restart. Works before start() too. Blocks until applied (never call it from a
  // `done` callback).
  std::string reload(std::string_view toml);

  // Ports of the listeners (after start()); 0 when not configured or not started.
  std::uint16_t agent_port() const;
  std::uint16_t admin_port() const;
  std::uint16_t public_port() const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Sets spdlog's global level ("trace", "debug", "info", "warn", "error", "off") — the level of
// every spdlog logger in the process, the engine's included. Returns false for an unknown name.
bool set_log_level(std::string_view level);

}  // namespace proxer
