#pragma once
// Pure HTTP/1.1 rules used on the gateway's forwarding path: routing a request to a tunnel,
// header hygiene (hop-by-hop, Forwarded, tunnel tokens), framing checks against request
// smuggling, and head serialisation. Nothing here does I/O, throws, or keeps state.
//
// What Beast 1.81's request_parser already rejects (measured by feeding raw heads to
// request_parser<string_body>; tests/unit/http/head_check_test.cpp `BeastBaseline` keeps the
// measurement as a test, so a Boost upgrade that changes it is noticed):
//   rejected by Beast: Content-Length together with Transfer-Encoding (either order); two
//     *different* Content-Length values; a Content-Length that is not plain digits (+5, -5, 0x5,
//     "1 2", empty, overflow); two Transfer-Encoding lines; whitespace between field name and
//     colon; bare LF as a line end; bare CR; NUL and other CTLs (except HTAB) in names, values and
//     the target; an empty field name; a line without a colon; versions other than 1.0/1.1; a
//     leading empty line.
//   ACCEPTED by Beast, although a proxy must refuse them:
//     - obs-fold (a field line starting with SP/HTAB): Beast unfolds it into "b c";
//     - two equal Content-Length lines ("5" and "5"), and the list form "Content-Length: 5, 5";
//     - a Transfer-Encoding whose final coding is not chunked ("gzip", "chunked, gzip",
//       "xchunked", "chunked, chunked"): Beast then takes the request body to be EMPTY and
//       parses the body bytes as the next request, the textbook smuggling desync;
//     - Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing);
//     - a missing Host in HTTP/1.1 and two Host lines (RFC 9112 §3.2: must be 400; two Host
//       values also make Host routing ambiguous).
//   Beast is stricter on one point: it refuses a Connection value that is not a token list
//   ("keep -alive"). A differential run of 300,000 mutated heads found no other head that
//   check_request_head() passes and Beast refuses.
//   Beast 1.81 also does not validate values given to fields::set/insert: a value containing
//   CRLF is stored as is and its serializer would emit it, so serialize_*_head() below sanitises.
// check_request_head() rejects every case of both lists (defence in depth: the gateway never
// depends on one parser's leniency), and check_response_head() does the framing part for
// responses.
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxer::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// --- Lexical rules (RFC 9110 §5.6.2, §5.5) -----------------------------------------------------

// Whether s is a token: a method or a field name.
bool is_token(std::string_view s);
// Whether s may be sent as a field value: HTAB, SP, VCHAR and obs-text only (no CTL, no DEL).
bool is_field_value(std::string_view s);

// --- Routing -----------------------------------------------------------------------------------

// Tunnel names: 1-63 characters of [a-z0-9-], not starting or ending with '-' (a DNS label).
// The same rule as proto::valid_tunnel_name, restated because proxer_http does not link proto.
bool valid_tunnel_name(std::string_view name);

// Host routing: "app.tunnel.example.com:8080" with domain "tunnel.example.com" -> "app".
// Case-insensitive (the result is lower case), a port on either side ignored, a trailing dot on
// either side tolerated. Only a single label in front of the domain matches ("a.b.domain" ->
// nullopt), and it must be a valid tunnel name. IPv6 literals ("[::1]:80") never match, nor does an
// empty domain.
std::optional<std::string> tunnel_from_host(std::string_view host_header, std::string_view domain);

// The host a Host header names: whitespace trimmed, the port and a trailing dot removed; an IPv6
// literal keeps its brackets ("[::1]"). nullopt when the port is not digits (which also refuses
// an unbracketed IPv6 address).
std::optional<std::string_view> bare_host(std::string_view host_header);

// Path routing: "/t/app/x/y?q=1" -> {"app", "/x/y?q=1"}; "/t/app" -> {"app", "/"};
// "/t/app?q" -> {"app", "/?q"}; "/t/", "/x" or an invalid name -> nullopt. The path is
// case-sensitive: "/t/App" does not match (tunnel names are lower case).
struct PathRoute {
  std::string tunnel;
  std::string rest;  // origin-form target to send to the tunnel; always starts with '/'
};
std::optional<PathRoute> tunnel_from_path(std::string_view target);

