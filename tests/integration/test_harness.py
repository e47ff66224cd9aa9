"""Self-tests of the integration harness and of backend.py (no proxer binary needed).

They prove the test backend speaks correct HTTP/1.1 (so a failure elsewhere points at proxer,
not at the harness) and that the byte generator is deterministic."""

import concurrent.futures
import hashlib
import http.client
import json
import os
import socket
import time
import unittest

import backend
import harness


class GeneratorTest(unittest.TestCase):
    def test_deterministic_and_seeded(self):
        a = backend.gen_bytes(200_000, 7)
        self.assertEqual(a, backend.gen_bytes(200_000, 7))
        self.assertNotEqual(a, backend.gen_bytes(200_000, 8))
        self.assertEqual(len(a), 200_000)

    def test_prefix_property(self):
        # Blocks depend only on (seed, index): a shorter stream is a prefix of a longer one.
        self.assertEqual(backend.gen_bytes(70_000, 3), backend.gen_bytes(200_000, 3)[:70_000])

    def test_sha256_matches_bytes(self):
        for n in (0, 1, 65_535, 65_536, 65_537, 300_001):
            self.assertEqual(backend.gen_sha256(n, 5), hashlib.sha256(backend.gen_bytes(n, 5)).hexdigest())

    def test_free_ports_distinct(self):
        ports = harness.free_ports(5)
        self.assertEqual(len(set(ports)), 5)
        for p in ports:
            self.assertGreater(p, 0)


