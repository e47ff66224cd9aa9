// Fuzz target: config loading (src/config/config.h) and the value parsers it shares with the CLI.
//
// Input: a TOML file, loaded as a gateway and as an agent config. Each double-quoted run of the
// input (and the whole input) is also given to parse_duration, parse_size, parse_tunnel_spec and
// split_host_port, so the TOML seeds carry realistic values for them too.
//
// Startup code may throw, but the loaders promise errors, not exceptions: any exception escaping
// them (toml::parse_error included) is reported and aborts. Beyond that, a violation of these
// contracts aborts:
//  - Loaded has a value exactly when it has no errors, every error starts with the source name,
//    and a loaded gateway config passes validate() (load runs the same checks);
//  - no error message contains a token from the file (see distinctive() for which ones can be
//    checked without false alarms);
//  - accepted values survive a round trip: format_duration/format_size output parses back to the
//    same value, a tunnel spec rebuilt from its parsed parts parses to the same tunnel, and a
//    host/port pair rebuilt (bracketed when it is IPv6) splits the same way.
#include <toml++/toml.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace {

using namespace proxer::config;

constexpr std::string_view kSource = "fuzz.toml";
// Quoted runs given to the value parsers per input; keeps an execution linear in the input.
constexpr std::size_t kMaxValues = 64;

void require(bool ok) {
  if (!ok) std::abort();
}

// Runs fn, turning an escaping exception into a reported abort with the function's name.
template <typename Fn>
auto no_throw(const char* what, Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s threw: %s\n", what, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s threw a non-std exception\n", what);
  }
  std::abort();
}

// --- Secrets ------------------------------------------------------------------------------------

// What the file says, as the loader could echo it: every key and every non-secret value.
struct Document {
  std::vector<std::string> secrets;  // root token and [[tunnels]] tokens
  std::vector<std::string> visible;
};

void collect(const toml::node& node, bool secret, Document& doc) {
  if (const auto* table = node.as_table()) {
    for (const auto& [key, child] : *table) {
      doc.visible.emplace_back(key.str());
      collect(child, false, doc);
    }
  } else if (const auto* array = node.as_array()) {
    for (const auto& child : *array) collect(child, false, doc);
  } else if (const auto* s = node.as_string()) {
    (secret ? doc.secrets : doc.visible).push_back(s->get());
  } else {
    std::ostringstream out;
    node.visit([&](const auto& value) { out << value; });
    doc.visible.push_back(out.str());
  }
}

Document secrets_of(const toml::table& root) {
  Document doc;
  for (const auto& [key, child] : root) {
    doc.visible.emplace_back(key.str());
    const auto* tunnels = child.as_array();
    if (key.str() == "tunnels" && tunnels) {
      for (const auto& element : *tunnels) {
        const auto* t = element.as_table();
        if (!t) {
          collect(element, false, doc);
          continue;
        }
        for (const auto& [k, v] : *t) {
          doc.visible.emplace_back(k.str());
          collect(v, k.str() == "token", doc);
        }
      }
    } else {
      collect(child, key.str() == "token", doc);
    }
  }
  return doc;
}

// A token whose appearance in a message can only be a leak: long, not part of anything else the
// file says, and containing a character no message template uses, so that it cannot be matched
// by chance against fixed text, key paths, numbers or normalised URLs. Quotes and backslashes
// are out because quoting another value could produce them.
bool distinctive(const std::string& secret, const Document& doc) {
  if (secret.size() < 12) return false;
  if (secret.find_first_of("!$&*+;<^`|~") == std::string::npos) return false;
  if (secret.find_first_of("\"\\") != std::string::npos) return false;
  if (std::string_view(kSource).find(secret) != std::string_view::npos) return false;
  for (const auto& v : doc.visible) {
    if (v.find(secret) != std::string::npos) return false;
  }
  return true;
}

void check_no_secret(const std::vector<std::string>& errors, const Document& doc) {
  for (const auto& secret : doc.secrets) {
    if (!distinctive(secret, doc)) continue;
    for (const auto& e : errors) {
      if (e.find(secret) != std::string::npos) {
        std::fprintf(stderr, "token leaked into: %s\n", e.c_str());
        std::abort();
      }
    }
  }
}

