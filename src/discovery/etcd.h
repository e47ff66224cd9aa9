#pragma once
// etcd v3 discovery through etcd's JSON gateway (HTTP/1.1, no gRPC library): every key under
// `prefix` is one endpoint, its value parsed by parse_target() ("host:port" or a JSON object).
//
// 1. POST /v3/kv/range {key, range_end} reads the whole prefix and its revision R; the set is
//    published.
// 2. POST /v3/watch {create_request: {key, range_end, start_revision: R+1, progress_notify}} is a
//    long chunked response, one JSON message per change; PUT and DELETE events update the set.
// 3. When the watch breaks (connection lost, idle deadline, etcd error, cancelled) the provider
//    waits the next backoff delay and starts again at 1; when etcd says the revision was
//    compacted it starts again at once. The range is re-read every time, so nothing that changed
//    while the watch was down is missed.
//
// A value that does not parse is skipped (the key is left out of the set) with one warning that
// names the key, repeated only if the value changes. No read is unbounded: a range response and a
// watch message are each limited to max_response_bytes, the response heads to 16 KiB. No wait is
// unbounded: connect, the range exchange and the watch's creation have deadlines; an established
// watch may be silent for idle_timeout. etcd sends a progress notification on an idle watch every
// --experimental-watch-progress-notify-interval (10 minutes by default), so idle_timeout must be
// longer than that; TCP keep-alive (probes after 30 s idle) notices a peer that vanished sooner.
//
// Not supported yet: TLS to etcd (https://), etcd authentication, several endpoints.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/asio.h"
#include "discovery/provider.h"

namespace proxer::discovery {

struct EtcdOptions {
  std::string endpoint = "http://127.0.0.1:2379";  // http://host:port (port required)
  std::string prefix;  // key prefix, e.g. "/services/web/" (required, raw bytes)
  std::chrono::milliseconds connect_timeout{5'000};     // resolve + TCP connect
  std::chrono::milliseconds request_timeout{10'000};    // range exchange; watch until "created"
  std::chrono::milliseconds idle_timeout{15 * 60'000};  // an established watch silent this long
  std::chrono::milliseconds reconnect_min{500};         // backoff after a failure (core/backoff.h)
  std::chrono::milliseconds reconnect_max{30'000};
  std::size_t max_response_bytes = 16u << 20;  // a range response body; one watch message
};

// "" when the options are usable, else the first problem ("etcd: prefix is empty").
std::string validate(const EtcdOptions& opts);

class EtcdProvider final : public Provider {
 public:
  // Throws std::invalid_argument with validate()'s message for unusable options.
  EtcdProvider(net::any_io_executor ex, EtcdOptions opts);
  ~EtcdProvider() override;
  void start(OnUpdate on_update) override;
  void stop() override;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace proxer::discovery
