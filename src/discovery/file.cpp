#include "discovery/file.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "discovery/common.h"

namespace proxer::discovery {

namespace {

constexpr std::uint32_t kDirEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

std::string errno_text(int e) {
  return std::strerror(e);
}

// Reads the whole regular file at `path` (at most max_bytes). Returns "" or the error.
std::string read_file(const std::string& path, std::size_t max_bytes, std::string& out) {
  // O_NONBLOCK: opening a FIFO put there by mistake must not block the loop.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return "cannot open: " + errno_text(errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "cannot stat: " + errno_text(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return "larger than " + std::to_string(max_bytes) + " bytes";
  // Sized from fstat, grown if the file grows meanwhile, never past max_bytes + 1 (to tell "too
  // large" from "exactly max_bytes").
  out.clear();
  out.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min(out.size() * 2, max_bytes + 1));
    }
    const auto n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return "cannot read: " + errno_text(errno);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max_bytes) return "larger than " + std::to_string(max_bytes) + " bytes";
  out.resize(got);
  return "";
}

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string validate(const FileOptions& o) {
  if (o.path.empty()) return "file: path is empty";
  if (o.path.back() == '/') return "file: path names a directory";
  if (o.settle.count() < 0) return "file: settle is negative";
  if (o.poll_interval.count() <= 0) return "file: poll_interval must be positive";
  if (o.max_bytes == 0) return "file: max_bytes is zero";
  return "";
}

std::optional<std::vector<Target>> parse_endpoints_file(std::string_view text, std::string* error) {
  std::vector<Target> out;
  std::size_t line_no = 0;
  auto fail = [&](const std::string& why) {
    if (error) *error = "line " + std::to_string(line_no) + ": " + why;
    return std::nullopt;
  };
  while (!text.empty() || line_no == 0) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    // A comment starts at '#' at the start of the line or after whitespace.
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || is_space(line[i - 1]))) {
        line = line.substr(0, i);
        break;
      }
    }
    std::vector<std::string_view> tokens;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_space(line[i])) ++i;
      const auto start = i;
      while (i < line.size() && !is_space(line[i])) ++i;
      if (i > start) tokens.push_back(line.substr(start, i - start));
    }
    if (tokens.empty()) continue;
    if (tokens.size() > 2) return fail("expected 'host:port [weight]'");
    if (tokens[0].front() == '{') return fail("expected 'host:port [weight]', not JSON");
    std::string why;
    auto t = parse_target(tokens[0], &why);
    if (!t) return fail(why);
    if (tokens.size() == 2) {
      std::uint32_t w = 0;
      const auto s = tokens[1];
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), w);
      if (ec != std::errc() || p != s.data() + s.size())
        return fail("bad weight '" + std::string(s) + "'");
      if (w < kMinWeight || w > kMaxWeight) return fail("weight out of range 1-1000");
      t->weight = w;
    }
    out.push_back(std::move(*t));
  }
  return out;
}