class BackendTest(harness.ProxerTestCase):
    needs_binary = False

    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.port = cls.be.port

    def get(self, path, **kw):
        return harness.http_request("GET", self.port, path, **kw)

    def test_hello(self):
        status, headers, body = self.get("/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        self.assertEqual(headers["Content-Length"], "13")

    def test_headers(self):
        status, _, body = self.get("/headers?x=1", headers=[("X-A", "1"), ("X-A", "2")])
        self.assertEqual(status, 200)
        info = json.loads(body)
        self.assertEqual(info["path"], "/headers?x=1")
        self.assertEqual([v for k, v in info["headers"] if k.lower() == "x-a"], ["1", "2"])

    def test_echo_content_length_and_chunked(self):
        payload = b"abc" * 10_000
        status, headers, body = harness.http_request(
            "POST", self.port, "/echo", headers={"Content-Type": "application/x-test"}, body=payload)
        self.assertEqual((status, body), (200, payload))
        self.assertEqual(headers["Content-Type"], "application/x-test")
        status, _, body = harness.http_request(
            "PUT", self.port, "/echo", body=[b"hello ", b"", b"chunked ", b"world"], chunked=True)
        self.assertEqual((status, body), (200, b"hello chunked world"))

    def test_bytes_and_sha(self):
        status, headers, body = self.get("/bytes?n=200001&seed=9")
        self.assertEqual(status, 200)
        self.assertEqual(body, backend.gen_bytes(200_001, 9))
        self.assertEqual(headers["X-Sha256"], hashlib.sha256(body).hexdigest())

    def test_chunked_response(self):
        raw = harness.raw_request(self.port, b"GET /chunked?n=5000&seed=2&size=999 HTTP/1.1\r\n"
                                  b"Host: x\r\n\r\n", timeout=5)
        status, fields, _ = harness.parse_response(raw)
        self.assertEqual(status, 200)
        self.assertEqual(fields.get("transfer-encoding"), "chunked")
        self.assertTrue(raw.endswith(b"0\r\n\r\n"))
        status, _, body = self.get("/chunked?n=5000&seed=2&size=999")
        self.assertEqual(body, backend.gen_bytes(5000, 2))

    def test_close_without_length(self):
        raw = harness.raw_request(self.port, b"GET /close?n=3000 HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        status, fields, body = harness.parse_response(raw)
        self.assertEqual(status, 200)
        self.assertNotIn("content-length", fields)
        self.assertNotIn("transfer-encoding", fields)
        self.assertEqual(body, backend.gen_bytes(3000, 1))

    def test_upload_streaming(self):
        data = backend.gen_bytes(1_000_000, 4)
        expect = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        _, _, body = harness.http_request("POST", self.port, "/upload", body=data)
        self.assertEqual(json.loads(body), expect)
        pieces = [data[i:i + 70_000] for i in range(0, len(data), 70_000)]
        _, _, body = harness.http_request("POST", self.port, "/upload", body=pieces, chunked=True)
        self.assertEqual(json.loads(body), expect)

    def test_upload_with_curl(self):
        path = os.path.join(self.workdir, "up.bin")
        data = backend.gen_bytes(3_000_000, 11)
        with open(path, "wb") as f:
            f.write(data)
        expect = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        url = "http://127.0.0.1:%d/upload" % self.port
        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            res = harness.curl("--data-binary", "@" + path, *extra, url, timeout=30)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(json.loads(res.stdout), expect)

    def test_slow_and_status(self):
        start = time.monotonic()
        status, _, body = self.get("/slow?ms=300")
        self.assertGreaterEqual(time.monotonic() - start, 0.29)
        self.assertEqual((status, body), (200, b"slept 300 ms\n"))
        self.assertEqual(self.get("/status/503")[0], 503)
        self.assertEqual(self.get("/status/204")[0], 204)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            harness.http_request("GET", self.port, "/hello", conn=conn)
            first = conn.sock.getsockname()
            for path in ("/hello", "/status/404", "/bytes?n=1000", "/hello"):
                harness.http_request("GET", self.port, path, conn=conn)
                self.assertEqual(conn.sock.getsockname(), first)
        finally:
            conn.close()

    def test_stats_record_requests(self):
        marker = "/hello?marker=%d" % time.monotonic_ns()
        self.get(marker)
        stats = json.loads(self.get("/__stats")[2])["requests"]
        self.assertIn({"method": "GET", "path": marker, "complete": True}, stats)

    def test_bad_chunk_rejected(self):
        raw = harness.raw_request(self.port, b"POST /echo?bad HTTP/1.1\r\nHost: x\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", timeout=5)
        self.assertEqual(harness.parse_response(raw)[0], 400)

    def test_concurrency(self):
        def one(i):
            body = b"req-%d-" % i * 50
            return harness.http_request("POST", self.port, "/echo", body=body, timeout=20)[2] == body

        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            self.assertTrue(all(pool.map(one, range(200))))


class HarnessProcTest(harness.ProxerTestCase):
    needs_binary = False

    def test_output_wait_and_exit(self):
        p = self.spawn("echoer", ["sh", "-c", "echo hello-out; echo hello-err >&2; exit 3"])
        self.assertEqual(p.wait_exit(5), 3)
        self.assertIn("hello-out", p.stdout())
        self.assertIn("hello-err", p.stderr())
        self.assertIn("hello-err", p.tail())

    def test_stop_kills_group_and_stopped_process(self):
        p = self.spawn("sleeper", ["sh", "-c", "sleep 60 & sleep 60; wait"])
        time.sleep(0.2)
        p.signal(19)  # SIGSTOP: stop() must still end it.
        start = time.monotonic()
        p.stop(timeout=2)
        self.assertIsNotNone(p.poll())
        self.assertLess(time.monotonic() - start, 4)

    def test_wait_for_output_fails_fast_on_exit(self):
        p = self.spawn("quitter", ["sh", "-c", "echo nope; exit 1"])
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            p.wait_for_output("never printed", timeout=10)
        self.assertLess(time.monotonic() - start, 5)

    def test_raw_request_handles_refused_port(self):
        port = harness.free_port()
        with self.assertRaises(OSError):
            harness.raw_request(port, b"GET / HTTP/1.1\r\n\r\n", timeout=2)

    def test_raw_request_returns_on_close(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        import threading

        def serve():
            c, _ = srv.accept()
            c.recv(100)
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nX-Proxer-Error: bad_request\r\n\r\nbad")
            c.close()

        t = threading.Thread(target=serve)
        t.start()
        raw = harness.raw_request(port, b"GET / HTTP/1.1\r\n\r\n", timeout=5)
        t.join(5)
        srv.close()
        status, fields, body = harness.parse_response(raw)
        self.assertEqual((status, fields["x-proxer-error"], body), (400, "bad_request", b"bad"))


if __name__ == "__main__":
    unittest.main()
