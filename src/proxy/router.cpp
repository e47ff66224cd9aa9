#include "proxy/router.h"

#include <boost/beast/core/string.hpp>

#include "http/rules.h"

namespace proxer::proxy {

namespace {

bool host_matches(std::string_view pattern, std::string_view host_header) {
  if (pattern.empty()) return true;
  const auto bare = http::bare_host(host_header);
  if (!bare) return false;
  const auto host = *bare;
  if (pattern.starts_with("*.")) {
    const auto suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() &&
           boost::beast::iequals(host.substr(host.size() - suffix.size()), suffix) &&
           host.substr(0, host.size() - suffix.size()).find('.') == std::string_view::npos;
  }
  return boost::beast::iequals(pattern, host);
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace

Router::Router(std::vector<config::RouteConfig> routes) : routes_(std::move(routes)) {}

const config::RouteConfig* Router::match(const bhttp::request_header<>& req) const {
  const auto target = std::string_view(req.target());
  const auto path = path_of(target);
  const auto host = std::string_view(req[bhttp::field::host]);
  const auto method = std::string_view(req.method_string());
  for (const auto& r : routes_) {
    if (!host_matches(r.host, host)) continue;
    if (!r.path_prefix.empty() && !path.starts_with(r.path_prefix)) continue;
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), method) == r.methods.end()) {
      continue;
    }
    bool headers_ok = true;
    for (const auto& [name, value] : r.headers) {
      auto it = req.find(name);
      if (it == req.end() || it->value() != value) {
        headers_ok = false;
        break;
      }
    }
    if (headers_ok) return &r;
  }
  return nullptr;
}

std::string rewrite_target(const config::RouteConfig& route, std::string_view target) {
  if (route.path_prefix.empty() || (!route.strip_prefix && route.prefix_rewrite.empty())) {
    return std::string(target);
  }
  std::string_view rest = target.substr(std::min(route.path_prefix.size(), target.size()));
  std::string out = route.strip_prefix ? std::string() : route.prefix_rewrite;
  // Join without doubling or losing the '/' between the new prefix and the rest.
  if (!out.empty() && out.back() == '/' && rest.starts_with('/')) rest.remove_prefix(1);
  if ((out.empty() || out.back() != '/') && !rest.empty() && rest.front() != '/' &&
      rest.front() != '?') {
    out += '/';
  }
  out += rest;
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

std::string_view hash_key_of(std::string_view hash_key, const bhttp::request_header<>& req,
                             std::string_view client_ip) {
  if (hash_key.starts_with("header:")) {
    if (auto it = req.find(hash_key.substr(7)); it != req.end()) return it->value();
  } else if (hash_key.starts_with("cookie:")) {
    const auto name = hash_key.substr(7);
    for (auto it = req.find(bhttp::field::cookie);
         it != req.end() && it->name() == bhttp::field::cookie; ++it) {
      std::string_view cookies = it->value();
      while (!cookies.empty()) {
        auto end = cookies.find(';');
        auto item = cookies.substr(0, end);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        if (item.starts_with(name) && item.size() > name.size() && item[name.size()] == '=') {
          return item.substr(name.size() + 1);
        }
        if (end == std::string_view::npos) break;
        cookies.remove_prefix(end + 1);
      }
    }
  }
  return client_ip;
}

}  // namespace proxer::proxy
