// proxer::Engine (include/proxer/engine.h): a Gateway on a thread of its own, fed through internal
// connections (how it works: docs/ARCHITECTURE.md, "The embeddable engine").
#include "proxer/engine.h"

#include <toml++/toml.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <mutex>
#include <optional>
#include <thread>

#include "config/config.h"
#include "core/log.h"
#include "embed/exchange.h"
#include "gateway/gateway.h"

namespace proxer {

static_assert(std::string_view(PROXER_VERSION_STRING) == PROXER_PROJECT_VERSION,
              "include/proxer/version.h disagrees with the project version in CMakeLists.txt");

const char* version() noexcept {
  return PROXER_VERSION_STRING;
}

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static const auto l = log::get("engine");  // NOLINT: immutable after first use
  return l;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out.push_back('\n');
    out += l;
  }
  return out;
}

// The configuration of `toml` (loaded, then validated as the CLI does with a file), or every
// error.
config::Loaded<config::GatewayConfig> load(std::string_view toml, const std::string& source) {
  auto loaded = config::load_gateway_toml(toml, source);
  if (!loaded.value) return loaded;
  auto errors = config::validate(*loaded.value);
  if (!errors.empty()) {
    loaded.value.reset();
    loaded.errors = std::move(errors);
  }
  return loaded;
}

// The listeners the text sets (the engine opens no other).
gateway::Gateway::Listeners listeners_of(std::string_view toml) {
  gateway::Gateway::Listeners l{false, false, false};
  try {
    const auto t = toml::parse(toml);
    l.public_http = t.contains("listen");
    l.agent = t.contains("agent_listen");
    l.admin = t.contains("admin_listen");
  } catch (const std::exception&) {
    // load() already reported the syntax error
  }
  return l;
}

// EngineOptions::timeout when 0: the longest response-head deadline plus the idle timeout (the
// body's time to flow).
std::chrono::milliseconds exchange_timeout(const EngineOptions& o,
                                           const config::GatewayConfig& cfg) {
  if (o.timeout.count() > 0) return o.timeout;
  auto head = cfg.request_timeout;
  for (const auto& r : cfg.routes) head = std::max(head, r.timeout);
  return head + cfg.idle_timeout;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

const std::string* Response::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() &&
        std::equal(h.name.begin(), h.name.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return &h.value;
    }
  }
  return nullptr;
}

bool set_log_level(std::string_view level) {
  return log::set_level(std::string(level));
}

// io_context whose shutdown() (destroys every pending handler and coroutine frame) can be called
// while the Gateway those frames point into is still alive.
class Loop : public net::io_context {
 public:
  Loop() : net::io_context(1) {}
  using net::io_context::shutdown;
};

struct Engine::Impl {
  enum class State { Created, Running, Stopped };

  explicit Impl(EngineOptions o) : opts(std::move(o)) {}
  ~Impl() {
    // Frames still queued (only after a forced stop) are destroyed while the gateway they refer
    // to exists; then the gateway, whose sockets need the loop's services; then the loop.
    loop.shutdown();
    pool.reset();
    gw.reset();
  }

  // The matcher for matches(), from the gateway's current route table (engine thread, or before
  // start).
  void publish_routes(bool lock_held) {
    auto router = std::make_shared<const proxy::Router>(gw->context().routes->router.routes());
    std::unique_lock lock(mu, std::defer_lock);
    if (!lock_held) lock.lock();
    routes = std::move(router);
  }

  EngineOptions opts;
  gateway::Gateway::Listeners listeners;
  Loop loop;
  std::unique_ptr<gateway::Gateway> gw;
  embed::ExchangeLimits limits;           // engine thread (or before start)
  std::shared_ptr<embed::ConnPool> pool;  // idle internal connections (engine thread)
  std::thread thread;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;

  mutable std::mutex mu;  // state, routes
  State state = State::Created;
  std::shared_ptr<const proxy::Router> routes;

  std::atomic<std::uint16_t> agent_port{0}, admin_port{0}, public_port{0};
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  stop();
}

