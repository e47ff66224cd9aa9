#include "discovery/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cctype>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "core/backoff.h"
#include "core/deadline.h"
#include "core/event.h"
#include "discovery/common.h"

namespace proxer::discovery {

namespace {

constexpr int kTypeA = 1;
constexpr int kTypeAAAA = 28;
constexpr int kTypeSRV = 33;
constexpr int kClassIN = 1;
// How many times in a row one readiness event lets c-ares read or write before going back to the
// loop (TCP answers take a read for the length and one for the body).
constexpr int kMaxProcessRounds = 64;
constexpr std::chrono::milliseconds kMaxErrorRetry{30'000};

std::uint16_t get16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t get32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// Skips an encoded name at `pos` without following compression pointers (so it cannot loop).
bool skip_name(const unsigned char* msg, std::size_t len, std::size_t& pos) {
  for (int labels = 0; labels < 128; ++labels) {
    if (pos >= len) return false;
    const unsigned b = msg[pos];
    if (b == 0) {
      pos += 1;
      return true;
    }
    if ((b & 0xC0) == 0xC0) {
      if (pos + 2 > len) return false;
      pos += 2;
      return true;
    }
    if ((b & 0xC0) != 0) return false;  // extended label types: not in answers we accept
    pos += 1 + b;
  }
  return false;
}

std::string ares_error(int status) {
  switch (status) {
    case ARES_ESERVFAIL:
      return "SERVFAIL";
    case ARES_EREFUSED:
      return "REFUSED";
    case ARES_ETIMEOUT:
      return "no answer (timeout)";
    case ARES_ECONNREFUSED:
      return "cannot reach the DNS server";
    default:
      return ares_strerror(status);
  }
}

void library_init() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

// "10.0.0.2", "10.0.0.2:53", "::1", "[::1]", "[::1]:53" -> c-ares CSV form, or "" if malformed.
std::string nameserver_csv(std::string_view ns) {
  boost::system::error_code ec;
  auto port_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 5) return false;
    if (!std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    const int v = std::stoi(std::string(p));
    return v >= 1 && v <= 65535;
  };
  if (!ns.empty() && ns.front() == '[') {
    const auto close = ns.find(']');
    if (close == std::string_view::npos) return "";
    boost::asio::ip::make_address_v6(std::string(ns.substr(1, close - 1)), ec);
    if (ec) return "";
    const auto rest = ns.substr(close + 1);
    if (rest.empty()) return std::string(ns);
    if (rest.front() != ':' || !port_ok(rest.substr(1))) return "";
    return std::string(ns);
  }
  if (std::count(ns.begin(), ns.end(), ':') > 1) {
    boost::asio::ip::make_address_v6(std::string(ns), ec);
    return ec ? "" : "[" + std::string(ns) + "]";
  }
  const auto colon = ns.find(':');
  boost::asio::ip::make_address_v4(std::string(ns.substr(0, colon)), ec);
  if (ec) return "";
  if (colon != std::string_view::npos && !port_ok(ns.substr(colon + 1))) return "";
  return std::string(ns);
}

std::string type_name(DnsType t) {
  switch (t) {
    case DnsType::A:
      return "A";
    case DnsType::AAAA:
      return "AAAA";
    case DnsType::A_AAAA:
      return "A+AAAA";
    case DnsType::SRV:
      return "SRV";
  }
  return "?";
}

}  // namespace

std::optional<std::uint32_t> min_ttl(const unsigned char* msg, std::size_t len) {
  if (!msg || len < 12) return std::nullopt;
  const unsigned qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8);
  std::size_t pos = 12;
  for (unsigned i = 0; i < qd; ++i) {
    if (!skip_name(msg, len, pos) || pos + 4 > len) return std::nullopt;
    pos += 4;
  }
  // Walks `count` records from `pos`; the smallest TTL, or nullopt for none or a malformed one.
  auto walk = [&](unsigned count) -> std::optional<std::uint32_t> {
    std::optional<std::uint32_t> best;
    for (unsigned i = 0; i < count; ++i) {
      if (!skip_name(msg, len, pos) || pos + 10 > len) return std::nullopt;
      // RFC 2181 §8: a TTL with the top bit set is treated as zero.
      std::uint32_t ttl = get32(msg + pos + 4);
      if (ttl & 0x80000000u) ttl = 0;
      const std::size_t rdlen = get16(msg + pos + 8);
      pos += 10;
      if (pos + rdlen > len) return std::nullopt;
      pos += rdlen;
      best = best ? std::min(*best, ttl) : ttl;
    }
    return best;
  };
  if (an > 0) return walk(an);
  return walk(ns);
}

