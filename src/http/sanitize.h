#pragma once
// Request sanitising on the gateway's forwarding path: request-target normalisation (so that
// what routes match is what the upstream sees, and a path cannot climb above the root), the
// policy for header names with underscores, the set of addresses trusted to send X-Forwarded-*,
// and removal of response headers the operator hides. Pure functions: no I/O, no state.
// The configuration ([http] in the gateway file) is turned into these options by the proxy
// layer (proxy/safety.h); docs/SECURITY.md explains what is normalised and rejected, and why.
#include <boost/beast/http/fields.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cidr.h"

namespace proxer::http {

namespace bhttp = boost::beast::http;

// --- Request-target normalisation ---------------------------------------------------------------

// What to do with %2F and %5C (an encoded '/' or '\') in a path.
enum class EscapedSlashes {
  Keep,    // leave them encoded; they do not separate segments ("a%2Fb" is one segment)
  Reject,  // 400
  Decode,  // decode both to '/' (so they separate segments, and dot segments around them count)
};

struct PathOptions {
  bool normalize = true;  // off: the target is forwarded exactly as received, nothing checked
  bool merge_slashes = false;
  EscapedSlashes escaped_slashes = EscapedSlashes::Keep;
  bool operator==(const PathOptions&) const = default;
};

enum class PathVerdict {
  Ok,
  BadTarget,     // not origin-form ("/..."), nor "*"
  BadEscape,     // '%' not followed by two hex digits
  NulByte,       // %00
  EscapedSlash,  // %2F or %5C with escaped_slashes = reject
  Backslash,     // a raw '\' (not a URI character) unless escaped_slashes = decode
  Fragment,      // '#' in the target (a client never sends a fragment)
  Traversal,     // a ".." segment climbs above the root
};

// The machine-readable error code of a verdict ("path_traversal", "bad_path") and a sentence
// for the client.
std::string_view verdict_code(PathVerdict v);
std::string_view verdict_message(PathVerdict v);

struct NormalizedTarget {
  PathVerdict verdict = PathVerdict::Ok;
  bool changed = false;  // `target` holds the normalised target (else the input is already so)
  std::string target;
};

// Normalises the path of a request target; the query ("?..." to the end) is never looked at or
// changed. With options.normalize:
//  - percent-encoded unreserved characters (ALPHA, DIGIT, '-', '.', '_', '~') are decoded, and
//    the hex digits of the escapes that stay are written in upper case (RFC 3986 §6.2.2);
//    so "%2e" and "%2E" are dots;
//  - %00, a malformed escape and '#' are refused; %2F/%5C and a raw '\' per escaped_slashes;
//  - "." and ".." segments are removed (RFC 3986 §5.2.4), except that a ".." with no segment
//    left to remove is refused (Traversal) instead of being dropped at the root;
//  - with merge_slashes, runs of '/' become one.
// "*" (OPTIONS *) is left alone. A target that does not start with '/' (absolute-form
// "http://h/p", authority-form) is refused: the gateway is not a forward proxy.
// Without options.normalize, returns Ok and unchanged. No allocation when nothing changes.
NormalizedTarget normalize_target(std::string_view target, const PathOptions& options);

// --- Header names ------------------------------------------------------------------------------

enum class UnderscoreHeaders { Allow, Drop, Reject };

// Applies the policy to the header names of a request. Drop erases every field whose name
// contains '_'; Reject leaves the fields alone and returns the first such name; Allow does
// nothing. Returns the offending name (Reject), else nullopt.
std::optional<std::string> apply_underscore_policy(bhttp::fields& f, UnderscoreHeaders policy);

// --- Trusted peers -----------------------------------------------------------------------------

// The networks of `http.trusted_proxies`, parsed by Cidr::parse (core/cidr.h says what
// is accepted).
class CidrSet {
 public:
  CidrSet() = default;
  explicit CidrSet(std::vector<Cidr> nets) : nets_(std::move(nets)) {}
  bool empty() const { return nets_.empty(); }
  // Whether `ip` (an address as text, IPv6 with or without brackets) is in one of the networks.
  // An IPv4-mapped IPv6 address ("::ffff:10.0.0.1", how a dual-stack listener sees IPv4
  // clients) matches as its IPv4 address. Unparseable text ("unknown") is never contained.
  bool contains(std::string_view ip) const;
  bool operator==(const CidrSet&) const = default;

 private:
  std::vector<Cidr> nets_;
};

}  // namespace proxer::http
