// proxer::Engine::handle() against a local keep-alive HTTP backend: the cost of one embedded
// request end to end (engine thread, internal connection, gateway request path, pooled upstream
// connection), through the public API only. docs/BENCHMARKS.md, "Embedded engine". Counters:
// cpu_us = CPU time of the whole process per request (caller, engine and backend threads);
// fds_grown = descriptors open after the run minus before it.
//
//   cmake --build build --target embed_bench && build/bench/embed_bench
#include <benchmark/benchmark.h>
#include <proxer/engine.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// A keep-alive HTTP/1.1 backend on 127.0.0.1 on a thread of its own: 200 with a 64-byte body.
class Backend {
 public:
  Backend() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    net::co_spawn(ioc_, accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Backend() {
    ioc_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  net::awaitable<void> accept() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      net::co_spawn(ioc_, serve(std::move(sock)), net::detached);
    }
  }
  static net::awaitable<void> serve(tcp::socket sock) {
    boost::beast::flat_buffer buf;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(sock, buf, req, net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.body().assign(64, 'x');
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await bhttp::async_write(sock, res, net::as_tuple(net::use_awaitable));
      if (wec || !req.keep_alive()) co_return;
    }
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

std::string config(std::uint16_t port) {
  return R"(
[[routes]]
name = "api"
path_prefix = "/api/"
cluster = "backend"

[clusters.backend]
endpoints = ["http://127.0.0.1:)" +
         std::to_string(port) + "\"]\n";
}

proxer::Request request() {
  proxer::Request r;
  r.target = "/api/item?id=1";
  r.headers = {{"Host", "bench.test"}, {"Accept", "*/*"}};
  r.client_address = "192.0.2.1:4000";
  return r;
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// CPU time of the whole process (the caller, the engine's thread, the backend's), in µs.
double process_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

struct Fixture {
  Backend backend;
  std::unique_ptr<proxer::Engine> engine;
  explicit Fixture(proxer::EngineOptions o) {
    engine = proxer::Engine::create(config(backend.port()), std::move(o));
    engine->start();
  }
};

// One handle() at a time, each waited for: the latency of a request through the engine.
void run_sequential(benchmark::State& state, proxer::EngineOptions o) {
  Fixture f(std::move(o));
  const auto fds_before = open_fds();
  const auto cpu_before = process_cpu_us();
  for (auto _ : state) {
    auto r = f.engine->handle(request()).get();
    if (r.status != 200) {
      state.SkipWithError("a request did not answer 200");
      break;
    }
  }
  state.counters["cpu_us"] = (process_cpu_us() - cpu_before) /
                             static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
  state.counters["fds_grown"] = static_cast<double>(open_fds()) - static_cast<double>(fds_before);
  state.SetItemsProcessed(state.iterations());
}

// `state.range(0)` handle() calls in flight from one thread, waited for together.
void run_batch(benchmark::State& state, proxer::EngineOptions o) {
  Fixture f(std::move(o));
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::vector<std::future<proxer::Response>> pending;
  pending.reserve(batch);
  const auto cpu_before = process_cpu_us();
  for (auto _ : state) {
    pending.clear();
    for (std::size_t i = 0; i < batch; ++i) pending.push_back(f.engine->handle(request()));
    for (auto& p : pending) {
      if (p.get().status != 200) state.SkipWithError("a request did not answer 200");
    }
  }
  const auto n = std::max<std::int64_t>(state.iterations() * static_cast<std::int64_t>(batch), 1);
  state.counters["cpu_us"] = (process_cpu_us() - cpu_before) / static_cast<double>(n);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void BM_EmbedHandleSequential(benchmark::State& state) {
  run_sequential(state, {});
}
BENCHMARK(BM_EmbedHandleSequential)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_EmbedHandleBatch(benchmark::State& state) {
  run_batch(state, {});
}
BENCHMARK(BM_EmbedHandleBatch)->Arg(16)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The same with reuse turned off: a new internal connection for every call.
proxer::EngineOptions no_reuse() {
  proxer::EngineOptions o;
  o.max_idle_connections = 0;
  return o;
}

void BM_EmbedHandleSequentialNoReuse(benchmark::State& state) {
  run_sequential(state, no_reuse());
}
BENCHMARK(BM_EmbedHandleSequentialNoReuse)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_EmbedHandleBatchNoReuse(benchmark::State& state) {
  run_batch(state, no_reuse());
}
BENCHMARK(BM_EmbedHandleBatchNoReuse)->Arg(16)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  // The engine's loggers write to stderr at spdlog's level: keep warnings out of the timings.
  proxer::set_log_level("error");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
