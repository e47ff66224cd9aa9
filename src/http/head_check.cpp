// Framing checks on raw HTTP/1.1 heads, before Beast parses them. See rules.h for what Beast
// itself lets through and why each rule exists.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/char_class.h"
#include "http/response_head.h"
#include "http/rules.h"

namespace proxer::http {
namespace {

enum class Kind { Request, Response };

// One cursor over the head. Each step consumes bytes once; failures return a static reason so
// the success path never allocates.
class HeadScanner {
 public:
  // With `out`, a response head's status, reason, fields and framing facts are recorded there.
  HeadScanner(std::string_view head, Kind kind, ResponseHead* out = nullptr)
      : p_(head.data()), end_(head.data() + head.size()), kind_(kind), out_(out) {}

  const char* run() {
    const bool request = kind_ == Kind::Request;
    if (const char* r = request ? request_line() : status_line()) return r;
    if (const char* r = line_end(request ? "invalid request line" : "invalid status line")) {
      return r;
    }
    for (;;) {
      if (p_ == end_) return kIncomplete;
      if (*p_ == '\r' || *p_ == '\n') {
        if (const char* r = line_end()) return r;
        break;  // the empty line: end of head
      }
      if (const char* r = field_line()) return r;
    }
    return framing();
  }

 private:
  static constexpr const char* kIncomplete = "incomplete head";

  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

  // The reason for a byte that may not appear where it was found.
  static const char* unexpected(char c, const char* otherwise) {
    if (c == '\0') return "NUL byte";
    if (c == '\n') return "bare LF";
    return otherwise;
  }

  // Consumes CRLF; `otherwise` names any other byte found in its place.
  const char* line_end(const char* otherwise = "invalid character") {
    if (p_ == end_) return kIncomplete;
    if (*p_ == '\n') return "bare LF";
    if (*p_ != '\r') return unexpected(*p_, otherwise);
    if (left() < 2) return kIncomplete;
    if (p_[1] != '\n') return "bare CR";
    p_ += 2;
    return nullptr;
  }

  // "HTTP/1.1" or "HTTP/1.0".
  const char* version() {
    if (left() < 8) {
      // A short head that already differs from "HTTP/1.x" is wrong, not incomplete.
      constexpr std::string_view kPrefix = "HTTP/1.";
      const std::size_t n = std::min(left(), kPrefix.size());
      if (std::string_view(p_, n) != kPrefix.substr(0, n)) return "unsupported HTTP version";
      return kIncomplete;
    }
    if (std::string_view(p_, 7) != "HTTP/1." || (p_[7] != '0' && p_[7] != '1')) {
      return "unsupported HTTP version";
    }
    http10_ = p_[7] == '0';
    p_ += 8;
    return nullptr;
  }

  // method SP request-target SP HTTP-version (RFC 9112 §3). No leading empty line: Beast refuses
  // one too, and a client that sends one after a body is already out of sync.
  const char* request_line() {
    const char* begin = p_;
    p_ = chars::skip_token_chars(p_, end_);
    if (p_ == end_) return kIncomplete;
    if (p_ == begin || *p_ != ' ') return unexpected(*p_, "invalid request line");
    ++p_;
    begin = p_;
    // Target: visible ASCII and obs-text; no SP, CTL or DEL.
    p_ = chars::skip_target_chars(p_, end_);
    if (p_ == end_) return kIncomplete;
    if (p_ == begin || *p_ != ' ') return unexpected(*p_, "invalid request line");
    ++p_;
    return version();
  }

  // HTTP-version SP 3DIGIT [SP reason-phrase]. The SP after the code is required by RFC 9112
  // §4 even with no reason; we accept "HTTP/1.1 200" without it, as nginx does (the relay writes
  // the standard reason; Beast's parser, which refuses it, never sees a relayed response head).
  const char* status_line() {
    if (const char* r = version()) return r;
    if (left() < 4) return kIncomplete;
    if (p_[0] != ' ' || p_[1] < '1' || p_[1] > '9' || p_[2] < '0' || p_[2] > '9' || p_[3] < '0' ||
        p_[3] > '9') {
      return "invalid status line";
    }
    const unsigned status =
        static_cast<unsigned>((p_[1] - '0') * 100 + (p_[2] - '0') * 10 + (p_[3] - '0'));
    p_ += 4;
    const char* reason = p_;
    if (p_ != end_ && *p_ == ' ') {
      ++p_;
      reason = p_;
      p_ = chars::skip_value_chars(p_, end_);
    }
    if (out_) {
      out_->status = status;
      out_->http10 = http10_;
      out_->reason = std::string_view(reason, static_cast<std::size_t>(p_ - reason));
    }
    return nullptr;
  }

