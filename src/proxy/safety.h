#pragma once
// The gateway-wide request sanitising of [http] (config::HttpConfig), parsed once into the
// options of http/sanitize.h, and the two points of a request's life where it applies:
//   1. sanitize_request(), right after the head is parsed and before any routing: an
//      absolute-form target ("http://host/path") becomes origin-form with its authority as Host
//      (RFC 9112 §3.2.2), the path is normalised (what routes match is what the upstream
//      gets) and header names with underscores are dropped or refused;
//   2. check_rewritten(), after a route's strip_prefix / prefix_rewrite: the new path is
//      checked and normalised again, so a rewrite cannot produce a path that climbs above the
//      root or above the prefix it put in place.
// Pure: no I/O.
#include <boost/beast/http/message.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/sanitize.h"

namespace proxer::proxy {

namespace bhttp = boost::beast::http;

// Why a request is refused (the caller answers 400 with `code` as X-Proxer-Error).
struct Rejection {
  std::string code;
  std::string message;
};

struct RequestSafety {
  // `cfg` must have passed validation (unknown enum strings fall back to the defaults).
  explicit RequestSafety(const config::HttpConfig& cfg);
  RequestSafety() : RequestSafety(config::HttpConfig{}) {}

  http::PathOptions path;
  http::UnderscoreHeaders underscores = http::UnderscoreHeaders::Drop;
  http::CidrSet trusted_proxies;
  // Removed from every response relayed to a client (http::ResponseEdits::hide).
  std::vector<std::string> hide_response_headers;

  // Whether X-Forwarded-* from this client address are kept (it is a trusted proxy).
  bool trusts(std::string_view client_ip) const { return trusted_proxies.contains(client_ip); }

  // Step 1 (see above). Sets the normalised target on `req`; nullopt when it may go on.
  std::optional<Rejection> sanitize_request(bhttp::request_header<>& req) const;
  // Step 2, for `route`'s rewrite of `original` (the normalised target it matched) into
  // `rewritten`: refused when the part after path_prefix climbs above the new prefix (a ".."
  // that the segment-blind prefix split left: "/static../x" with path_prefix "/static"), or the
  // result above the root; else `rewritten` is normalised in place. Without normalize_path, or
  // when the route rewrites nothing, nothing is checked.
  std::optional<Rejection> check_rewritten(const config::RouteConfig& route,
                                           std::string_view original, std::string& rewritten) const;
};

}  // namespace proxer::proxy
