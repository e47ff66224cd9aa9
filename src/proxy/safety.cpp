#include "proxy/safety.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>

#include "core/cidr.h"

namespace proxer::proxy {

namespace {

http::EscapedSlashes escaped_slashes(std::string_view v) {
  if (v == "reject") return http::EscapedSlashes::Reject;
  if (v == "decode") return http::EscapedSlashes::Decode;
  return http::EscapedSlashes::Keep;
}

http::UnderscoreHeaders underscores(std::string_view v) {
  if (v == "allow") return http::UnderscoreHeaders::Allow;
  if (v == "reject") return http::UnderscoreHeaders::Reject;
  return http::UnderscoreHeaders::Drop;
}

Rejection path_rejection(http::PathVerdict v, std::string_view when) {
  Rejection r{std::string(http::verdict_code(v)), std::string(http::verdict_message(v))};
  r.message.append(when);
  return r;
}

// RFC 9112 §3.2.2: a server must accept a request target in absolute-form
// ("http://host:port/path?query", sent by clients that talk to proxer as to a proxy); its
// authority replaces Host (§3.2.2: the Host field is then ignored) and the target becomes the
// origin-form path and query. Returns false when the target is absolute-form but malformed
// (no authority, or a userinfo part, which RFC 9110 §4.2.4 forbids for http(s)).
bool absolute_to_origin_form(bhttp::request_header<>& req) {
  const auto t = req.target();
  std::size_t scheme_len = 0;
  if (t.size() >= 7 && boost::beast::iequals(t.substr(0, 7), "http://")) scheme_len = 7;
  if (t.size() >= 8 && boost::beast::iequals(t.substr(0, 8), "https://")) scheme_len = 8;
  if (scheme_len == 0) return true;  // origin-form (or something normalize_target refuses)
  const auto rest = t.substr(scheme_len);
  const auto end = rest.find_first_of("/?");
  const auto authority = rest.substr(0, end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  std::string origin = "/";
  if (end != std::string_view::npos) {
    origin.assign(rest.substr(end));
    if (origin.front() == '?') origin.insert(0, "/");
  }
  const std::string host(authority);
  req.set(bhttp::field::host, host);
  req.target(origin);
  return true;
}

}  // namespace

RequestSafety::RequestSafety(const config::HttpConfig& cfg)
    : path{cfg.normalize_path, cfg.merge_slashes, escaped_slashes(cfg.escaped_slashes)},
      underscores(proxy::underscores(cfg.headers_with_underscores)),
      hide_response_headers(cfg.hide_response_headers) {
  std::vector<Cidr> nets;
  for (const auto& text : cfg.trusted_proxies) {
    if (auto c = Cidr::parse(text)) nets.push_back(*c);  // validate() refused the rest
  }
  trusted_proxies = http::CidrSet(std::move(nets));
}

std::optional<Rejection> RequestSafety::sanitize_request(bhttp::request_header<>& req) const {
  if (!absolute_to_origin_form(req)) {
    return Rejection{"bad_path", "malformed absolute-form request target (no host, or userinfo)"};
  }
  auto n = http::normalize_target(req.target(), path);
  if (n.verdict != http::PathVerdict::Ok) return path_rejection(n.verdict, "");
  if (n.changed) req.target(n.target);
  if (auto name = http::apply_underscore_policy(req, underscores)) {
    return Rejection{"header_with_underscore",
                     "header names with underscores are refused here: " + *name};
  }
  return std::nullopt;
}

std::optional<Rejection> RequestSafety::check_rewritten(const config::RouteConfig& route,
                                                        std::string_view original,
                                                        std::string& rewritten) const {
  if (!path.normalize || route.path_prefix.empty() ||
      (!route.strip_prefix && route.prefix_rewrite.empty())) {
    return std::nullopt;
  }
  // The rest after the prefix, as a path of its own: it must not climb above its new base.
  auto rest = original.substr(std::min(route.path_prefix.size(), original.size()));
  rest = rest.substr(0, rest.find('?'));
  std::string alone = "/";
  alone.append(rest);
  if (http::normalize_target(alone, path).verdict == http::PathVerdict::Traversal) {
    return Rejection{std::string(http::verdict_code(http::PathVerdict::Traversal)),
                     "the path climbs above the prefix of route '" + route.name + "' ('..')"};
  }
  auto n = http::normalize_target(rewritten, path);
  if (n.verdict != http::PathVerdict::Ok) {
    return path_rejection(n.verdict, " after the route's prefix rewrite");
  }
  if (n.changed) rewritten = std::move(n.target);
  return std::nullopt;
}

}  // namespace proxer::proxy
