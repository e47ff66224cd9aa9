// Fuzz target: the HTTP/1.1 head rules of src/http/rules.h, checked against Beast's parser.
//
// Input: the bytes a public connection (or an upstream, for responses) delivers. The head is the
// input up to the first empty line; what follows is body bytes the checks must not look at.
//
// Beyond "no crash, no UB", these contracts are checked and a violation aborts:
//  - find_head_end finds exactly the first CRLFCRLF; a verdict never depends on the bytes after it,
//    and an input without one is never accepted;
//  - defence in depth: a request head check_request_head() accepts is accepted by Beast too, except
//    for Beast's one documented stricter rule (a Connection or Proxy-Connection value that is not a
//    token list, error::bad_value). Anything else means our checks let through what a conforming
//    parser refuses, or the rules.h measurement is out of date;
//  - every proper prefix of an accepted head is "incomplete head", never a misreported error;
//  - routing results are valid tunnel names and the path route rewrites the target exactly;
//  - strip_hop_by_hop leaves no hop-by-hop field and never touches Host or Content-Length;
//    add_forwarded leaves one merged line per list header; strip_tunnel_token removes what it
//    promises;
//  - normalize_target (every mode) refuses or yields a target that starts with '/', has no dot
//    segment, no backslash and, unless kept, no encoded slash, keeps the query byte for byte,
//    is a fixed point, and survives the serialiser like any other target;
//  - serialize_forward_head (the upstream head in one pass) writes what the Beast path (erase
//    Expect, strip_hop_by_hop, add_forwarded for an untrusted and a trusted peer, serialise)
//    writes, up to the order of fields of different names, and the same with a connection's
//    memo of its forwarding fields, filled by another request or by the same one;
//  - parse_response_head gives check_response_head's verdict; the relay's raw serialisation of
//    an accepted response head is valid again, keeps only input fields in order, drops the
//    hop-by-hop ones and writes what the Beast path (parse, strip, serialise) writes, except
//    that it keeps the input order of fields with different names (Beast groups by name);
//  - what serialize_*_head writes from a parsed (and rewritten) head is accepted again by our
//    checks and by Beast, and reparses to the same start line and fields: nothing the gateway
//    sends on can be read differently by the next hop.
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/response_head.h"
#include "http/rules.h"
#include "http/sanitize.h"

