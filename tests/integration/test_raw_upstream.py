"""Response heads relayed from the upstream's raw bytes (src/http/response_head.h): an upstream
that writes its responses byte for byte (a socket, not an HTTP library), a real gateway with one
route to it, real clients. Checks what the relay keeps (the upstream's field order, Content-Length,
end-to-end fields), what it removes (hop-by-hop fields and those Connection names), what it
tolerates (no SP after the status code), chunked bodies, and that a malformed head is a 502."""

import os
import socket
import unittest

import harness

# path -> the whole response the raw upstream writes for it
RESPONSES = {
    b"/order": (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nContent-Length: 2\r\n\r\nok"),
    b"/hop": (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
              b"X-Secret: s\r\nTrailer: X-T\r\nX-Kept: k\r\nContent-Length: 2\r\n\r\nok"),
    b"/no-sp": b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"/chunked": (b"HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                  b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"),
    b"/smuggle": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"0\r\n\r\n"),
    b"/bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok",
}


class RawUpstream(harness.ThreadedServer):
    """Answers each request head with RESPONSES[path], keeps the connection (HTTP/1.1)."""

    def __init__(self):
        super().__init__()

    def _serve(self, conn):
        conn.settimeout(10)
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1]
                conn.sendall(RESPONSES.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))



class RawUpstreamTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.up = RawUpstream()
        conf = os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write('[[routes]]\npath_prefix = "/"\ncluster = "raw"\n[routes.retry]\nretries = 0\n'
                    '[clusters.raw]\nendpoints = ["http://127.0.0.1:%d"]\n' % cls.up.port)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", conf])

    @classmethod
    def tearDownClass(cls):
        cls.up.close()
        super().tearDownClass()

    def raw_exchange(self, path):
        """The gateway's answer as bytes (head and body), over a raw socket."""
        with socket.create_connection(("127.0.0.1", self.gw.ports.listen), timeout=10) as s:
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: raw.example\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk

    def test_field_order_and_length_kept(self):
        data = self.raw_exchange(b"/order")
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 200 OK")
        self.assertEqual([line for line in lines if line.lower().startswith((b"x-a:", b"x-b:"))],
                         [b"X-A: 1", b"X-B: 2", b"x-a: 3"])
        self.assertIn(b"Content-Length: 2", lines)
        self.assertEqual(body, b"ok")

    def test_hop_by_hop_and_connection_named_fields_removed(self):
        status, headers, body = harness.http_request("GET", self.gw.ports.listen, "/hop")
        self.assertEqual((status, body), (200, b"ok"))
        self.assertEqual(headers.get("X-Kept"), "k")
        for name in ("X-Secret", "Keep-Alive", "Trailer"):
            self.assertIsNone(headers.get(name), name)
        self.assertNotIn("x-secret", (headers.get("Connection") or "").lower())

    def test_status_line_without_reason_and_chunked_body(self):
        data = self.raw_exchange(b"/no-sp")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
        self.assertIn(b"\r\nTransfer-Encoding: chunked\r\n", data)
        self.assertTrue(data.endswith(b"5\r\nhello\r\n0\r\n\r\n"), data)
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/chunked")
        self.assertEqual((status, body), (201, b"abcdefg"))

    def test_malformed_heads_are_502(self):
        for path in ("/smuggle", "/bare-lf"):
            status, headers, body = harness.http_request("GET", self.gw.ports.listen, path)
            self.assertEqual(status, 502, path)
            self.assertEqual(headers.get("X-Proxer-Error"), "bad_response", path)
        # The gateway keeps serving after them.
        self.assertEqual(harness.http_request("GET", self.gw.ports.listen, "/order")[0], 200)


if __name__ == "__main__":
    unittest.main()
