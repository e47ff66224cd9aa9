#include "app/cli.h"

#include <openssl/rand.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "agent/agent.h"
#include "app/demo_site.h"
#include "config/config.h"
#include "core/log.h"
#include "gateway/gateway.h"

namespace proxer::app {

namespace {

constexpr const char* kVersion = "0.1.0";

std::string random_hex(std::size_t bytes) {
  std::string out;
  std::vector<unsigned char> b(bytes);
  RAND_bytes(b.data(), static_cast<int>(b.size()));
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : b) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "agent";
  return buf;
}

// A stable default agent id: the same host serving the same tunnels gets the same id, so a
// restarted agent replaces its own stale session instead of colliding with it.
std::string default_agent_id(const config::AgentConfig& cfg) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const auto& t : cfg.tunnels) {
    for (char c : t.name + "\n") h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(h & 0xffffffffu));
  return hostname() + "-" + buf;
}

const char* env_token() {
  const char* t = std::getenv("PROXER_AGENT_TOKEN");
  return t && *t ? t : nullptr;
}

const char* env_first(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const char* v = std::getenv(n);
    if (v && *v) return v;
  }
  return nullptr;
}

// The proxy from the environment, as curl reads it: HTTPS_PROXY (every carrier is a tunnelled
// connection), then ALL_PROXY; none when NO_PROXY names the gateway host ("*", the host, or a
// domain suffix such as ".example.com" or "example.com").
Secret env_proxy(const std::string& gateway_url) {
  const char* p = env_first({"HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"});
  if (!p) return {};
  std::string host = gateway_url;
  if (auto sep = host.find("://"); sep != std::string::npos) host = host.substr(sep + 3);
  host = host.substr(0, host.find('/'));
  std::string h, port;
  if (config::split_host_port(host, h, port)) host = h;
  if (const char* no = env_first({"NO_PROXY", "no_proxy"})) {
    std::string list = no;
    std::size_t start = 0;
    while (start <= list.size()) {
      auto end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string item = list.substr(start, end - start);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (!item.empty() && item.front() == '.') item.erase(0, 1);
      if (item == "*" || (!item.empty() && (host == item || (host.size() > item.size() &&
                                                             host.ends_with("." + item))))) {
        return {};
      }
      start = end + 1;
    }
  }
  return Secret(p);
}

int fail_with(const std::vector<std::string>& errors, const std::string& what) {
  std::fprintf(stderr, "proxer: invalid %s:\n", what.c_str());
  for (const auto& e : errors) std::fprintf(stderr, "  %s\n", e.c_str());
  return 2;
}

bool apply_duration(const std::string& flag, const std::string& value, config::Duration& out,
                    std::vector<std::string>& errors) {
  std::string err;
  auto d = config::parse_duration(value, &err);
  if (!d) {
    errors.push_back(flag + ": " + err);
    return false;
  }
  out = *d;
  return true;
}

void setup_logging(const std::string& level, bool json) {
  log::set_level(level);
  log::set_json(json);
}

// Each command runs one event loop on one thread: the reactor needs no per-descriptor locking.
// The scheduler keeps its lock (the resolver's helper thread posts completions into it), so
// UNSAFE_IO rather than UNSAFE.
constexpr int kLoopHint = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;

