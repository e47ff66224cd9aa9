#pragma once
// Configured routes: which one takes a request, and what it changes on the way. Pure functions
// over Beast headers; no I/O.
#include <boost/beast/http/message.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace proxer::proxy {

namespace bhttp = boost::beast::http;

class Router {
 public:
  explicit Router(std::vector<config::RouteConfig> routes);
  // The first route (in file order) that the request satisfies, or nullptr.
  const config::RouteConfig* match(const bhttp::request_header<>& req) const;
  const std::vector<config::RouteConfig>& routes() const { return routes_; }

 private:
  std::vector<config::RouteConfig> routes_;
};

// The request target after the route's strip_prefix or prefix_rewrite (the query is kept; the
// path always starts with '/').
std::string rewrite_target(const config::RouteConfig& route, std::string_view target);

// The ip_hash / ring_hash key of a request: the header or cookie named by `hash_key`, or the
// client IP when it is "client_ip" or the request lacks them. A view into `req` or `client_ip`.
std::string_view hash_key_of(std::string_view hash_key, const bhttp::request_header<>& req,
                             std::string_view client_ip);

}  // namespace proxer::proxy
