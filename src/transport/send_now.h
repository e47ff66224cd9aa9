#pragma once
// Writes that skip the event loop when the socket has room. An Asio async_write whose bytes fit
// in the socket's send buffer still goes through the reactor (its queue lock), then the
// scheduler's queue, before the coroutine resumes: on the proxy's request path, two such trips
// per request for a single sendmsg each. send_now() makes that sendmsg directly and returns;
// write_rest() hands what did not fit to async_write. For a socket with no other write in flight
// (each caller is its socket's only writer).
#include <cstddef>
#include <span>
#include <tuple>

#include "core/asio.h"

namespace proxer::transport {

// Sends what the socket takes now of `bufs` with one sendmsg (MSG_DONTWAIT | MSG_NOSIGNAL, so
// the socket's own blocking mode does not matter and a closed peer is an error, not SIGPIPE),
// and returns the bytes sent. A full socket is not an error: fewer bytes, possibly none. Any
// other failure sets `ec` and returns 0. At most 16 non-empty buffers go in one call.
std::size_t send_now(tcp::socket& sock, std::span<const net::const_buffer> bufs, error_code& ec);

// Writes the bytes of `bufs` after the first `done` through the reactor (async_write); yields
// the error and the bytes this call wrote.
awaitable<std::tuple<error_code, std::size_t>> write_rest(tcp::socket& sock,
                                                          std::span<const net::const_buffer> bufs,
                                                          std::size_t done);

// send_now, then write_rest for what did not fit: all of `bufs`, or an error. Yields the error
// and the bytes written. Itself a coroutine (a frame per call): a caller on a hot path uses the
// two steps inline, so that a write that fits costs no frame.
awaitable<std::tuple<error_code, std::size_t>> write_all(tcp::socket& sock,
                                                         std::span<const net::const_buffer> bufs);

}  // namespace proxer::transport