// Runs `ioc` until a signal asks to stop: first SIGINT/SIGTERM drains via `stop`, a second one
// exits at once.
void run_until_signal(net::io_context& ioc, std::function<void(std::function<void()>)> stop) {
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  bool stopping = false;
  std::function<void(error_code, int)> on_signal = [&](error_code ec, int sig) {
    if (ec) return;
    if (stopping) {
      log::get("main")->warn("second signal {}: exiting now", sig);
      std::exit(1);
    }
    stopping = true;
    log::get("main")->info("signal {}: shutting down", sig);
    stop([&]() {
      signals.cancel();
      ioc.stop();
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  ioc.run();
}

// ---- gateway ----------------------------------------------------------------------------------

struct GatewayFlags {
  std::string config, listen, agent_listen, admin_listen, domain, token, tls_cert, tls_key,
      public_url, request_timeout, log_level, tcp_ports;
  CLI::App* cmd = nullptr;
  // True when the flag exists on this subcommand and was given.
  bool given(const char* name) const {
    const auto* opt = cmd->get_option_no_throw(name);
    return opt != nullptr && opt->count() > 0;
  }
};

void add_gateway_flags(CLI::App* cmd, GatewayFlags& f, bool full) {
  f.cmd = cmd;
  if (full) {
    cmd->add_option("--config", f.config, "TOML configuration file (flags override it)");
    cmd->add_option("--agent-listen", f.agent_listen, "agent listener address [0.0.0.0:8443]");
    cmd->add_option("--domain", f.domain, "tunnels are served at {name}.DOMAIN [localhost]");
    cmd->add_option("--token", f.token, "agent token (or PROXER_AGENT_TOKEN)");
    cmd->add_option("--tls-cert", f.tls_cert, "PEM certificate chain for the agent listener");
    cmd->add_option("--tls-key", f.tls_key, "PEM private key for the agent listener");
    cmd->add_option("--public-url", f.public_url, "base URL printed to agents");
    cmd->add_option("--request-timeout", f.request_timeout,
                    "wait for a response head through a tunnel [30s]");
    cmd->add_option("--tcp-ports", f.tcp_ports,
                    "public ports for TCP tunnels, MIN-MAX; \"\" = none [10000-10999]");
  }
  cmd->add_option("--listen", f.listen, "public HTTP listener address [0.0.0.0:8080]");
  cmd->add_option("--admin-listen", f.admin_listen, "admin API listener [127.0.0.1:9000]");
  cmd->add_option("--log-level", f.log_level, "trace|debug|info|warn|error|off");
}

std::optional<config::GatewayConfig> build_gateway_config(const GatewayFlags& f,
                                                          config::GatewayConfig base,
                                                          std::vector<std::string>& errors) {
  config::GatewayConfig cfg = std::move(base);
  if (!f.config.empty()) {
    auto loaded = config::load_gateway_file(f.config);
    if (!loaded.value) {
      errors = loaded.errors;
      return std::nullopt;
    }
    cfg = std::move(*loaded.value);
  }
  if (f.given("--listen")) cfg.listen = f.listen;
  if (f.given("--agent-listen")) cfg.agent_listen = f.agent_listen;
  if (f.given("--admin-listen")) cfg.admin_listen = f.admin_listen;
  if (f.given("--domain")) cfg.domain = f.domain;
  if (f.given("--token")) cfg.token = Secret(f.token);
  if (cfg.token.empty() && env_token()) cfg.token = Secret(env_token());
  if (f.given("--tls-cert")) cfg.tls_cert = f.tls_cert;
  if (f.given("--tls-key")) cfg.tls_key = f.tls_key;
  if (f.given("--public-url")) cfg.public_url = f.public_url;
  if (f.given("--log-level")) cfg.log_level = f.log_level;
  if (f.given("--tcp-ports")) cfg.tcp_port_range = f.tcp_ports;
  if (f.given("--request-timeout")) {
    apply_duration("--request-timeout", f.request_timeout, cfg.request_timeout, errors);
  }
  auto more = config::validate(cfg);
  errors.insert(errors.end(), more.begin(), more.end());
  if (!errors.empty()) return std::nullopt;
  return cfg;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return in ? out.str() : std::string();
}

// Hot reload: SIGHUP, and (with reload.watch) a change of the --config file's content, checked
// every second. The file is loaded and validated with the same flags as at start; a file with
// errors is rejected with all of them and the running configuration stays.
class Reloader {
 public:
  Reloader(net::io_context& ioc, gateway::Gateway& gw, const GatewayFlags& f, bool watch)
      : gw_(gw), flags_(f), hup_(ioc, SIGHUP), timer_(ioc), watch_(watch && !f.config.empty()) {
    if (!f.config.empty()) seen_ = read_whole(f.config);
    wait_hup();
    if (watch_) wait_tick();
  }

 private:
  void reload(const char* why) {
    auto logger = log::get("main");
    if (flags_.config.empty()) {
      logger->warn("{}: nothing to reload (no --config file)", why);
      return;
    }
    std::vector<std::string> errors;
    auto cfg = build_gateway_config(flags_, config::GatewayConfig{}, errors);
    if (!cfg) {
      logger->error("configuration reload ({}) rejected; the running configuration stays:", why);
      for (const auto& e : errors) logger->error("  {}", e);
      return;
    }
    if (auto err = gw_.reload(*cfg); !err.empty()) {
      logger->error("configuration reload ({}) failed; the running configuration stays: {}", why,
                    err);
    }
  }
  void wait_hup() {
    hup_.async_wait([this](error_code ec, int) {
      if (ec) return;
      seen_ = read_whole(flags_.config);
      reload("SIGHUP");
      wait_hup();
    });
  }
  void wait_tick() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this](error_code ec) {
      if (ec) return;
      auto now = read_whole(flags_.config);
      if (!now.empty() && now != seen_) {
        seen_ = std::move(now);
        reload("file changed");
      }
      wait_tick();
    });
  }

  gateway::Gateway& gw_;
  const GatewayFlags& flags_;
  net::signal_set hup_;
  net::steady_timer timer_;
  bool watch_;
  std::string seen_;  // the file content last loaded (or rejected)
};

