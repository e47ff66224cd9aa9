#pragma once
// Internals shared by load.cpp, validate.cpp and values.cpp; not part of the public API.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/quote.h"

namespace proxer::config::detail {

// One validation finding. `path` is the TOML key path ("timeouts.request", "tunnels[1].url");
// `related` names a second key a cross-field rule involves, so the loader can drop the finding
// when that key already failed to load (its default would make the message misleading).
struct Issue {
  std::string path;
  std::string message;
  std::string related;
};

// Whether required-but-unset keys are errors: not while loading a file that the command line may
// complete later, yes for the assembled config.
enum class Completeness { ValuesOnly, Required };

std::vector<Issue> check_gateway(const GatewayConfig& cfg);
std::vector<Issue> check_agent(AgentConfig& cfg, Completeness completeness);

// "path: message" for the public validate() results.
std::vector<std::string> to_strings(const std::vector<Issue>& issues);

// Local target of a tunnel: "http://h[:p][/]", "tcp://h:p", "h:p" or "p". Fills host, port and
// tcp of `out`; returns the normalised URL, or nullopt with *error set.
std::optional<std::string> parse_target(std::string_view url, TunnelConfig& out,
                                        std::string* error);

// Tunnel name rule (a DNS label); returns an explanation when invalid.
std::optional<std::string> tunnel_name_error(std::string_view name);

// Token rule shared by the gateway token, the agent token and tunnel tokens. The message never
// contains the token.
std::optional<std::string> token_error(const Secret& token);

// Host of an address or URL: hostname, IPv4 or IPv6 (without brackets).
bool valid_host(std::string_view host);
// "%41" -> "A"; malformed escapes are kept as they are.
std::string percent_decode(std::string_view in);
// An IPv4 or IPv6 address (no host name, no zone).
bool ip_literal(std::string_view host);

// Port digits to a number; nullopt when not 0..65535 (or 1..65535 without allow_zero).
std::optional<std::uint16_t> parse_port(std::string_view port, bool allow_zero);

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);

// Quoted and shortened for error messages: "\"abc\"", non-printable bytes escaped.
using proxer::quote;

}  // namespace proxer::config::detail