bool parse_dns_type(std::string_view s, DnsType& out) {
  std::string l(s);
  for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "a")
    out = DnsType::A;
  else if (l == "aaaa")
    out = DnsType::AAAA;
  else if (l == "a+aaaa" || l == "any")
    out = DnsType::A_AAAA;
  else if (l == "srv")
    out = DnsType::SRV;
  else
    return false;
  return true;
}

std::string validate(const DnsOptions& o) {
  if (o.name.empty()) return "dns: name is empty";
  if (o.name.size() > 253 + 1) return "dns: name longer than 253 characters";
  if (o.type != DnsType::SRV && o.port == 0) return "dns: port is required for A/AAAA lookups";
  if (!o.nameserver.empty() && nameserver_csv(o.nameserver).empty())
    return "dns: nameserver '" + o.nameserver + "' is not IP[:port] or [IPv6][:port]";
  if (o.min_refresh.count() <= 0) return "dns: min_refresh must be positive";
  if (o.max_refresh < o.min_refresh) return "dns: max_refresh is below min_refresh";
  if (o.query_timeout.count() <= 0) return "dns: query_timeout must be positive";
  return "";
}

class DnsProvider::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(net::any_io_executor ex, DnsOptions o)
      : ex_(ex),
        opts_(std::move(o)),
        health_("dns " + type_name(opts_.type) + " " + opts_.name),
        refresh_(ex),
        ares_timer_(ex),
        done_(ex) {}

  ~Impl() { destroy_channel(); }

  void start(OnUpdate cb) {
    if (started_ || stopped_) return;
    started_ = true;
    publisher_.set(std::move(cb));
    net::co_spawn(ex_, run(shared_from_this()), DetachedTask{"dns discovery"});
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    publisher_.clear();
    refresh_.cancel();
    destroy_channel();  // completes the queries (ARES_EDESTRUCTION), which wakes run()
    done_.notify();
  }

 private:
  struct Watch {
    Watch(net::any_io_executor ex, int f) : desc(ex), fd(f) {}
    net::posix::stream_descriptor desc;
    int fd;
    bool want_read = false, want_write = false;
    bool reading = false, writing = false;
    bool alive = true;
  };

  struct Query {
    Impl* impl = nullptr;
    int type = 0;
    int status = ARES_SUCCESS;
    std::vector<unsigned char> answer;
  };

  struct Result {
    std::string error;  // "" = success
    bool nxdomain = false;
    std::vector<Target> targets;
    std::optional<std::uint32_t> ttl;
  };

  awaitable<void> run(std::shared_ptr<Impl> self) {
    Backoff retry(opts_.min_refresh,
                  std::max(opts_.min_refresh, std::min(opts_.max_refresh, kMaxErrorRetry)));
    while (!stopped_) {
      Result r = co_await resolve();
      if (stopped_) co_return;
      std::chrono::milliseconds next;
      if (r.error.empty()) {
        health_.ok();
        if (r.nxdomain && !nxdomain_logged_)
          health_.log().warn("{}: the name does not exist (NXDOMAIN); the set is empty",
                             health_.what());
        nxdomain_logged_ = r.nxdomain;
        const auto count = r.targets.size();
        if (publisher_.publish(std::move(r.targets)))
          health_.log().info("{}: {} endpoint(s)", health_.what(), count);
        retry.reset();
        const std::chrono::milliseconds ttl =
            r.ttl ? std::chrono::seconds(*r.ttl) : opts_.min_refresh;
        next = std::clamp(ttl, opts_.min_refresh, opts_.max_refresh);
      } else {
        health_.fail(r.error);
        next = retry.next();
      }
      if (stopped_) break;  // the callback may have stopped the provider
      refresh_.expires_after(next);
      co_await refresh_.async_wait(use_nothrow);
    }
    (void)self;
  }

  std::string init_channel() {
    library_init();
    ares_options o{};
    o.sock_state_cb = &Impl::on_sock_state;
    o.sock_state_cb_data = this;
    // c-ares doubles the timeout per round over the servers: 1/4 + 2/4 + 4/4 of it fits well
    // inside query_timeout with one server; the deadline in resolve() bounds the rest.
    o.timeout = static_cast<int>(std::max<long long>(50, opts_.query_timeout.count() / 4));
    o.tries = 3;
    const int rc = ares_init_options(&channel_, &o,
                                     ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
      channel_ = nullptr;
      return std::string("cannot initialise c-ares: ") + ares_strerror(rc);
    }
    if (!opts_.nameserver.empty()) {
      const auto csv = nameserver_csv(opts_.nameserver);
      const int rc2 = ares_set_servers_ports_csv(channel_, csv.c_str());
      if (rc2 != ARES_SUCCESS) {
        destroy_channel();
        return "cannot use nameserver " + opts_.nameserver + ": " + ares_strerror(rc2);
      }
    }
    return "";
  }

  void destroy_channel() {
    if (!channel_) return;
    auto* ch = channel_;
    ares_destroy(ch);  // closes the sockets (through on_sock_state) and fails the queries
    channel_ = nullptr;
    ares_timer_.cancel();
    // c-ares has closed its sockets: forget any descriptor still held without closing it.
    for (auto& [fd, w] : watches_) {
      w->alive = false;
      w->desc.release();
    }
    watches_.clear();
  }

  awaitable<Result> resolve() {
    Result r;
    if (!channel_) {
      r.error = init_channel();
      if (!r.error.empty()) co_return r;
    }
    std::array<int, 2> types{};
    std::size_t n = 0;
    switch (opts_.type) {
      case DnsType::A:
        types[n++] = kTypeA;
        break;
      case DnsType::AAAA:
        types[n++] = kTypeAAAA;
        break;
      case DnsType::A_AAAA:
        types[n++] = kTypeA;
        types[n++] = kTypeAAAA;
        break;
      case DnsType::SRV:
        types[n++] = kTypeSRV;
        break;
    }
    for (std::size_t i = 0; i < n; ++i) {
      queries_[i] = Query{this, types[i], ARES_SUCCESS, {}};
      ++pending_;
    }
    // Issued after counting them all: ares_search may complete synchronously.
    for (std::size_t i = 0; i < n; ++i)
      ares_search(channel_, opts_.name.c_str(), kClassIN, types[i], &Impl::on_answer, &queries_[i]);
    update_timer();
    {
      Deadline deadline(ex_, opts_.query_timeout, [this] {
        if (channel_) ares_cancel(channel_);
      });
      while (pending_ > 0 && !stopped_) co_await done_.wait();
      if (deadline.expired()) {
        r.error = "no answer within " + std::to_string(opts_.query_timeout.count()) + " ms";
        co_return r;
      }
    }
    if (stopped_) co_return r;
    for (std::size_t i = 0; i < n; ++i) {
      auto& q = queries_[i];
      if (!r.error.empty()) break;
      if (q.status == ARES_ENOTFOUND) {
        r.nxdomain = true;
      } else if (q.status != ARES_SUCCESS && q.status != ARES_ENODATA) {
        r.error = ares_error(q.status);
        break;
      }
      if (auto ttl = min_ttl(q.answer.data(), q.answer.size()))
        r.ttl = r.ttl ? std::min(*r.ttl, *ttl) : *ttl;
      if (q.status == ARES_SUCCESS) r.error = parse(q, r.targets);
    }
    // A+AAAA: the name exists when either family answered.
    if (r.nxdomain && !r.targets.empty()) r.nxdomain = false;
    co_return r;
  }

  std::string parse(const Query& q, std::vector<Target>& out) {
    const auto* buf = q.answer.data();
    const int len = static_cast<int>(q.answer.size());
    if (q.type == kTypeA || q.type == kTypeAAAA) {
      hostent* host = nullptr;
      const int rc = q.type == kTypeA ? ares_parse_a_reply(buf, len, &host, nullptr, nullptr)
                                      : ares_parse_aaaa_reply(buf, len, &host, nullptr, nullptr);
      if (rc == ARES_ENODATA) return "";
      if (rc != ARES_SUCCESS) return std::string("bad answer: ") + ares_strerror(rc);
      char text[INET6_ADDRSTRLEN];
      for (char** a = host->h_addr_list; a && *a; ++a) {
        if (inet_ntop(host->h_addrtype, *a, text, sizeof text))
          out.push_back(Target{text, opts_.port, 1});
      }
      ares_free_hostent(host);
      return "";
    }
    ares_srv_reply* srv = nullptr;
    const int rc = ares_parse_srv_reply(buf, len, &srv);
    if (rc == ARES_ENODATA) return "";
    if (rc != ARES_SUCCESS) return std::string("bad answer: ") + ares_strerror(rc);
    unsigned best = 0x10000;
    for (auto* s = srv; s; s = s->next) best = std::min<unsigned>(best, s->priority);
    for (auto* s = srv; s; s = s->next) {
      if (s->priority != best || !s->host || s->port == 0) continue;
      std::string host = s->host;
      while (!host.empty() && host.back() == '.') host.pop_back();
      if (host.empty()) continue;  // "." : the service is decidedly not available
      for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::uint32_t w = std::clamp<std::uint32_t>(s->weight, kMinWeight, kMaxWeight);
      out.push_back(Target{std::move(host), s->port, w});
    }
    ares_free_data(srv);
    return "";
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* q = static_cast<Query*>(arg);
    q->status = status;
    if (abuf && alen > 0) q->answer.assign(abuf, abuf + alen);
    Impl* impl = q->impl;
    if (impl->pending_ > 0 && --impl->pending_ == 0) impl->done_.notify();
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->sock_state(fd, readable != 0, writable != 0);
  }

  void sock_state(int fd, bool readable, bool writable) {
    auto it = watches_.find(fd);
    if (!readable && !writable) {
      // c-ares is about to close the socket: stop watching it, without closing it ourselves.
      if (it == watches_.end()) return;
      auto w = it->second;
      watches_.erase(it);
      w->alive = false;
      w->desc.release();
      return;
    }
    if (it == watches_.end()) {
      auto w = std::make_shared<Watch>(ex_, fd);
      error_code ec;
      w->desc.assign(fd, ec);
      if (ec) {
        health_.log().warn("{}: cannot watch socket {}: {}", health_.what(), fd, ec.message());
        return;  // the query times out
      }
      it = watches_.emplace(fd, std::move(w)).first;
    }
    it->second->want_read = readable;
    it->second->want_write = writable;
    if (!in_process_) arm(it->second);
  }

  void arm(const std::shared_ptr<Watch>& w) {
    if (!w->alive || stopped_) return;
    if (w->want_read && !w->reading) {
      w->reading = true;
      w->desc.async_wait(net::posix::stream_descriptor::wait_read,
                         [self = shared_from_this(), w](error_code ec) {
                           w->reading = false;
                           if (ec || !w->alive || self->stopped_) return;
                           self->on_ready(w, true);
                         });
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      w->desc.async_wait(net::posix::stream_descriptor::wait_write,
                         [self = shared_from_this(), w](error_code ec) {
                           w->writing = false;
                           if (ec || !w->alive || self->stopped_) return;
                           self->on_ready(w, false);
                         });
    }
  }

  // The reactor is edge-triggered: after an edge, let c-ares read (or write) while the socket
  // stays ready, since c-ares may take only part of what is there (a TCP answer takes two reads).
  void on_ready(const std::shared_ptr<Watch>& w, bool read) {
    for (int i = 0; i < kMaxProcessRounds; ++i) {
      process(read ? w->fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : w->fd);
      if (!w->alive || stopped_ || !(read ? w->want_read : w->want_write)) break;
      pollfd p{w->fd, static_cast<short>(read ? POLLIN : POLLOUT), 0};
      if (::poll(&p, 1, 0) <= 0) break;
    }
    arm_all();
    update_timer();
  }

  void process(ares_socket_t rfd, ares_socket_t wfd) {
    if (!channel_) return;
    in_process_ = true;
    ares_process_fd(channel_, rfd, wfd);
    in_process_ = false;
  }

  // Sockets opened or changed during processing are armed afterwards, so a wait never starts on a
  // socket c-ares closes within the same call.
  void arm_all() {
    for (auto& [fd, w] : watches_) arm(w);
  }

  void update_timer() {
    if (!channel_ || stopped_) return;
    arm_all();
    timeval tv{};
    if (!ares_timeout(channel_, nullptr, &tv)) {
      ares_timer_.cancel();
      return;
    }
    ares_timer_.expires_after(std::chrono::seconds(tv.tv_sec) +
                              std::chrono::microseconds(tv.tv_usec));
    ares_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->stopped_ || !self->channel_) return;
      self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // retransmissions and timeouts
      self->update_timer();
    });
  }

  net::any_io_executor ex_;
  DnsOptions opts_;
  Health health_;
  Publisher publisher_;
  net::steady_timer refresh_;
  net::steady_timer ares_timer_;
  Event done_;
  ares_channel channel_ = nullptr;
  std::unordered_map<int, std::shared_ptr<Watch>> watches_;
  std::array<Query, 2> queries_{};
  int pending_ = 0;
  bool in_process_ = false;
  bool started_ = false;
  bool stopped_ = false;
  bool nxdomain_logged_ = false;
};

DnsProvider::DnsProvider(net::any_io_executor ex, DnsOptions opts) {
  if (auto err = validate(opts); !err.empty()) throw std::invalid_argument(err);
  impl_ = std::make_shared<Impl>(ex, std::move(opts));
}

DnsProvider::~DnsProvider() {
  stop();
}

void DnsProvider::start(OnUpdate on_update) {
  impl_->start(std::move(on_update));
}

void DnsProvider::stop() {
  impl_->stop();
}

}  // namespace proxer::discovery
