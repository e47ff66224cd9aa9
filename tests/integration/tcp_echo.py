#!/usr/bin/env python3
"""A raw TCP echo server for the TCP tunnel tests.

    python3 tcp_echo.py PORT [--proxy]        (PORT 0 picks a free port)

Prints "TCP_READY <port>" once it listens on 127.0.0.1. Each connection gets back every byte it
sends; when the client half-closes, the server sends what is left and closes. With --proxy, each
connection must start with a PROXY protocol header (v1 or v2): the server answers first with one
line "HEADER <hex of the header bytes>\\n", then echoes.
"""

import socket
import sys
import threading

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def read_exact(conn, n, buf):
    while len(buf) < n:
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside the PROXY header")
        buf += chunk
    return buf


def read_proxy_header(conn):
    buf = read_exact(conn, 16, b"")
    if buf.startswith(V2_SIGNATURE):
        length = int.from_bytes(buf[14:16], "big")
        buf = read_exact(conn, 16 + length, buf)
        return buf[:16 + length], buf[16 + length:]
    while b"\r\n" not in buf:
        if len(buf) > 107:
            raise ValueError("v1 header longer than 107 bytes")
        chunk = conn.recv(1)
        if not chunk:
            raise EOFError("connection closed inside the PROXY header")
        buf += chunk
    end = buf.index(b"\r\n") + 2
    return buf[:end], buf[end:]


def handle(conn, proxy):
    with conn:
        try:
            rest = b""
            if proxy:
                header, rest = read_proxy_header(conn)
                conn.sendall(b"HEADER " + header.hex().encode() + b"\n")
            if rest:
                conn.sendall(rest)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except (OSError, EOFError, ValueError):
            pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    proxy = "--proxy" in sys.argv[2:]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    print("TCP_READY %d" % srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, proxy), daemon=True).start()


if __name__ == "__main__":
    main()
