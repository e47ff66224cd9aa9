#include "servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/log.h"

namespace proxer::discovery::testing {

namespace fs = std::filesystem;

std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const auto candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string missing(const std::string& name) {
  return name + " is not installed: run scripts/install-deps.sh";
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/proxer-disc-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  // dnsmasq may drop privileges: let it read the files the test writes here.
  ::chmod(tmpl.c_str(), 0755);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const auto tmp = path + ".tmp";
  write_file(tmp, content);
  ::chmod(tmp.c_str(), 0644);
  fs::rename(tmp, path);
}

bool Child::start(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::setpgid(0, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  pid_ = pid;
  return true;
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Child::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

void Child::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

namespace {

int bound_socket(int type, std::uint16_t port, std::uint16_t* chosen) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (chosen) *chosen = ntohs(a.sin_port);
  return fd;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::uint16_t free_port(bool udp) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::uint16_t port = 0;
    const int t = bound_socket(SOCK_STREAM, 0, &port);
    if (t < 0) continue;
    if (!udp) {
      ::close(t);
      return port;
    }
    const int u = bound_socket(SOCK_DGRAM, port, nullptr);
    ::close(t);
    if (u >= 0) {
      ::close(u);
      return port;
    }
  }
  ADD_FAILURE() << "no free port";
  return 0;
}

bool wait_tcp(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// ---- dnsmasq ----

void Dnsmasq::start(std::vector<std::string> extra, const std::string& hosts) {
  const auto bin = find_program("dnsmasq");
  ASSERT_FALSE(bin.empty()) << missing("dnsmasq");
  if (!extra.empty() || extra_.empty()) extra_ = std::move(extra);
  if (!hosts.empty() || !std::filesystem::exists(dir_.file("hosts")))
    write_file_atomic(dir_.file("hosts"), hosts);
  const bool restart = port_ != 0;
  // A port is free only "now": if dnsmasq cannot bind it, try another (not on a restart).
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (!restart) port_ = free_port(true);
    std::vector<std::string> argv{bin,
                                  "--keep-in-foreground",
                                  "--conf-file=/dev/null",
                                  "--port=" + std::to_string(port_),
                                  "--listen-address=127.0.0.1",
                                  "--bind-interfaces",
                                  "--no-resolv",
                                  "--no-hosts",
                                  "--no-poll",
                                  "--pid-file",
                                  "--local-ttl=1",
                                  "--local=/test/",
                                  "--log-facility=-",
                                  "--log-queries",
                                  "--addn-hosts=" + dir_.file("hosts")};
    if (::geteuid() == 0) argv.push_back("--user=root");
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    ASSERT_TRUE(child_.start(argv, dir_.file("log")));
    if (wait_tcp(port_, 5s) && child_.running()) return;
    child_.stop();
    if (restart) break;
  }
  FAIL() << "dnsmasq did not start; its log:\n" << log();
}

void Dnsmasq::set_hosts(const std::string& hosts) {
  write_file_atomic(dir_.file("hosts"), hosts);
  child_.signal(SIGHUP);
}

std::string Dnsmasq::log() const {
  return read_all(dir_.file("log"));
}

// ---- etcd ----

void Etcd::start() {
  const auto bin = find_program("etcd");
  ASSERT_FALSE(bin.empty()) << missing("etcd (package etcd-server)");
  if (port_ == 0) {
    port_ = free_port();
    peer_port_ = free_port();
    while (peer_port_ == port_) peer_port_ = free_port();
  }
  const auto client = "http://127.0.0.1:" + std::to_string(port_);
  const auto peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv{bin,
                                "--name=default",
                                "--data-dir=" + dir_.file("data"),
                                "--listen-client-urls=" + client,
                                "--advertise-client-urls=" + client,
                                "--listen-peer-urls=" + peer,
                                "--initial-advertise-peer-urls=" + peer,
                                "--initial-cluster=default=" + peer,
                                "--experimental-watch-progress-notify-interval=500ms",
                                "--logger=zap",
                                "--log-outputs=stderr",
                                "--log-level=warn"};
  ASSERT_TRUE(child_.start(argv, dir_.file("log")));
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline && child_.running()) {
    // Ready once it serves a read (it has a leader).
    if (http_post(port_, "/v3/kv/range", R"({"key":"AA=="})").first == 200) return;
    std::this_thread::sleep_for(50ms);
  }
  FAIL() << "etcd did not start; its log:\n" << log();
}

std::string Etcd::put(const std::string& key, const std::string& value) {
  auto [status, body] =
      http_post(port_, "/v3/kv/put",
                R"({"key":")" + base64(key) + R"(","value":")" + base64(value) + R"("})");
  EXPECT_EQ(status, 200) << body;
  return body;
}

std::string Etcd::del(const std::string& key) {
  auto [status, body] =
      http_post(port_, "/v3/kv/deleterange", R"({"key":")" + base64(key) + R"("})");
  EXPECT_EQ(status, 200) << body;
  return body;
}

std::string Etcd::log() const {
  return read_all(dir_.file("log"));
}

std::pair<int, std::string> http_post(std::uint16_t port, const std::string& target,
                                      const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {0, "socket failed"};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {0, "connect failed"};
  }
  // HTTP/1.0: the answer ends with the connection, so reading to EOF reads all of it.
  const std::string req =
      "POST " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return {0, "send failed"};
  }
  std::string res;
  char buf[4096];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    res.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (res.size() < 12 || res.compare(0, 5, "HTTP/") != 0) return {0, res};
  const int status = std::atoi(res.c_str() + 9);
  const auto end = res.find("\r\n\r\n");
  return {status, end == std::string::npos ? "" : res.substr(end + 4)};
}

std::string base64(std::string_view in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {k[(v >> 18) & 63], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += {k[(v >> 18) & 63], k[(v >> 12) & 63], i + 1 < in.size() ? k[(v >> 6) & 63] : '=', '='};
  }
  return out;
}

bool Updates::wait(net::io_context& ioc, const std::function<bool()>& pred,
                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(10ms);
  }
  return pred();
}

void run_for(net::io_context& ioc, std::chrono::milliseconds d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(10ms);
  }
}

struct LogCapture::Sink : spdlog::sinks::base_sink<std::mutex> {
  std::vector<std::string> lines;
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}
  std::vector<std::string> copy() {
    std::lock_guard lock(mutex_);
    return lines;
  }
};

LogCapture::LogCapture() : sink_(std::make_shared<Sink>()) {
  log::get("discovery")->sinks().push_back(sink_);
}

LogCapture::~LogCapture() {
  auto& sinks = log::get("discovery")->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
}

std::vector<std::string> LogCapture::lines() const {
  return sink_->copy();
}

std::size_t LogCapture::count(const std::string& needle) const {
  std::size_t n = 0;
  for (const auto& l : lines())
    if (l.find(needle) != std::string::npos) ++n;
  return n;
}

std::string describe(const std::vector<Target>& set) {
  std::string out = "{";
  for (const auto& t : set) {
    if (out.size() > 1) out += ", ";
    out += to_string(t) + "*" + std::to_string(t.weight);
  }
  return out + "}";
}

}  // namespace proxer::discovery::testing