// --- Header hygiene ----------------------------------------------------------------------------

// Removes hop-by-hop headers (RFC 9110 §7.6.1): Connection and every header it names (comma
// lists, any case, across several Connection lines), Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding (the caller re-frames bodies), Proxy-Authenticate, Proxy-Authorization, and
// Upgrade unless keep_upgrade. With keep_upgrade and an Upgrade header present, "Connection:
// Upgrade" is put back so the next hop still sees an upgrade request.
// Host and Content-Length are never removed because Connection names them: a client must not be
// able to strip the routing key or the framing the parser already committed to.
// Works for request and response fields alike.
void strip_hop_by_hop(bhttp::fields& f, bool keep_upgrade);

// Adds X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host (the original Host; skipped when
// host is empty) and the RFC 7239 Forwarded element "for=..;proto=..;host=..". IPv6 addresses
// are written as for="[::1]"; values that are not tokens (e.g. "host:8080") are quoted.
// From a trusted peer (a proxy in front of the gateway, http.trusted_proxies): client_ip is
// appended to the existing X-Forwarded-For and Forwarded lists (several lines merged into one),
// and an existing X-Forwarded-Proto or X-Forwarded-Host is kept (it describes the request the
// peer received). From any other peer, whatever it sent of Forwarded, X-Forwarded-For,
// X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port and X-Real-IP is removed first, so the
// upstream sees only what the gateway itself observed.
void add_forwarded(bhttp::fields& f, std::string_view client_ip, std::string_view proto,
                   std::string_view host, bool trusted_peer);

// Where a per-tunnel token can come from.
enum class TokenSource {
  Bearer,  // Authorization: Bearer <t>
  Basic,   // Authorization: Basic base64(user:<t>)
  Header,  // X-Proxer-Token: <t>
};
struct TokenCandidate {
  std::string value;
  TokenSource source;
};
// Every token candidate found in the request, X-Proxer-Token first. Malformed Authorization
// values (bad base64, no colon, empty token, unknown scheme) yield nothing rather than an error:
// the caller answers 401 when no candidate matches.
std::vector<TokenCandidate> tunnel_token_sources(const bhttp::fields& f);
// The same candidates without their source. The caller compares each in constant time.
std::vector<std::string> tunnel_token_candidates(const bhttp::fields& f);

// After a token is accepted, removes X-Proxer-Token and, only if it carried the token
// (source Bearer or Basic), Authorization, so the secret never reaches the local service.
void strip_tunnel_token(bhttp::fields& f, bool authorization_used);

// --- Framing checks (request smuggling, RFC 9112 §2.2, §3, §5, §6)
// --------------------------------

// Length of the head in buf: the offset just past the first "\r\n\r\n", or npos when buf holds
// no complete head yet.
std::size_t find_head_end(std::string_view buf);

// Checks the raw request head (request line through the empty line; bytes after the first empty
// line are not looked at) for what a proxy must refuse with 400. Returns nullopt when it is fine,
// else a short reason. Rejects: NUL bytes, CR not followed by LF, LF not preceded by CR, control
// characters, a malformed request line or a version other than HTTP/1.0 and HTTP/1.1, obs-fold,
// whitespace between field name and colon, empty or non-token field names, more than one
// Content-Length (even equal ones, and the list form), a Content-Length that is not 1-19 digits,
// Content-Length together with Transfer-Encoding, any Transfer-Encoding other than exactly
// "chunked" (see below), Transfer-Encoding in HTTP/1.0, no Host in HTTP/1.1, more than one Host.
//
// Transfer-Encoding: RFC 9112 allows codings before the final "chunked" ("gzip, chunked"). We
// accept only the single coding "chunked" (any case, OWS around it), for simplicity and because
// the gateway re-frames bodies: stripping Transfer-Encoding would silently drop any other coding.
// Real clients do not send anything else.
//
// Single pass, no allocation unless it fails; it runs on every request.
std::optional<std::string> check_request_head(std::string_view raw_head);