  // field-name ":" OWS field-value OWS CRLF
  const char* field_line() {
    // A line that starts with whitespace is obs-fold (or, right after the start line, an
    // attempt to hide a field from parsers that ignore it). RFC 9112 §5.2 lets a proxy reject it.
    if (chars::is_ows(*p_)) return "obs-fold";
    const char* begin = p_;
    p_ = chars::skip_token_chars(p_, end_);
    if (p_ == end_) return kIncomplete;
    if (*p_ != ':') {
      if (chars::is_ows(*p_)) return "whitespace before colon";
      if (*p_ == '\r') return "field line without colon";
      return unexpected(*p_, "invalid field name");
    }
    if (p_ == begin) return "empty field name";
    const std::string_view name(begin, static_cast<std::size_t>(p_ - begin));
    ++p_;
    begin = p_;
    p_ = chars::skip_value_chars(p_, end_);
    if (p_ == end_) return kIncomplete;
    if (*p_ != '\r') return unexpected(*p_, "control character in field value");
    const std::string_view value =
        chars::trim_ows(std::string_view(begin, static_cast<std::size_t>(p_ - begin)));
    if (const char* r = line_end()) return r;
    if (out_) out_->fields.push_back({name, value});
    return framing_field(name, value);
  }

  // Remembers the fields that decide message framing and routing.
  const char* framing_field(std::string_view name, std::string_view value) {
    switch (name.size()) {
      case 4:
        if (chars::iequals(name, "host") && ++host_count_ > 1) return "multiple Host";
        break;
      case 10:
        if (out_ && chars::iequals(name, "connection")) {
          chars::any_list_item(value, [&](std::string_view token) {
            if (chars::iequals(token, "close")) {
              out_->connection_close = true;
            } else if (chars::iequals(token, "keep-alive")) {
              out_->connection_keep_alive = true;
            } else {
              out_->connection_tokens.push_back(token);
            }
            return false;
          });
        }
        break;
      case 14:
        if (!chars::iequals(name, "content-length")) break;
        // Even equal repeated values are refused: proxies disagree on which one wins.
        if (has_content_length_) return "multiple Content-Length";
        has_content_length_ = true;
        // 1-19 digits: fits in 64 bits; no sign, no list ("5, 5"), no hex.
        if (value.empty() || value.size() > 19) return "invalid Content-Length";
        {
          std::uint64_t n = 0;
          for (char c : value) {
            if (c < '0' || c > '9') return "invalid Content-Length";
            n = n * 10 + static_cast<std::uint64_t>(c - '0');  // 19 digits cannot overflow
          }
          if (out_) out_->content_length = n;
        }
        break;
      case 17:
        if (!chars::iequals(name, "transfer-encoding")) break;
        if (has_transfer_encoding_) return "multiple Transfer-Encoding";
        has_transfer_encoding_ = true;
        // Only the single coding "chunked" (see rules.h): anything else either leaves the body
        // length undefined for a request or would be lost when the gateway re-frames the body.
        if (!chars::iequals(value, "chunked")) return "unsupported Transfer-Encoding";
        if (out_) out_->chunked = true;
        break;
      default:
        break;
    }
    return nullptr;
  }

  const char* framing() const {
    if (has_content_length_ && has_transfer_encoding_) {
      return "Content-Length with Transfer-Encoding";
    }
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    if (has_transfer_encoding_ && http10_) return "Transfer-Encoding in HTTP/1.0";
    // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
    if (kind_ == Kind::Request && !http10_ && host_count_ == 0) return "missing Host";
    return nullptr;
  }

  const char* p_;
  const char* end_;
  Kind kind_;
  ResponseHead* out_;
  bool http10_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  int host_count_ = 0;
};

std::optional<std::string> check_head(std::string_view raw_head, Kind kind) {
  if (const char* reason = HeadScanner(raw_head, kind).run()) return std::string(reason);
  return std::nullopt;
}

}  // namespace

std::size_t find_head_end(std::string_view buf) {
  const auto pos = buf.find("\r\n\r\n");
  return pos == std::string_view::npos ? pos : pos + 4;
}

std::optional<std::string> check_request_head(std::string_view raw_head) {
  return check_head(raw_head, Kind::Request);
}

std::optional<std::string> check_response_head(std::string_view raw_head) {
  return check_head(raw_head, Kind::Response);
}

std::optional<std::string> parse_response_head(std::string_view raw_head, ResponseHead& out) {
  out.fields.clear();
  out.content_length.reset();
  out.chunked = false;
  out.connection_close = false;
  out.connection_keep_alive = false;
  out.connection_tokens.clear();
  out.reason = {};
  if (const char* reason = HeadScanner(raw_head, Kind::Response, &out).run()) {
    return std::string(reason);
  }
  return std::nullopt;
}

}  // namespace proxer::http