std::unique_ptr<Engine> Engine::create(std::string_view toml, EngineOptions options) {
  auto loaded = load(toml, options.source_name);
  if (!loaded.value) throw ConfigError(std::move(loaded.errors));
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->listeners = listeners_of(toml);
  impl->limits = {impl->opts.max_response_head, impl->opts.max_response_body,
                  exchange_timeout(impl->opts, *loaded.value)};
  try {
    impl->gw = std::make_unique<gateway::Gateway>(impl->loop.get_executor(), *loaded.value);
  } catch (const std::exception& e) {  // a cluster that cannot be built (its CA file)
    throw ConfigError({e.what()});
  }
  impl->pool = std::make_shared<embed::ConnPool>(impl->opts.max_idle_connections);
  impl->publish_routes(false);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

void Engine::start() {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  if (m.state != Impl::State::Created) {
    throw std::logic_error("proxer::Engine::start: the engine was already started");
  }
  if (auto err = m.gw->bind(m.listeners); !err.empty()) {
    m.state = Impl::State::Stopped;
    throw std::runtime_error(err);
  }
  m.gw->start();  // queues its tasks on the loop; nothing runs before the thread below
  if (m.listeners.agent) m.agent_port = m.gw->agent_port();
  if (m.listeners.admin) m.admin_port = m.gw->admin_port();
  if (m.listeners.public_http) m.public_port = m.gw->public_port();
  m.work.emplace(m.loop.get_executor());
  m.thread = std::thread([&m] {
    for (;;) {
      try {
        m.loop.run();
        return;
      } catch (const std::exception& e) {  // a bug: handlers and tasks do not throw
        logger()->error("engine loop: {}", e.what());
      }
    }
  });
  m.state = Impl::State::Running;
}

void Engine::stop() {
  auto& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (m.state != Impl::State::Running) {
      m.state = Impl::State::Stopped;
      return;
    }
    m.state = Impl::State::Stopped;  // handle() answers 503 from here on
  }
  const auto grace = m.gw->context().cfg.shutdown_grace;
  auto drained = std::make_shared<std::promise<void>>();
  auto drained_future = drained->get_future();
  net::post(m.loop, [&m, drained] {
    m.pool->close();  // the gateway's sides of the idle connections see EOF and end
    m.gw->shutdown([&m, drained] {
      m.work.reset();  // the loop ends once the last task finished
      drained->set_value();
    });
  });
  // The gateway bounds its drain by shutdown_grace; these bounds only guard against a bug.
  if (drained_future.wait_for(grace + std::chrono::seconds(5)) != std::future_status::ready) {
    logger()->error("engine stop: the gateway did not finish draining; stopping its loop");
  }
  // Tasks the shutdown ended (connections, sessions) unwind in a few turns of the loop.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!m.loop.stopped() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!m.loop.stopped()) {
    logger()->debug("engine stop: tasks still pending after the drain; stopping the loop");
    m.loop.stop();
  }
  m.thread.join();
  m.agent_port = 0;
  m.admin_port = 0;
  m.public_port = 0;
}

bool Engine::running() const {
  std::lock_guard lock(impl_->mu);
  return impl_->state == Impl::State::Running;
}

bool Engine::matches(const Request& request) const {
  std::shared_ptr<const proxy::Router> router;
  {
    std::lock_guard lock(impl_->mu);
    router = impl_->routes;
  }
  const auto head = embed::match_head(request);
  return router->match(head) != nullptr;
}

void Engine::handle(Request request, std::function<void(Response)> done) {
  auto& m = *impl_;
  bool stopped = false;
  {
    std::lock_guard lock(m.mu);
    if (m.state == Impl::State::Running) {
      embed::spawn_exchange(*m.gw, m.limits, *m.pool, std::move(request), std::move(done));
      return;
    }
    stopped = m.state == Impl::State::Stopped;
  }
  embed::Reply reply(std::move(done));
  reply(embed::error_response(
      503, stopped ? "engine_stopped" : "engine_not_running",
      stopped ? "the proxer engine is stopped" : "the proxer engine has not been started"));
}

std::future<Response> Engine::handle(Request request) {
  auto promise = std::make_shared<std::promise<Response>>();
  auto future = promise->get_future();
  handle(std::move(request), [promise](Response r) { promise->set_value(std::move(r)); });
  return future;
}

std::string Engine::reload(std::string_view toml) {
  auto& m = *impl_;
  auto loaded = load(toml, m.opts.source_name);
  if (!loaded.value) return join_lines(loaded.errors);
  auto cfg = std::make_shared<config::GatewayConfig>(std::move(*loaded.value));
  // Runs on the engine's thread (or, before start, on this one under the lock).
  auto apply = [&m, cfg](bool lock_held) -> std::string {
    auto err = m.gw->reload(*cfg);
    if (!err.empty()) return err;
    m.limits.timeout = exchange_timeout(m.opts, *cfg);
    m.publish_routes(lock_held);
    return {};
  };
  std::future<std::string> result;
  {
    std::lock_guard lock(m.mu);
    if (m.state == Impl::State::Stopped) return "the proxer engine is stopped";
    // Not started: no loop thread; the lock keeps start() and other reloads out meanwhile.
    if (m.state == Impl::State::Created) return apply(true);
    auto task =
        std::make_shared<std::packaged_task<std::string()>>([apply] { return apply(false); });
    result = task->get_future();
    net::post(m.loop, [task] { (*task)(); });
  }
  try {
    return result.get();
  } catch (const std::future_error&) {  // the loop stopped before the task ran
    return "the proxer engine stopped before the reload was applied";
  }
}

std::uint16_t Engine::agent_port() const {
  return impl_->agent_port;
}
std::uint16_t Engine::admin_port() const {
  return impl_->admin_port;
}
std::uint16_t Engine::public_port() const {
  return impl_->public_port;
}

}  // namespace proxer