namespace {

using namespace proxer::http;

constexpr std::string_view kDomain = "tunnel.example.com";
// Test-only headers through which the input also chooses the domain and client address that the
// gateway would otherwise take from its config and the socket.
constexpr std::string_view kFuzzDomain = "X-Fuzz-Domain";
constexpr std::string_view kFuzzIp = "X-Fuzz-Ip";

void require_at(bool ok, int line) {
  if (ok) return;
  std::fprintf(stderr, "contract violated at %s:%d\n", __FILE__, line);
  std::abort();
}
// A macro for the line number: clang 14 with libstdc++ 12 has no std::source_location.
#define require(ok) require_at((ok), __LINE__)

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

// Feeds one complete head to a fresh parser. No header or body limit: the limits are the
// gateway's business (431/413), not a difference in what is well-formed.
template <bool isRequest>
beast::error_code beast_parse(std::string_view head,
                              bhttp::parser<isRequest, bhttp::empty_body>& p) {
  p.header_limit(std::numeric_limits<std::uint32_t>::max());
  p.body_limit(boost::none);
  beast::error_code ec;
  const auto used = p.put(boost::asio::buffer(head.data(), head.size()), ec);
  if (!ec) require(p.is_header_done() && used == head.size());
  return ec;
}

std::size_t count(const bhttp::fields& f, bhttp::field name) {
  const auto range = f.equal_range(name);
  return static_cast<std::size_t>(std::distance(range.first, range.second));
}

std::size_t count(const bhttp::fields& f, std::string_view name) {
  const auto range = f.equal_range(name);
  return static_cast<std::size_t>(std::distance(range.first, range.second));
}

std::optional<std::string_view> value_of(const bhttp::fields& f, std::string_view name) {
  const auto it = f.find(name);
  if (it == f.end()) return std::nullopt;
  return it->value();
}

// Same fields in the same order, names compared exactly.
bool same_fields(const bhttp::fields& a, const bhttp::fields& b) {
  auto i = a.begin();
  auto j = b.begin();
  for (; i != a.end() && j != b.end(); ++i, ++j) {
    if (i->name_string() != j->name_string() || i->value() != j->value()) return false;
  }
  return i == a.end() && j == b.end();
}

// Bytes after the empty line are body: they never decide whether a head passes. The reason may
// differ in one known way: when the empty line cuts the start line short ("GET / \r\n\r\n"),
// head_check.cpp looks for the 8 bytes of a version (4 of a status code) before looking at
// their content, so the head alone is called "incomplete head" although it is complete, while
// with body bytes behind it the same head is "unsupported HTTP version". Both are a 400 (502).
void same_verdict(const std::optional<std::string>& with_body,
                  const std::optional<std::string>& head_only) {
  require(with_body.has_value() == head_only.has_value());
  if (with_body != head_only) require(head_only == "incomplete head");
}

// The prefix contract: a head that passes is "incomplete" at every shorter length. A few lengths
// rather than all of them keeps an execution linear in the input.
template <typename Check>
void check_prefixes(std::string_view head, Check check) {
  const std::size_t lengths[] = {0, head.size() / 2, head.size() - 3, head.size() - 1};
  for (auto n : lengths) {
    if (n < head.size()) require(check(head.substr(0, n)) == "incomplete head");
  }
}

// serialize -> check -> Beast parse gives back the same request. `h` is what the gateway would
// send on; it always has a token method and a non-empty target because Beast parsed it.
void check_request_round_trip(const bhttp::request_header<>& h) {
  std::string wire;
  serialize_request_head(h, wire);
  require(find_head_end(wire) == wire.size());
  // The serialiser always writes HTTP/1.1, which needs exactly one Host; an HTTP/1.0 request
  // without one is the only head it may legitimately turn into a rejected one.
  const auto verdict = check_request_head(wire);
  if (count(h, bhttp::field::host) == 1) require(!verdict.has_value());

  // `h` came from Beast (possibly rewritten since), so Beast must take it back without exception.
  bhttp::request_parser<bhttp::empty_body> p;
  require(!beast_parse(wire, p));
  const auto& again = p.get();
  require(again.version() == 11);
  require(again.method_string() == h.method_string() && again.target() == h.target());
  require(same_fields(again.base(), h));
}

void check_response_round_trip(const bhttp::response_header<>& h) {
  std::string wire;
  serialize_response_head(h, wire);
  require(find_head_end(wire) == wire.size());
  require(!check_response_head(wire).has_value());
  bhttp::response_parser<bhttp::empty_body> p;
  require(!beast_parse(wire, p));
  require(p.get().result_int() == h.result_int() && same_fields(p.get().base(), h));
}

void check_routing(const bhttp::request_header<>& h) {
  if (const auto host = value_of(h, "Host")) {
    if (auto name = tunnel_from_host(*host, kDomain)) require(valid_tunnel_name(*name));
    if (const auto domain = value_of(h, kFuzzDomain)) {
      if (auto name = tunnel_from_host(*host, *domain)) require(valid_tunnel_name(*name));
    }
  }
  const std::string_view target = h.target();
  if (auto route = tunnel_from_path(target)) {
    require(valid_tunnel_name(route->tunnel));
    require(target.starts_with("/t/") && target.substr(3).starts_with(route->tunnel));
    const auto tail = target.substr(3 + route->tunnel.size());
    if (tail.empty()) {
      require(route->rest == "/");
    } else if (tail.front() == '?') {
      require(route->rest.size() == tail.size() + 1 && route->rest.front() == '/' &&
              route->rest.substr(1) == tail);
    } else {
      require(tail.front() == '/' && route->rest == tail);
    }
  }
  (void)wants_keep_alive(h);
  if (is_upgrade(h)) require(h.version() == 11);
}

// Token extraction and removal on a copy, as the gateway does after authenticating.
void check_tokens(bhttp::request_header<> h) {
  const auto sources = tunnel_token_sources(h);
  require(tunnel_token_candidates(h).size() == sources.size());
  bool authorization_used = false;
  for (const auto& s : sources) {
    require(!s.value.empty());
    // X-Proxer-Token candidates come first.
    if (s.source == TokenSource::Header) require(!authorization_used);
    if (s.source != TokenSource::Header) authorization_used = true;
  }
  strip_tunnel_token(h, authorization_used);
  require(count(h, "X-Proxer-Token") == 0);
  if (authorization_used) {
    require(h.find(bhttp::field::authorization) == h.end() && tunnel_token_sources(h).empty());
  }
}

// Hop-by-hop removal and forwarding headers on a copy, then the head the gateway sends on.
// The start line, then the field lines stably sorted by lower-case name: two serialisations
// that add fields in different places (Beast files a repeated name after the last field of that
// name; the one-pass writers append or keep the input's order) must agree on this.
std::vector<std::string> grouped_by_name(std::string_view head) {
  std::vector<std::pair<std::string, std::string>> lines;
  while (!head.empty()) {
    const auto end = head.find("\r\n");
    if (end == 0 || end == std::string_view::npos) break;
    const auto line = head.substr(0, end);
    std::string name(line.substr(0, line.find(':')));
    for (char& c : name) c = lower(c);
    lines.emplace_back(std::move(name), std::string(line));
    head.remove_prefix(end + 2);
  }
  require(!lines.empty());
  std::stable_sort(lines.begin() + 1, lines.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& l : lines) out.push_back(std::move(l.second));
  return out;
}

// The gateway's one-pass upstream head (serialize_forward_head) against the Beast path it
// replaced: erase Expect, strip hop-by-hop, add the forwarding headers, serialise.
void check_forward_head(bhttp::request_header<> h, bool keep_upgrade, std::string_view client_ip,
                        std::string_view proto, bool trusted) {
  std::string host;
  if (const auto v = value_of(h, "Host")) host = std::string(*v);
  const ForwardEdits e{.target = "/routed?q",
                       .keep_upgrade = keep_upgrade,
                       .client_ip = client_ip,
                       .proto = proto,
                       .host = host,
                       .trusted_peer = trusted};
  std::string one_pass;
  serialize_forward_head(h, e, one_pass);
  // A connection's memo of its forwarding fields changes nothing: filled by another client's
  // request first (a miss), then this one's twice (a refill, then a hit).
  ForwardingMemo memo;
  auto other = e;
  other.client_ip = "192.0.2.9";
  other.memo = &memo;
  std::string scratch;
  serialize_forward_head(h, other, scratch);
  auto with_memo = e;
  with_memo.memo = &memo;
  for (int i = 0; i < 2; ++i) {
    std::string again;
    serialize_forward_head(h, with_memo, again);
    require(again == one_pass);
  }
  h.erase(bhttp::field::expect);
  strip_hop_by_hop(h, keep_upgrade);
  add_forwarded(h, client_ip, proto, host, trusted);
  h.target("/routed?q");
  std::string via_beast;
  serialize_request_head(h, via_beast);
  require(grouped_by_name(one_pass) == grouped_by_name(via_beast));
  require(check_request_head(one_pass) == check_request_head(via_beast));
}

void check_rewrite(bhttp::request_header<> h, bool keep_upgrade, std::string_view client_ip,
                   std::string_view proto) {
  check_forward_head(h, keep_upgrade, client_ip, proto, false);
  check_forward_head(h, keep_upgrade, client_ip, proto, true);
  const auto hosts = count(h, bhttp::field::host);
  const auto lengths = count(h, bhttp::field::content_length);
  // Field names the client listed in Connection (Host and Content-Length are exempt).
  std::vector<std::string> named;
  for (const auto& f : h) {
    switch (f.name()) {
      case bhttp::field::connection:
      case bhttp::field::host:
      case bhttp::field::content_length:
        continue;
      default:
        break;
    }
    const auto conns = h.equal_range(bhttp::field::connection);
    for (auto c = conns.first; c != conns.second; ++c) {
      std::string_view list = c->value();
      while (!list.empty()) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
          item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (beast::iequals(item, f.name_string())) named.emplace_back(f.name_string());
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
  }

  strip_hop_by_hop(h, keep_upgrade);
  for (auto gone : {bhttp::field::keep_alive, bhttp::field::proxy_connection, bhttp::field::te,
                    bhttp::field::trailer, bhttp::field::transfer_encoding,
                    bhttp::field::proxy_authenticate, bhttp::field::proxy_authorization}) {
    require(h.find(gone) == h.end());
  }
  const bool upgrade = h.find(bhttp::field::upgrade) != h.end();
  if (!keep_upgrade) require(!upgrade);
  require(count(h, bhttp::field::connection) == (keep_upgrade && upgrade ? 1u : 0u));
  require(count(h, bhttp::field::host) == hosts);
  require(count(h, bhttp::field::content_length) == lengths);
  for (const auto& name : named) {
    // "Connection: upgrade" names Upgrade, which keep_upgrade keeps on purpose.
    if (keep_upgrade && beast::iequals(name, "upgrade")) continue;
    require(h.find(name) == h.end());
  }

  std::string host;
  if (const auto v = value_of(h, "Host")) host = std::string(*v);
  add_forwarded(h, client_ip, proto, host, false);
  require(count(h, "X-Forwarded-For") == 1 && count(h, bhttp::field::forwarded) == 1);
  if (!proto.empty()) require(value_of(h, "X-Forwarded-Proto") == proto);
  if (!host.empty()) require(value_of(h, "X-Forwarded-Host") == std::string_view(host));
  require(value_of(h, bhttp::to_string(bhttp::field::forwarded))->find("for=") !=
          std::string_view::npos);

  check_request_round_trip(h);
}

// The responses the gateway writes itself are well-formed whatever text goes into them.
void check_error_response(unsigned status, std::string_view code, std::string_view message) {
  const auto out = error_response(status, code, message, status % 2 == 0);
  const auto end = find_head_end(out);
  require(end != std::string::npos);
  const auto head = std::string_view(out).substr(0, end);
  require(!check_response_head(head).has_value());
  bhttp::response_parser<bhttp::empty_body> p;
  require(!beast_parse(head, p));
  require(p.content_length() == message.size() + 1 && out.size() - end == message.size() + 1);
  require(std::string_view(out).substr(end, message.size()) == message && out.back() == '\n');
}

bool has_dot_segment(std::string_view path) {
  for (std::size_t pos = 0; pos != std::string_view::npos;) {
    const auto next = path.find('/', pos + 1);
    const auto seg = path.substr(pos + 1, next == std::string_view::npos ? next : next - pos - 1);
    if (seg == "." || seg == "..") return true;
    pos = next;
  }
  return false;
}

void check_normalize(const bhttp::request_header<>& h) {
  const std::string_view target = h.target();
  for (const auto esc : {EscapedSlashes::Keep, EscapedSlashes::Reject, EscapedSlashes::Decode}) {
    for (const bool merge : {false, true}) {
      const PathOptions o{true, merge, esc};
      const auto r = normalize_target(target, o);
      if (r.verdict != PathVerdict::Ok) {
        require(!r.changed && !verdict_code(r.verdict).empty());
        continue;
      }
      const std::string out = r.changed ? r.target : std::string(target);
      require(r.changed == (out != target));
      if (out == "*") continue;
      require(out.starts_with('/'));
      const auto q = out.find('?');
      const auto path = std::string_view(out).substr(0, q);
      require(!has_dot_segment(path));
      require(path.find('\\') == std::string_view::npos &&
              path.find('#') == std::string_view::npos);
      if (merge) require(path.find("//") == std::string_view::npos);
      if (esc != EscapedSlashes::Keep) {
        require(!icontains(path, "%2f") && !icontains(path, "%5c"));
      }
      const auto tq = target.find('?');
      require((q == std::string::npos) == (tq == std::string_view::npos));
      if (q != std::string::npos) require(std::string_view(out).substr(q) == target.substr(tq));
      const auto again = normalize_target(out, o);
      require(again.verdict == PathVerdict::Ok && !again.changed);
      if (r.changed) {
        auto copy = h;
        copy.target(out);
        check_request_round_trip(copy);
      }
    }
  }
}

void check_request(std::string_view head, std::size_t input_size) {
  const auto verdict = check_request_head(head);
  if (verdict) {
    require(!verdict->empty());
    return;
  }
  check_prefixes(head, [](std::string_view s) { return check_request_head(s); });

  bhttp::request_parser<bhttp::empty_body> p;
  const auto ec = beast_parse(head, p);
  if (ec) {
    // The documented difference (rules.h): Beast refuses a Connection or Proxy-Connection value
    // that is not a token list, which we pass on (it only matters to strip_hop_by_hop).
    require(ec == bhttp::error::bad_value &&
            (icontains(head, "\r\nconnection:") || icontains(head, "\r\nproxy-connection:")));
    return;
  }
  const auto& h = p.get().base();

  check_routing(h);
  check_tokens(h);
  check_error_response(static_cast<unsigned>(100 + input_size % 500), h.method_string(),
                       h.target());
  check_request_round_trip(h);
  check_normalize(h);

  // The input picks the rewrite parameters too, so every combination is reached.
  const std::string_view ips[] = {"203.0.113.7", "[2001:db8::1]", "2001:db8::2", ""};
  std::string_view ip = ips[input_size % 4];
  if (const auto v = value_of(h, kFuzzIp)) ip = *v;
  const std::string_view proto = (input_size / 4) % 3 == 0   ? "http"
                                 : (input_size / 4) % 3 == 1 ? "https"
                                                             : "";
  check_rewrite(h, false, ip, proto);
  check_rewrite(h, true, ip, proto);
}

void check_response(std::string_view head) {
  const auto verdict = check_response_head(head);
  ResponseHead raw;
  require(parse_response_head(head, raw) == verdict);
  if (verdict) {
    require(!verdict->empty());
    return;
  }
  check_prefixes(head, [](std::string_view s) { return check_response_head(s); });
  // The relay's raw path: what it writes is a valid head again, without hop-by-hop fields, and
  // every field it kept is one of the input's, in the input's order.
  std::string relayed;
  serialize_response_head(raw, ResponseEdits{.chunked = raw.chunked}, relayed);
  ResponseHead again;
  require(!parse_response_head(relayed, again).has_value());
  require(again.status == raw.status && !again.http10 && again.chunked == raw.chunked &&
          again.content_length == raw.content_length);
  require(again.find("connection") == nullptr && again.find("keep-alive") == nullptr &&
          again.find("upgrade") == nullptr);
  std::size_t next = 0;
  for (const auto& f : again.fields) {
    if (f.name == "Transfer-Encoding" && raw.chunked && &f == &again.fields.back()) break;
    while (next < raw.fields.size() &&
           (raw.fields[next].name != f.name || raw.fields[next].value != f.value)) {
      ++next;
    }
    require(next < raw.fields.size());
    ++next;
  }
  // Beast is stricter on the status line (it needs the SP after the code), so a refusal is not a
  // contract violation here; what Beast accepts must survive our serialiser.
  bhttp::response_parser<bhttp::empty_body> p;
  if (beast_parse(head, p)) return;
  // Beast cannot tell a reason "<unknown-status>" from none (it stands in for a missing one).
  if (raw.reason == "<unknown-status>") return;
  auto h = p.get().base();
  check_response_round_trip(h);
  strip_hop_by_hop(h, false);
  require(h.find(bhttp::field::connection) == h.end() &&
          h.find(bhttp::field::transfer_encoding) == h.end());
  check_response_round_trip(h);
  // And the raw path writes what the Beast path (parse, strip, serialise) writes, up to the
  // order of fields with different names: Beast files a field after the last one of the same
  // name, the raw path keeps the input's order (both keep the order within one name).
  if (raw.chunked) h.set(bhttp::field::transfer_encoding, "chunked");
  std::string via_beast;
  serialize_response_head(h, via_beast);
  require(grouped_by_name(via_beast) == grouped_by_name(relayed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const auto end = find_head_end(in);
  if (end == std::string_view::npos) {
    require(in.find("\r\n\r\n") == std::string_view::npos);
    // Without an empty line there is no complete head to accept.
    require(check_request_head(in).has_value() && check_response_head(in).has_value());
    return 0;
  }
  require(end >= 4 && end <= size && in.substr(end - 4, 4) == "\r\n\r\n" &&
          in.find("\r\n\r\n") == end - 4);
  const auto head = in.substr(0, end);
  same_verdict(check_request_head(in), check_request_head(head));
  same_verdict(check_response_head(in), check_response_head(head));

  check_request(head, size);
  check_response(head);
  return 0;
}