int run_gateway(config::GatewayConfig cfg, const GatewayFlags& flags) {
  setup_logging(cfg.log_level, cfg.log_json);
  net::io_context ioc(kLoopHint);
  const bool watch = cfg.reload_watch;
  std::optional<gateway::Gateway> gw;
  try {
    gw.emplace(ioc.get_executor(), std::move(cfg));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxer: %s\n", e.what());
    return 2;
  }
  if (auto err = gw->bind(); !err.empty()) {
    std::fprintf(stderr, "proxer: %s\n", err.c_str());
    return 1;
  }
  gw->start();
  Reloader reloader(ioc, *gw, flags, watch);
  run_until_signal(ioc, [&](std::function<void()> done) { gw->shutdown(std::move(done)); });
  return 0;
}

// ---- agent ------------------------------------------------------------------------------------

struct AgentFlags {
  std::string config, gateway, token, id, ca, server_name, log_level, name, proxy_protocol, proxy,
      transport;
  std::uint16_t remote_port = 0;
  std::vector<std::string> tunnels;
  bool insecure = false;
  CLI::App* cmd = nullptr;
  bool given(const char* n) const {
    const auto* opt = cmd->get_option_no_throw(n);
    return opt != nullptr && opt->count() > 0;
  }
};

void add_agent_flags(CLI::App* cmd, AgentFlags& f, bool with_tunnels) {
  f.cmd = cmd;
  cmd->add_option("--config", f.config, "TOML configuration file (flags override it)");
  cmd->add_option("--gateway", f.gateway,
                  "gateway: HOST[:PORT] (carrier chosen by --transport, port 443), or a URL "
                  "naming it: tcp:// tls:// ws:// wss:// http:// https:// (long-poll)");
  cmd->add_option("--transport", f.transport,
                  "auto|tcp|tls|ws|wss|http|https [auto unless --gateway names a scheme]: auto "
                  "tries TLS, then WebSocket, then long-poll, and climbs back up");
  cmd->add_option("--token", f.token, "agent token (or PROXER_AGENT_TOKEN)");
  cmd->add_option("--id", f.id, "agent id [hostname-based]");
  cmd->add_option("--ca", f.ca, "CA bundle to verify the gateway's certificate");
  cmd->add_flag("--insecure", f.insecure, "do not verify the gateway's certificate (unsafe)");
  cmd->add_option("--server-name", f.server_name, "TLS server name [gateway host]");
  cmd->add_option("--proxy", f.proxy,
                  "leave through this HTTP proxy (CONNECT): http://[user:pass@]host:port "
                  "[HTTPS_PROXY, ALL_PROXY]; \"none\" ignores the environment");
  cmd->add_option("--log-level", f.log_level, "trace|debug|info|warn|error|off");
  if (with_tunnels) {
    cmd->add_option("--tunnel", f.tunnels,
                    "tunnel NAME[@TOKEN]=URL, e.g. app=http://127.0.0.1:3000 (repeatable)");
  }
}

std::optional<config::AgentConfig> build_agent_config(const AgentFlags& f,
                                                      std::vector<config::TunnelConfig> extra,
                                                      std::vector<std::string>& errors) {
  config::AgentConfig cfg;
  if (!f.config.empty()) {
    auto loaded = config::load_agent_file(f.config);
    if (!loaded.value) {
      errors = loaded.errors;
      return std::nullopt;
    }
    cfg = std::move(*loaded.value);
  }
  if (f.given("--gateway")) cfg.gateway = f.gateway;
  if (f.given("--transport")) cfg.transport = f.transport;
  if (f.given("--token")) cfg.token = Secret(f.token);
  if (cfg.token.empty() && env_token()) cfg.token = Secret(env_token());
  if (f.given("--id")) cfg.id = f.id;
  if (f.given("--ca")) cfg.ca_file = f.ca;
  if (f.insecure) cfg.insecure = true;
  if (f.given("--server-name")) cfg.server_name = f.server_name;
  if (f.given("--proxy")) cfg.proxy = Secret(f.proxy == "none" ? "" : f.proxy);
  if (!f.given("--proxy") && cfg.proxy.empty()) cfg.proxy = env_proxy(cfg.gateway);
  if (f.given("--log-level")) cfg.log_level = f.log_level;
  if (!f.tunnels.empty()) {
    cfg.tunnels.clear();  // flags replace the file's tunnels
    for (std::size_t i = 0; i < f.tunnels.size(); ++i) {
      std::string err;
      auto t = config::parse_tunnel_spec(f.tunnels[i], &err);
      if (!t) {
        errors.push_back("--tunnel '" + f.tunnels[i] + "': " + err);
        continue;
      }
      cfg.tunnels.push_back(std::move(*t));
    }
  }
  for (auto& t : extra) cfg.tunnels.push_back(std::move(t));
  if (cfg.gateway.empty()) errors.push_back("--gateway is required (e.g. gw.example.com:443)");
  if (cfg.tunnels.empty()) errors.push_back("at least one --tunnel is required");
  if (!errors.empty()) return std::nullopt;
  auto more = config::validate(cfg);
  errors.insert(errors.end(), more.begin(), more.end());
  if (!errors.empty()) return std::nullopt;
  if (cfg.id.empty()) cfg.id = default_agent_id(cfg);
  return cfg;
}

