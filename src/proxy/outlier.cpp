#include "proxy/outlier.h"

#include <algorithm>
#include <limits>

namespace proxer::proxy {

namespace {

std::uint32_t saturating_inc(std::uint32_t v) {
  return v == std::numeric_limits<std::uint32_t>::max() ? v : v + 1;
}

}  // namespace

OutlierDetector::OutlierDetector(const config::OutlierConfig& cfg, std::size_t endpoints)
    : cfg_(cfg), cap_(std::max(cfg.max_ejection_time, cfg.base_ejection_time)), eps_(endpoints) {
  if (cfg_.base_ejection_time.count() < 0) cfg_.base_ejection_time = config::Duration{0};
  if (cap_.count() < 0) cap_ = config::Duration{0};
  // Grow the multiplier only while base * multiplier is below the cap: beyond it, growth would
  // only lengthen the decay without lengthening any ejection. So the largest is ceil(cap / base).
  const auto base = cfg_.base_ejection_time;
  if (base.count() > 0) {
    const auto whole = cap_ / base + (cap_ % base != config::Duration{0} ? 1 : 0);
    max_multiplier_ = static_cast<std::uint32_t>(
        std::clamp<decltype(whole)>(whole, 1, std::numeric_limits<std::uint32_t>::max()));
  }
}

void OutlierDetector::resize(std::size_t n) {
  eps_.resize(n);
}

void OutlierDetector::refresh(Endpoint& e, TimePoint now) {
  if (e.is_ejected) {
    if (now < e.until) return;
    e.is_ejected = false;
    e.run_5xx = 0;
    e.run_connect = 0;
    e.decay_from = e.until;
  }
  const auto base = cfg_.base_ejection_time;
  if (e.multiplier == 0 || base.count() == 0 || now <= e.decay_from) return;
  const std::int64_t periods = (now - e.decay_from) / base;  // whole periods elapsed
  const auto steps = static_cast<std::uint32_t>(std::min<std::int64_t>(periods, e.multiplier));
  e.multiplier -= steps;
  e.decay_from += base * steps;
}

bool OutlierDetector::room_for_one_more(TimePoint now) {
  // The endpoint asking is not ejected, so ejected_now + 1 <= N: a percent above 100 acts as 100.
  const std::uint64_t percent = cfg_.max_ejected_percent;
  const auto ejected_now = static_cast<std::uint64_t>(ejected_count(now));
  return (ejected_now + 1) * 100 <= percent * eps_.size();
}

void OutlierDetector::eject(Endpoint& e, TimePoint now) {
  e.multiplier = std::min(saturating_inc(e.multiplier), max_multiplier_);
  // Computed so that base * multiplier is formed only when it is <= cap_ (no overflow).
  const auto base = cfg_.base_ejection_time;
  config::Duration duration{0};
  if (base.count() > 0) duration = e.multiplier > cap_ / base ? cap_ : base * e.multiplier;
  e.is_ejected = true;
  e.until = now + duration;
  e.run_5xx = 0;
  e.run_connect = 0;
  ++e.ejections;
  ++ejections_total_;
}

bool OutlierDetector::record(std::size_t ep, Result result, TimePoint now) {
  if (ep >= eps_.size()) return false;
  Endpoint& e = eps_[ep];
  refresh(e, now);
  if (e.is_ejected) return false;
  bool tripped = false;
  switch (result) {
    case Result::Success:
      e.run_5xx = 0;
      e.run_connect = 0;
      return false;
    case Result::Http5xx:
      e.run_connect = 0;
      e.run_5xx = saturating_inc(e.run_5xx);
      tripped = cfg_.consecutive_5xx != 0 && e.run_5xx >= cfg_.consecutive_5xx;
      break;
    case Result::ConnectFailure:
      e.run_connect = saturating_inc(e.run_connect);
      tripped = cfg_.consecutive_connect_failures != 0 &&
                e.run_connect >= cfg_.consecutive_connect_failures;
      break;
  }
  if (!tripped || cfg_.base_ejection_time.count() == 0) return false;
  if (!room_for_one_more(now)) {
    ++ejections_refused_;
    return false;
  }
  eject(e, now);
  return true;
}

bool OutlierDetector::ejected(std::size_t ep, TimePoint now) {
  if (ep >= eps_.size()) return false;
  refresh(eps_[ep], now);
  return eps_[ep].is_ejected;
}

std::size_t OutlierDetector::ejected_count(TimePoint now) {
  std::size_t n = 0;
  for (auto& e : eps_) {
    refresh(e, now);
    n += e.is_ejected ? 1 : 0;
  }
  return n;
}

std::uint32_t OutlierDetector::times_ejected(std::size_t ep, TimePoint now) {
  if (ep >= eps_.size()) return 0;
  refresh(eps_[ep], now);
  return eps_[ep].multiplier;
}

}  // namespace proxer::proxy
