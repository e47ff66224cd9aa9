#pragma once
// Real servers for the discovery tests (dnsmasq, etcd) as child processes on free loopback
// ports, plus the helpers the tests share. Every child is killed by its owner's destructor, and
// asks the kernel to kill it if the test process dies first (PR_SET_PDEATHSIG).
#include <spdlog/sinks/base_sink.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/asio.h"
#include "discovery/provider.h"

namespace proxer::discovery::testing {

using namespace std::chrono_literals;

// The program's path (PATH, then /usr/sbin and /sbin), or "".
std::string find_program(const std::string& name);
// The failure message for a missing server binary.
std::string missing(const std::string& name);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `content` to `path` atomically (a temporary file renamed over it).
void write_file_atomic(const std::string& path, const std::string& content);
void write_file(const std::string& path, const std::string& content);

// A child process, killed (SIGTERM, then SIGKILL after 3 s) and reaped when destroyed.
class Child {
 public:
  Child() = default;
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // Starts argv[0] with stdout and stderr appended to `log`. False if fork failed.
  bool start(const std::vector<std::string>& argv, const std::string& log);
  bool running();
  void signal(int sig);
  void stop();

 private:
  pid_t pid_ = -1;
};

// A port free on 127.0.0.1 for TCP (and UDP when `udp` is set) at the time of the call.
std::uint16_t free_port(bool udp = false);
// Waits until 127.0.0.1:port accepts TCP connections.
bool wait_tcp(std::uint16_t port, std::chrono::milliseconds timeout);

// dnsmasq answering only from its command line and from an addn-hosts file the test rewrites.
class Dnsmasq {
 public:
  // `extra`: more options (--srv-host=..., --host-record=...). Fails the test on error.
  void start(std::vector<std::string> extra = {}, const std::string& hosts = "");
  void stop() { child_.stop(); }
  // Rewrites the hosts file and makes dnsmasq read it again (SIGHUP).
  void set_hosts(const std::string& hosts);
  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const;

 private:
  TempDir dir_;
  Child child_;
  std::uint16_t port_ = 0;
  std::vector<std::string> extra_;
};

// A single-member etcd with its data in a temporary directory.
class Etcd {
 public:
  void start();  // fails the test on error; a restart reuses the data and the ports
  void stop() { child_.stop(); }
  std::uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Through etcd's JSON API; return etcd's response body (fail the test on an HTTP error).
  std::string put(const std::string& key, const std::string& value);
  std::string del(const std::string& key);
  std::string log() const;

 private:
  TempDir dir_;
  Child child_;
  std::uint16_t port_ = 0, peer_port_ = 0;
};

// POST over HTTP/1.0 to 127.0.0.1:port with 5 s socket timeouts: (status, body); status 0 on a
// connection error.
std::pair<int, std::string> http_post(std::uint16_t port, const std::string& target,
                                      const std::string& body);
std::string base64(std::string_view in);

// The updates a provider reported, and waits on them while running the io_context.
struct Updates {
  std::vector<std::vector<Target>> all;
  OnUpdate callback() {
    return [this](const std::vector<Target>& set) { all.push_back(set); };
  }
  // Runs `ioc` until `pred()` holds or `timeout` passes; returns pred().
  static bool wait(net::io_context& ioc, const std::function<bool()>& pred,
                   std::chrono::milliseconds timeout = 10s);
  // Waits for an update equal to `want` (the latest one).
  bool wait_for(net::io_context& ioc, const std::vector<Target>& want,
                std::chrono::milliseconds timeout = 10s) {
    return wait(
        ioc, [&] { return !all.empty() && all.back() == want; }, timeout);
  }
};

// Runs `ioc` for `d`.
void run_for(net::io_context& ioc, std::chrono::milliseconds d);

// Captures what the "discovery" logger writes while it lives.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::vector<std::string> lines() const;
  // How many lines contain `needle`.
  std::size_t count(const std::string& needle) const;

 private:
  struct Sink;
  std::shared_ptr<Sink> sink_;
};

std::string describe(const std::vector<Target>& set);

}  // namespace proxer::discovery::testing