template <typename T>
void check_loaded(const Loaded<T>& loaded, const Document* doc) {
  require(loaded.value.has_value() == loaded.errors.empty());
  for (const auto& e : loaded.errors) require(e.starts_with(kSource));
  if (doc) check_no_secret(loaded.errors, *doc);
}

// --- Value parsers ------------------------------------------------------------------------------

void check_duration(std::string_view s) {
  std::string error;
  const auto d = parse_duration(s, &error);
  if (!d) {
    require(!error.empty());
    return;
  }
  require(d->count() >= 0);
  const auto text = format_duration(*d);
  require(parse_duration(text, nullptr) == d);
}

void check_size(std::string_view s) {
  std::string error;
  const auto n = parse_size(s, &error);
  if (!n) {
    require(!error.empty());
    return;
  }
  require(parse_size(format_size(*n), nullptr) == n);
}

void check_host_port(std::string_view s) {
  std::string host, port;
  if (!split_host_port(s, host, port)) return;
  require(!host.empty() && !port.empty());
  for (char c : port) require(c >= '0' && c <= '9');
  const bool v6 = host.find(':') != std::string::npos;
  const auto again = v6 ? "[" + host + "]:" + port : host + ":" + port;
  std::string host2, port2;
  require(split_host_port(again, host2, port2) && host2 == host && port2 == port);
}

void check_tunnel_spec(std::string_view s) {
  std::string error;
  const auto spec = parse_tunnel_spec(s, &error);
  if (!spec) {
    require(!error.empty());
    return;
  }
  require(!spec->name.empty() && !spec->host.empty() && !spec->port.empty());
  require(spec->url.starts_with(spec->tcp ? "tcp://" : "http://"));
  // The normalised URL is a fixed point: the spec rebuilt from it parses to the same tunnel.
  std::string rebuilt = spec->name;
  if (!spec->token.empty()) rebuilt += "@" + spec->token.reveal();
  rebuilt += "=" + spec->url;
  std::string error2;
  const auto again = parse_tunnel_spec(rebuilt, &error2);
  require(again.has_value());
  require(again->name == spec->name && again->url == spec->url && again->host == spec->host &&
          again->port == spec->port && again->tcp == spec->tcp && again->token == spec->token);
}

void check_values(std::string_view s) {
  no_throw("parse_duration", [&] { check_duration(s); });
  no_throw("parse_size", [&] { check_size(s); });
  no_throw("split_host_port", [&] { check_host_port(s); });
  no_throw("parse_tunnel_spec", [&] { check_tunnel_spec(s); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // The secrets the file holds, if it is TOML at all (a parse error leaves nothing to leak).
  std::optional<Document> doc;
  try {
    const auto root = toml::parse(text, kSource);
    doc = secrets_of(root);
  } catch (const toml::parse_error&) {
  }
  const Document* d = doc ? &*doc : nullptr;

  const auto gateway =
      no_throw("load_gateway_toml", [&] { return load_gateway_toml(text, kSource); });
  check_loaded(gateway, d);
  if (gateway.value) {
    require(no_throw("validate(gateway)", [&] { return validate(*gateway.value); }).empty());
    (void)default_public_url(*gateway.value);
  }

  auto agent = no_throw("load_agent_toml", [&] { return load_agent_toml(text, kSource); });
  check_loaded(agent, d);
  if (agent.value) {
    // The file may leave the gateway and tunnels to the command line, so validate() may still
    // find errors; it must find the same ones when run again (its parsed fields are recomputed).
    const auto first = no_throw("validate(agent)", [&] { return validate(*agent.value); });
    const auto second = no_throw("validate(agent)", [&] { return validate(*agent.value); });
    require(first == second);
    if (d) check_no_secret(first, *d);
    (void)tls_server_name(*agent.value);
  }

  check_values(text);
  std::size_t values = 0;
  for (std::size_t pos = text.find('"'); pos != std::string_view::npos && values < kMaxValues;
       ++values) {
    const auto close = text.find('"', pos + 1);
    if (close == std::string_view::npos) break;
    check_values(text.substr(pos + 1, close - pos - 1));
    pos = text.find('"', close + 1);
  }
  return 0;
}