int run_agent(config::AgentConfig cfg, bool print_urls) {
  setup_logging(cfg.log_level, cfg.log_json);
  net::io_context ioc(kLoopHint);
  std::shared_ptr<agent::Agent> a;
  try {
    a = std::make_shared<agent::Agent>(ioc.get_executor(), cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxer: %s\n", e.what());
    return 1;
  }
  if (print_urls) {
    a->on_registered([cfg](const proto::RegisterResult& r) {
      if (!r.ok) {
        std::fprintf(stderr, "proxer: tunnel '%s' refused: %s\n", r.name.c_str(), r.error.c_str());
        return;
      }
      std::string target;
      for (const auto& t : cfg.tunnels) {
        if (t.name == r.name) target = t.url;
      }
      bool first = true;
      for (const auto& u : r.urls) {
        std::printf("%s %s  ->  %s\n", first ? "Forwarding" : "          ", u.c_str(),
                    target.c_str());
        first = false;
      }
      std::fflush(stdout);
    });
  }
  a->start();
  run_until_signal(ioc, [&](std::function<void()> done) { a->stop(std::move(done)); });
  return 0;
}

// ---- up ---------------------------------------------------------------------------------------

int run_up(const GatewayFlags& f) {
  config::GatewayConfig base;
  base.listen = "127.0.0.1:8080";
  base.agent_listen = "127.0.0.1:0";
  base.admin_listen = "127.0.0.1:9000";
  base.token = Secret(random_hex(16));
  std::vector<std::string> errors;
  auto cfg = build_gateway_config(f, base, errors);
  if (!cfg) return fail_with(errors, "options");
  setup_logging(cfg->log_level, cfg->log_json);

  net::io_context ioc(kLoopHint);
  gateway::Gateway gw(ioc.get_executor(), *cfg);
  if (auto err = gw.bind(); !err.empty()) {
    std::fprintf(stderr, "proxer: %s\n", err.c_str());
    return 1;
  }
  DemoSite demo(ioc.get_executor());
  const auto demo_port = demo.listen();
  if (demo_port == 0) {
    std::fprintf(stderr, "proxer: cannot start the demo site on 127.0.0.1\n");
    return 1;
  }
  gw.start();
  demo.start();

  config::AgentConfig acfg;
  acfg.gateway = "tcp://127.0.0.1:" + std::to_string(gw.agent_port());
  acfg.token = cfg->token;
  acfg.id = "proxer-up";
  acfg.log_level = cfg->log_level;
  std::string err;
  auto demo_tunnel =
      config::parse_tunnel_spec("demo=http://127.0.0.1:" + std::to_string(demo_port), &err);
  acfg.tunnels.push_back(*demo_tunnel);
  auto verrors = config::validate(acfg);
  if (!verrors.empty()) return fail_with(verrors, "built-in agent configuration");
  auto a = std::make_shared<agent::Agent>(ioc.get_executor(), acfg);
  const auto port = gw.public_port();
  const auto admin_port = gw.admin_port();
  const std::string domain = cfg->domain;
  a->on_registered([port, admin_port, domain](const proto::RegisterResult& r) {
    if (!r.ok) return;
    static bool printed = false;  // NOLINT: printed once per process
    if (printed) return;
    printed = true;
    std::printf(
        "\nproxer is up: a gateway and an agent in one process.\n\n"
        "  demo site   http://demo.%s:%u/\n"
        "              http://localhost:%u/t/demo/\n"
        "  admin       http://127.0.0.1:%u/  (API: /api/health, /api/tunnels, /connections, "
        "/forward)\n\n"
        "Press Ctrl-C to stop.\n",
        domain.c_str(), port, port, admin_port);
    std::fflush(stdout);
  });
  a->start();
  run_until_signal(ioc, [&](std::function<void()> done) {
    a->stop([&gw, &demo, done = std::move(done)]() {
      demo.stop();
      gw.shutdown(done);
    });
  });
  return 0;
}

// A proxy holds two descriptors per proxied connection: raise the soft limit to the hard one
// (as nginx's worker_rlimit_nofile does), so the default 1024 does not cap it at ~500 clients.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  raise_fd_limit();
  CLI::App app{"proxer: publish private services through a gateway you host"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kVersion);

  GatewayFlags gw_flags;
  auto* gw = app.add_subcommand("gateway", "run the gateway (public HTTP, agents, admin)");
  add_gateway_flags(gw, gw_flags, true);

  AgentFlags agent_flags;
  auto* ag = app.add_subcommand("agent", "run an agent that publishes local services");
  add_agent_flags(ag, agent_flags, true);

  AgentFlags http_flags;
  std::string http_port;
  auto* http = app.add_subcommand("http", "publish one local HTTP port through a gateway");
  http->add_option("port", http_port, "local port or HOST:PORT")->required();
  http->add_option("--name", http_flags.name, "tunnel name [random]");
  add_agent_flags(http, http_flags, false);

  AgentFlags tcp_flags;
  std::string tcp_port;
  auto* tcp = app.add_subcommand("tcp", "publish one local TCP port through a gateway");
  tcp->add_option("port", tcp_port, "local port, HOST:PORT or tcp://HOST:PORT")->required();
  tcp->add_option("--name", tcp_flags.name, "tunnel name [random]");
  tcp->add_option("--remote-port", tcp_flags.remote_port,
                  "public port to ask the gateway for [the gateway picks]");
  tcp->add_option("--proxy-protocol", tcp_flags.proxy_protocol,
                  "send a PROXY protocol header (v1 or v2) to the local target")
      ->check(CLI::IsMember({"v1", "v2"}));
  add_agent_flags(tcp, tcp_flags, false);

  GatewayFlags up_flags;
  auto* up = app.add_subcommand("up", "gateway + agent + demo site in one process, to try proxer");
  add_gateway_flags(up, up_flags, false);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  std::vector<std::string> errors;
  if (gw->parsed()) {
    auto cfg = build_gateway_config(gw_flags, config::GatewayConfig{}, errors);
    if (!cfg) return fail_with(errors, "gateway configuration");
    return run_gateway(std::move(*cfg), gw_flags);
  }
  if (ag->parsed()) {
    auto cfg = build_agent_config(agent_flags, {}, errors);
    if (!cfg) return fail_with(errors, "agent configuration");
    return run_agent(std::move(*cfg), false);
  }
  if (http->parsed()) {
    const std::string name = http_flags.name.empty() ? "t" + random_hex(4) : http_flags.name;
    std::string err;
    auto t = config::parse_tunnel_spec(name + "=" + http_port, &err);
    if (!t) return fail_with({err}, "tunnel");
    auto cfg = build_agent_config(http_flags, {*t}, errors);
    if (!cfg) return fail_with(errors, "agent configuration");
    return run_agent(std::move(*cfg), true);
  }
  if (tcp->parsed()) {
    const std::string name = tcp_flags.name.empty() ? "t" + random_hex(4) : tcp_flags.name;
    std::string target = tcp_port;
    if (target.find("://") == std::string::npos) target = "tcp://" + target;
    if (target.rfind("tcp://", 0) != 0)
      return fail_with({"expected a port, HOST:PORT or tcp://HOST:PORT, got '" + tcp_port + "'"},
                       "target");
    // A bare port means 127.0.0.1:PORT, as for `proxer http`.
    if (target.find(':', 6) == std::string::npos) target = "tcp://127.0.0.1:" + target.substr(6);
    std::string err;
    auto t = config::parse_tunnel_spec(name + "=" + target, &err);
    if (!t) return fail_with({err}, "tunnel");
    t->remote_port = tcp_flags.remote_port;
    t->proxy_protocol = tcp_flags.proxy_protocol;
    auto cfg = build_agent_config(tcp_flags, {*t}, errors);
    if (!cfg) return fail_with(errors, "agent configuration");
    return run_agent(std::move(*cfg), true);
  }
  if (up->parsed()) return run_up(up_flags);
  return 2;
}

}  // namespace proxer::app
