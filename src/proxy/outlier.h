#pragma once
// Passive outlier detection for one cluster: the forwarder reports what happened to each request
// on an endpoint, and the detector decides when that endpoint is taken out of rotation and for
// how long. Pure logic: time is always an argument (never read here), and expiry is evaluated
// lazily when the endpoint is next looked at, so there is no timer and the tests are exact.
// Single-threaded, like the Cluster that owns it.
//
// Rules
//   - consecutive_5xx: a run of 5xx responses; ended by a non-5xx response (Success). A connect
//     failure neither extends nor ends it (it says nothing about the server's responses).
//   - consecutive_connect_failures: a run of connect failures (refused, connect timeout, reset
//     before a response head); ended by any response, 5xx included (the connection worked).
//   - 0 turns a rule off. Reaching a threshold ejects; a run that reached its threshold while the
//     cap (below) forbade the ejection keeps counting, so the next failure ejects once there is
//     room again.
//   - Results recorded while the endpoint is ejected (requests that were already in flight) are
//     ignored: the runs restart from zero when the ejection ends.
//
// Ejection time: base_ejection_time * k, where k is the endpoint's ejection multiplier after
// this ejection (1st: base, 2nd: 2*base, ...), capped at max(max_ejection_time,
// base_ejection_time). The multiplier stops growing once base * k reaches that cap, so a flapping
// endpoint's history is bounded and decays in bounded time.
//
// Decay: each full base_ejection_time an endpoint spends un-ejected, counted from the instant its
// last ejection ended (not from when anyone noticed), lowers its multiplier by one. So at
// `end + n * base` (boundary included) the multiplier is max(0, k - n). Evaluated lazily from
// those instants, so the result does not depend on how often the endpoint was looked at. A new
// ejection stops the decay; the next one starts when that ejection ends.
//
// base_ejection_time = 0 would be an ejection that ends as it starts: it turns ejection off
// (nothing is ejected or counted; the config validator should reject it instead).
//
// Cap on the ejected share (Envoy's rule, without its opt-in always_eject_one_host): an ejection
// happens only if, counting this endpoint, no more than max_ejected_percent of the cluster's N
// endpoints would be ejected: (ejected + 1) * 100 <= percent * N. So 0% never ejects, a lone
// endpoint is ejected only at 100%, 2 endpoints at 50% allow one, 3 at 30% allow none. The cap
// is a promise ("never eject more of the cluster"), so a small cluster is not an exception:
// raise max_ejected_percent for it. Values above 100 act as 100.
//
// `now` must never go backwards from one call to the next (steady_clock readings); ejections and
// decay are settled lazily as of the latest `now` seen for each endpoint.
//
// Endpoints are indices 0..N-1 of the cluster's endpoint list; an index >= N is ignored
// (record() returns false, ejected() false).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "config/config.h"

namespace proxer::proxy {

class OutlierDetector {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // ConnectFailure: no response head came back (refused, connect timeout, reset or EOF before
  // it). Http5xx: a response with a 5xx status. Success: any other response.
  enum class Result { Success, Http5xx, ConnectFailure };

  OutlierDetector(const config::OutlierConfig& cfg, std::size_t endpoints);

  // The cluster now has n endpoints: the first min(n, size()) keep their state, new ones start
  // fresh (not ejected, multiplier 0).
  void resize(std::size_t n);
  std::size_t size() const { return eps_.size(); }

  // Endpoint `ep` takes over the state of `old`'s endpoint `old_ep` (runs, ejection, multiplier,
  // ejection count): the same upstream in a rebuilt cluster (re-discovery) stays ejected.
  void carry_over(std::size_t ep, const OutlierDetector& old, std::size_t old_ep) {
    if (ep < eps_.size() && old_ep < old.eps_.size()) eps_[ep] = old.eps_[old_ep];
  }

  // One finished request on `ep`. True when this call ejected the endpoint.
  bool record(std::size_t ep, Result result, TimePoint now);

  // Whether `ep` is out of rotation at `now` (ejections end at ejected_at + duration, exclusive).
  bool ejected(std::size_t ep, TimePoint now);
  std::size_t ejected_count(TimePoint now);
  // The endpoint's ejection multiplier at `now`, after decay (0 when never ejected or decayed).
  std::uint32_t times_ejected(std::size_t ep, TimePoint now);

  // Counters since construction (for stats).
  std::uint64_t ejections_total() const { return ejections_total_; }
  // Ejections of one endpoint since construction (0 for an index >= size()).
  std::uint64_t ejections_total(std::size_t ep) const {
    return ep < eps_.size() ? eps_[ep].ejections : 0;
  }
  // Thresholds reached while the ejected-share cap forbade the ejection.
  std::uint64_t ejections_refused_total() const { return ejections_refused_; }

 private:
  struct Endpoint {
    std::uint32_t run_5xx = 0;
    std::uint32_t run_connect = 0;
    std::uint32_t multiplier = 0;
    bool is_ejected = false;
    TimePoint until{};       // end of the current ejection (exclusive)
    TimePoint decay_from{};  // start of the current decay period, while not ejected
    std::uint64_t ejections = 0;
  };

  void refresh(Endpoint& e, TimePoint now);  // lazy expiry and decay
  bool room_for_one_more(TimePoint now);
  void eject(Endpoint& e, TimePoint now);

  config::OutlierConfig cfg_;
  config::Duration cap_;              // max(max_ejection_time, base_ejection_time)
  std::uint32_t max_multiplier_ = 1;  // ceil(cap_ / base): the first multiplier that reaches cap_
  std::vector<Endpoint> eps_;
  std::uint64_t ejections_total_ = 0;
  std::uint64_t ejections_refused_ = 0;
};

}  // namespace proxer::proxy
