#include "proxy/breaker.h"

#include <utility>

namespace proxer::proxy {

CircuitBreaker::Token& CircuitBreaker::Token::operator=(Token&& other) noexcept {
  if (this != &other) {
    release();
    breaker_ = std::exchange(other.breaker_, nullptr);
    resource_ = other.resource_;
  }
  return *this;
}

void CircuitBreaker::Token::release() {
  if (breaker_ == nullptr) return;
  --breaker_->active_[index(resource_)];
  breaker_ = nullptr;
}

CircuitBreaker::CircuitBreaker(const config::BreakerConfig& cfg)
    : limit_{cfg.max_connections, cfg.max_pending, cfg.max_requests, cfg.max_retries} {}

std::optional<CircuitBreaker::Token> CircuitBreaker::try_acquire(Resource r) {
  const std::size_t i = index(r);
  if (active_[i] >= limit_[i]) {
    ++overflow_[i];
    return std::nullopt;
  }
  ++active_[i];
  return Token(this, r);
}

}  // namespace proxer::proxy
