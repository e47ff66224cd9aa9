#pragma once
// Load balancing: which endpoint of a cluster takes a request. Pure logic, no I/O: the caller
// says, at each pick, which endpoints can take the request and how busy each is; the balancer
// keeps only its own cursor (round robin), smoothing weights (weighted), random source, or
// hash ring. Deterministic for a given seed, so the tests check exact distributions.
//
//   round_robin    in turn, weights ignored
//   weighted       smooth weighted round robin (nginx): weights 5,1,1 give a a b a c a a
//   least_request  power of two choices: two random candidates, the one with fewer requests in
//                  flight (weight breaks ties)
//   random         weighted random
//   ip_hash        the request's key modulo the usable endpoints
//   ring_hash      consistent hashing on a ring of 100 points per unit of weight; a missing
//                  endpoint's keys go to the next point, the others' keys stay put
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxer::proxy {

enum class Lb { RoundRobin, Weighted, LeastRequest, Random, IpHash, RingHash };
std::optional<Lb> parse_lb(std::string_view name);

// One endpoint as the balancer sees it at pick time.
struct Candidate {
  bool usable = true;        // healthy, connected, not excluded (e.g. already tried)
  std::uint32_t active = 0;  // requests in flight
};

// 64-bit FNV-1a: the hash of request keys and ring points (stable across runs and builds).
std::uint64_t hash64(std::string_view data);

class Balancer {
 public:
  struct Endpoint {
    std::string id;  // stable identity (its URL): places its ring points
    std::uint32_t weight = 1;
  };
  Balancer(Lb lb, std::vector<Endpoint> endpoints, std::uint64_t seed);

  // An index into the endpoints among those `c[i].usable`, or nullopt when none is. `c` has one
  // entry per endpoint. `key` is hash64 of the request's hash key (ip_hash, ring_hash only).
  std::optional<std::size_t> pick(std::span<const Candidate> c, std::uint64_t key = 0);
  // Whether pick() looks at `key` (ip_hash, ring_hash): the key need not be computed otherwise.
  bool uses_key() const { return lb_ == Lb::IpHash || lb_ == Lb::RingHash; }

 private:
  std::optional<std::size_t> pick_weighted(std::span<const Candidate> c);
  std::optional<std::size_t> pick_random(std::span<const Candidate> c);
  std::optional<std::size_t> pick_least(std::span<const Candidate> c);
  std::optional<std::size_t> pick_ring(std::span<const Candidate> c, std::uint64_t key);

  Lb lb_;
  std::vector<Endpoint> endpoints_;
  std::size_t cursor_ = 0;                                   // round_robin
  std::vector<std::int64_t> current_;                        // weighted: smooth weights
  std::vector<std::pair<std::uint64_t, std::size_t>> ring_;  // ring_hash: (point, endpoint)
  std::mt19937_64 rng_;
};

}  // namespace proxer::proxy
