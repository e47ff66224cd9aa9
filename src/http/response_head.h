#pragma once
// An upstream's response head as views into its raw bytes, and the head the gateway relays to
// its client, written straight from those views.
//
// Why not Beast's response_parser here: the gateway only needs the status, the framing facts and
// the field lines in order, and it relays almost every line as it came. Beast's parser stores
// each field as a node of a sorted tree (one allocation and several case-insensitive compares a
// field), and the relay then walks that tree again to drop hop-by-hop fields and serialise. The
// framing checks of head_check.cpp already visit every byte once; recording where each field
// starts and ends during that pass costs almost nothing, and serialising from the views is a
// copy. Chunked bodies still go through Beast's parser (the caller feeds it the head when the
// response is chunked): the chunk framing is where a hand-written parser would add risk.
//
// Pure: no I/O, no allocation on the success path for heads of up to 16 fields.
#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxer::http {

struct HeadField {
  std::string_view name;   // a token, as received
  std::string_view value;  // OWS-trimmed; only field-value characters
};

struct ResponseHead {
  unsigned status = 0;
  bool http10 = false;
  std::string_view reason;  // as received; may be empty
  boost::container::small_vector<HeadField, 16> fields;
  // A valid Content-Length field (there is at most one).
  std::optional<std::uint64_t> content_length;
  bool chunked = false;  // Transfer-Encoding: chunked
  // The tokens of every Connection field, split once: "close" and "keep-alive" as flags, any
  // other (a field name the upstream marks hop-by-hop, or "upgrade") in `connection_tokens`.
  bool connection_close = false;
  bool connection_keep_alive = false;
  boost::container::small_vector<std::string_view, 4> connection_tokens;

  // Whether any Connection field lists `token` (case-insensitive).
  bool connection_has(std::string_view token) const;
  // HTTP/1.1 unless Connection says "close"; HTTP/1.0 only with "keep-alive". (This is the
  // upstream's intent; whether the body's framing allows reuse is the caller's to add.)
  bool keep_alive() const;
  // The first field named `name` (case-insensitive), or nullptr.
  const HeadField* find(std::string_view name) const;
};

// Checks `raw_head` (status line through the empty line) as check_response_head() does and, when
// it passes, fills `out` with views into raw_head: valid for as long as those bytes are. Returns
// the reason when the head is refused (`out` is then unspecified).
std::optional<std::string> parse_response_head(std::string_view raw_head, ResponseHead& out);

// What the gateway changes in a response head on the way to its client. Spans, so the layers
// above hand in their configuration without copies.
struct ResponseEdits {
  // Drop hop-by-hop fields (as strip_hop_by_hop(): Connection and what it names, Keep-Alive,
  // Proxy-Connection, TE, Trailer, Transfer-Encoding, Proxy-Authenticate, Proxy-Authorization,
  // and Upgrade unless keep_upgrade; never Content-Length).
  bool strip_hop_by_hop = true;
  // Keep Upgrade and, when it is kept, write "Connection: Upgrade" (a 101 being relayed).
  bool keep_upgrade = false;
  std::span<const std::string> hide;    // names removed (http.hide_response_headers)
  std::span<const std::string> remove;  // names removed (a route's response_headers.remove)
  // A route's response_headers.set (replaces every field of the name) and .add (appended).
  std::span<const std::pair<std::string, std::string>> set;
  std::span<const std::pair<std::string, std::string>> add;
  bool chunked = false;           // append "Transfer-Encoding: chunked" (the gateway re-frames)
  bool connection_close = false;  // append "Connection: close"
};

// Appends "HTTP/1.1 NNN reason\r\n", the fields of `h` that survive `e` in their order, then
// e.set, e.add, Connection: Upgrade / Transfer-Encoding / Connection: close as `e` asks, and
// "\r\n". Values from the configuration are sanitised as serialize_response_head() does (a CTL
// becomes SP; a name that is not a token is left out); values from `h` were validated by
// parse_response_head(). An empty reason is replaced by the standard one.
void serialize_response_head(const ResponseHead& h, const ResponseEdits& e, std::string& out);

}  // namespace proxer::http