class FileProvider::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(net::any_io_executor ex, FileOptions o)
      : ex_(ex),
        opts_(std::move(o)),
        dir_(dir_of(opts_.path)),
        base_(base_of(opts_.path)),
        health_("file " + opts_.path),
        tick_(ex),
        settle_(ex),
        inotify_(ex) {}

  ~Impl() { close_inotify(); }

  void start(OnUpdate cb) {
    if (started_ || stopped_) return;
    started_ = true;
    publisher_.set(std::move(cb));
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      health_.log().warn("{}: inotify unavailable ({}); checking every {} ms", health_.what(),
                         errno_text(errno), opts_.poll_interval.count());
    } else {
      inotify_.assign(fd);
      add_watch();
      net::co_spawn(ex_, watcher(shared_from_this()), DetachedTask{"file discovery watcher"});
    }
    net::co_spawn(ex_, reader(shared_from_this()), DetachedTask{"file discovery"});
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    publisher_.clear();
    tick_.cancel();
    settle_.cancel();
    close_inotify();
  }

 private:
  void close_inotify() {
    if (!inotify_.is_open()) return;
    error_code ec;
    inotify_.close(ec);  // also drops the watch
    wd_ = -1;
  }

  void add_watch() {
    if (!inotify_.is_open() || wd_ >= 0) return;
    wd_ = ::inotify_add_watch(inotify_.native_handle(), dir_.c_str(), kDirEvents);
    if (wd_ < 0) {
      const std::string err = errno_text(errno);
      if (err != watch_error_)
        health_.log().warn("{}: cannot watch directory {} ({}); checking every {} ms",
                           health_.what(), dir_, err, opts_.poll_interval.count());
      watch_error_ = err;
    } else {
      watch_error_.clear();
    }
  }

  awaitable<void> reader(std::shared_ptr<Impl> self) {
    while (!stopped_) {
      reload();
      if (stopped_) break;  // the callback may have stopped the provider
      add_watch();          // again, if the directory was missing or replaced
      tick_.expires_after(opts_.poll_interval);
      co_await tick_.async_wait(use_nothrow);
      if (stopped_) break;
      if (dirty_) {
        settle_.expires_after(opts_.settle);
        co_await settle_.async_wait(use_nothrow);
        if (stopped_) break;
        dirty_ = false;
      }
    }
    (void)self;
  }

  awaitable<void> watcher(std::shared_ptr<Impl> self) {
    std::vector<char> buf(16 * 1024);
    while (!stopped_) {
      auto [ec, n] = co_await inotify_.async_read_some(net::buffer(buf), use_nothrow);
      if (stopped_) break;
      if (ec) {
        health_.log().warn("{}: inotify failed ({}); checking every {} ms", health_.what(),
                           ec.message(), opts_.poll_interval.count());
        close_inotify();
        break;
      }
      const bool relevant = on_events(buf.data(), n);
      if (relevant) {
        dirty_ = true;
        tick_.cancel();
      }
    }
    (void)self;
  }

  // Reads a batch of inotify events; true when the file may have changed.
  bool on_events(const char* data, std::size_t n) {
    bool relevant = false;
    std::size_t off = 0;
    while (off + sizeof(inotify_event) <= n) {
      inotify_event ev;
      std::memcpy(&ev, data + off, sizeof ev);
      const std::size_t name_off = off + sizeof ev;
      off = name_off + ev.len;
      if (off > n) break;
      const std::string_view name(data + name_off, ev.len ? ::strnlen(data + name_off, ev.len) : 0);
      if (ev.mask & IN_Q_OVERFLOW) relevant = true;
      if (ev.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        // The directory went away or moved: watch the path's directory again on the next tick.
        if (wd_ >= 0 && (ev.mask & IN_MOVE_SELF)) ::inotify_rm_watch(inotify_.native_handle(), wd_);
        wd_ = -1;
        relevant = true;
      }
      // Our file, or Kubernetes' atomic writer swapping its "..data" symlink.
      if (name == base_ || ((ev.mask & IN_MOVED_TO) && name.substr(0, 2) == "..")) relevant = true;
    }
    return relevant;
  }

  void reload() {
    std::string content;
    if (auto err = read_file(opts_.path, opts_.max_bytes, content); !err.empty()) {
      health_.fail(err);
      return;
    }
    if (last_content_ && *last_content_ == content) {
      health_.ok();
      return;
    }
    std::string err;
    auto set = parse_endpoints_file(content, &err);
    if (!set) {
      health_.fail(err);
      return;
    }
    health_.ok();
    last_content_ = std::move(content);
    const auto count = set->size();
    if (publisher_.publish(std::move(*set)))
      health_.log().info("{}: {} endpoint(s)", health_.what(), count);
  }

  net::any_io_executor ex_;
  FileOptions opts_;
  std::string dir_, base_;
  Health health_;
  Publisher publisher_;
  net::steady_timer tick_;
  net::steady_timer settle_;
  net::posix::stream_descriptor inotify_;
  int wd_ = -1;
  std::string watch_error_;
  std::optional<std::string> last_content_;
  bool dirty_ = false;
  bool started_ = false;
  bool stopped_ = false;
};

FileProvider::FileProvider(net::any_io_executor ex, FileOptions opts) {
  if (auto err = validate(opts); !err.empty()) throw std::invalid_argument(err);
  impl_ = std::make_shared<Impl>(ex, std::move(opts));
}

FileProvider::~FileProvider() {
  stop();
}

void FileProvider::start(OnUpdate on_update) {
  impl_->start(std::move(on_update));
}

void FileProvider::stop() {
  impl_->stop();
}

}  // namespace proxer::discovery