// The framing part of the same checks for a response head from upstream (the caller answers 502):
// status line "HTTP/1.x NNN[ reason]", then the same field-line, Content-Length and
// Transfer-Encoding rules. Host is not required.
std::optional<std::string> check_response_head(std::string_view raw_head);

// --- Serialisation -----------------------------------------------------------------------------

// Appends "METHOD target HTTP/1.1\r\n", one "Name: value\r\n" per field and "\r\n" to out.
// Because Beast does not validate values set by code (config rewrites, templates), CR, LF, NUL and
// other control characters in values are written as SP, and a field whose name is not a token is
// left out: nothing set on a header can inject another header line.
void serialize_request_head(const bhttp::request_header<>& h, std::string& out);
// The forwarding fields serialize_forward_head() last wrote for one client connection, and what
// they were made from. The next request of the connection usually has the same client address,
// scheme and Host, and then gets a copy instead of having them written again (which was about
// half the cost of writing the head). Owned by the connection; never shared between connections.
struct ForwardingMemo {
  bool valid = false;
  unsigned written = 0;  // which of the four fields were written
  std::string ip, proto, host;
  std::string fields;  // "X-Forwarded-For: ...\r\n..." as written
};

// The head the gateway sends upstream for a client's request, written in one pass from the
// parsed request (no changes to its fields):
struct ForwardEdits {
  std::string_view target;     // the request-target to send (after routing and rewrites)
  bool keep_upgrade = false;   // an upgrade request: Upgrade kept, "Connection: Upgrade" written
  std::string_view client_ip;  // for X-Forwarded-For and Forwarded (see add_forwarded)
  std::string_view proto;      // X-Forwarded-Proto and proto=; empty: neither
  std::string_view host;       // the client's Host: X-Forwarded-Host and host=; empty: neither
  bool trusted_peer = false;   // keep and extend what a trusted proxy sent (add_forwarded)
  std::span<const std::string> remove;                       // a route's request_headers.remove
  std::span<const std::pair<std::string, std::string>> set;  // ...set (replaces the name)
  std::span<const std::pair<std::string, std::string>> add;  // ...add
  bool chunked = false;  // write "Transfer-Encoding: chunked" (the gateway re-frames the body)
  // The connection's memo of its forwarding fields (nullptr: none). Not used when a trusted
  // peer's X-Forwarded-For or Forwarded lines are merged (those change per request).
  ForwardingMemo* memo = nullptr;
};
// Writes what erasing Expect, strip_hop_by_hop(keep_upgrade), add_forwarded(), the route's
// remove/set/add, setting the target and Transfer-Encoding, then serialize_request_head() would
// write, with the same sanitising and up to the order of fields of different names: the
// client's fields that go on come first, in their stored order, then Connection: Upgrade, the
// forwarding headers, the route's set and add, and Transfer-Encoding (Beast would file an added
// field after the last one of its name). Costs two walks over the fields and no allocation
// unless a trusted peer's lists are merged.
void serialize_forward_head(const bhttp::request_header<>& req, const ForwardEdits& e,
                            std::string& out);

// Appends "HTTP/1.1 NNN reason\r\n" + fields + "\r\n" to out, with the same sanitising. An empty
// reason is replaced by the standard one.
void serialize_response_head(const bhttp::response_header<>& h, std::string& out);

// A complete small response that proxer itself generates: status line, Content-Type text/plain;
// charset=utf-8, Content-Length, Cache-Control: no-store, "X-Proxer-Error: <error_code>"
// (machine-readable: "tunnel_not_found", "agent_unavailable", "local_refused", "timeout", ...),
// Connection: close when !keep_alive, body = message + "\n". For a HEAD request the caller sends
// only the head (everything up to and including the first empty line).
std::string error_response(unsigned status, std::string_view error_code, std::string_view message,
                           bool keep_alive);

// Whether the client asked to keep the connection: HTTP/1.1 unless a Connection token says
// "close"; HTTP/1.0 only with a "keep-alive" token.
bool wants_keep_alive(const bhttp::request_header<>& h);
// An HTTP/1.1 request with a Connection token "upgrade" and a non-empty Upgrade header.
bool is_upgrade(const bhttp::request_header<>& h);

}  // namespace proxer::http
