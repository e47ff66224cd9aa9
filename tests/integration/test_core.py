"""Core proxying through a real gateway + agent + backend on loopback."""

import base64
import concurrent.futures
import http.client
import json
import threading
import time
import unittest
import uuid

import backend
import harness

TUNNEL_TOKEN = "s3cret"


def header_values(info, name):
    """Values of header `name` (case-insensitive) in a /headers JSON reply."""
    return [v for k, v in info["headers"] if k.lower() == name.lower()]


class CoreTest(harness.ProxerTestCase):
    """One gateway, one agent with three tunnels: app (open), api (token), down (closed port)."""

    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.closed_port = harness.closed_port()
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)
        cls.port = cls.gw.ports.listen
        cls.admin = cls.gw.ports.admin
        cls.ag = harness.start_agent(
            cls.workdir, cls.gw.ports.agent,
            [harness.tunnel_spec("app", cls.be.port),
             harness.tunnel_spec("api", cls.be.port, TUNNEL_TOKEN),
             harness.tunnel_spec("down", cls.closed_port)],
            registry=cls.class_procs, agent_id="core-agent")
        for name in ("app", "api", "down"):
            harness.wait_tunnel(cls.admin, name, procs=[cls.gw, cls.ag])

    # helpers

    def via_host(self, method, path, tunnel="app", **kw):
        return harness.http_request(method, self.port, path, host="%s.localhost:%d" % (tunnel, self.port), **kw)

    def via_path(self, method, path, tunnel="app", **kw):
        return harness.http_request(method, self.port, "/t/%s%s" % (tunnel, path), **kw)

    def backend_saw(self, needle):
        """Requests the backend received whose path contains `needle` (asked directly)."""
        stats = harness.get_json(self.be.port, "/__stats")["requests"]
        return [r for r in stats if needle in r["path"]]

    def assert_proxer_error(self, status, headers, body, expected):
        self.assertEqual(status, expected, body[:500])
        self.assertIsNotNone(headers.get("X-Proxer-Error"),
                             "proxer-generated %d lacks X-Proxer-Error: %r" % (expected, headers.items()))

    # routing

    def test_get_via_host(self):
        status, _, body = self.via_host("GET", "/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_get_via_path(self):
        status, _, body = self.via_path("GET", "/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_post_via_host_and_path(self):
        payload = backend.gen_bytes(100_000, 21)
        for send in (self.via_host, self.via_path):
            with self.subTest(route=send.__name__):
                status, headers, body = send("POST", "/echo", body=payload,
                                             headers={"Content-Type": "application/x-it"})
                self.assertEqual(status, 200)
                self.assertEqual(body, payload)
                self.assertEqual(headers["Content-Type"], "application/x-it")

    def test_chunked_request_body(self):
        pieces = [b"first,", b"second,", backend.gen_bytes(50_000, 22)]
        status, _, body = self.via_path("POST", "/echo", body=pieces, chunked=True)
        self.assertEqual((status, body), (200, b"".join(pieces)))

    def test_path_prefix_stripped(self):
        status, _, body = self.via_path("GET", "/headers?q=1&r=two")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["path"], "/headers?q=1&r=two")
        status, _, body = self.via_host("GET", "/headers?q=3")
        self.assertEqual(json.loads(body)["path"], "/headers?q=3")

    # headers

    def test_forwarded_headers(self):
        host = "app.localhost:%d" % self.port
        status, _, body = self.via_host("GET", "/headers")
        self.assertEqual(status, 200)
        info = json.loads(body)
        xff = header_values(info, "X-Forwarded-For")
        self.assertEqual(len(xff), 1, info)
        self.assertIn("127.0.0.1", xff[0])
        self.assertEqual(header_values(info, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header_values(info, "X-Forwarded-Host"), [host])
        fwd = header_values(info, "Forwarded")
        self.assertEqual(len(fwd), 1, info)
        lowered = fwd[0].lower()
        self.assertIn("for=", lowered)
        self.assertIn("127.0.0.1", lowered)
        self.assertIn("proto=http", lowered)

    def test_hop_by_hop_request_headers_removed(self):
        status, _, body = self.via_path("GET", "/headers", headers=[
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("X-End-To-End", "kept"),
        ])
        self.assertEqual(status, 200)
        info = json.loads(body)
        self.assertEqual(header_values(info, "X-Secret-Hop"), [], info)
        self.assertEqual(header_values(info, "Keep-Alive"), [], info)
        for value in header_values(info, "Connection"):
            self.assertNotIn("x-secret-hop", value.lower(), info)
        self.assertEqual(header_values(info, "X-End-To-End"), ["kept"])

    def test_hop_by_hop_response_headers_removed(self):
        status, headers, body = self.via_path("GET", "/hop-response")
        self.assertEqual((status, body), (200, b"hop\n"))
        self.assertIsNone(headers.get("X-Resp-Hop"), headers.items())
        self.assertEqual(headers.get("X-Resp-End2End"), "1")

    # response framing

    def test_chunked_response_relayed(self):
        status, headers, body = self.via_path("GET", "/chunked?n=300000&seed=23&size=777")
        self.assertEqual(status, 200)
        self.assertEqual(body, backend.gen_bytes(300_000, 23))
        self.assertEqual(headers["X-Sha256"], backend.gen_sha256(300_000, 23))

    def test_response_without_length(self):
        status, _, body = self.via_host("GET", "/close?n=150000&seed=24")
        self.assertEqual(status, 200)
        self.assertEqual(body, backend.gen_bytes(150_000, 24))

    def test_bodyless_statuses(self):
        for code in (204, 304, 404, 503):
            with self.subTest(code=code):
                status, _, _ = self.via_path("GET", "/status/%d" % code, timeout=5)
                self.assertEqual(status, code)

    # concurrency and connections

    def test_200_concurrent_requests(self):
        count = 200
        barrier = threading.Barrier(count, timeout=30)

        def one(i):
            body = (b"request-%d|" % i) * (1 + i % 50)
            barrier.wait()
            send = self.via_host if i % 2 else self.via_path
            try:
                status, _, got = send("POST", "/echo", body=body, timeout=30)
            except (OSError, http.client.HTTPException) as e:
                return "request %d: %r" % (i, e)
            if status != 200 or got != body:
                return "request %d: status %d, body %r" % (i, status, got[:80])
            return None

        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            errors = [e for e in pool.map(one, range(count)) if e]
        self.assertEqual(errors, [], "%d of %d failed" % (len(errors), count))

    def test_keep_alive_client_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            first = None
            for i in range(6):
                path = ("/t/app/hello", "/t/app/bytes?n=70000&seed=25", "/t/app/headers")[i % 3]
                status, headers, body = harness.http_request("GET", self.port, path, conn=conn)
                self.assertEqual(status, 200)
                if i % 3 == 1:
                    self.assertEqual(body, backend.gen_bytes(70_000, 25))
                self.assertNotEqual((headers.get("Connection") or "").lower(), "close")
                self.assertIsNotNone(conn.sock, "gateway closed the client connection after request %d" % i)
                name = conn.sock.getsockname()
                first = first or name
                self.assertEqual(name, first, "request %d used a new connection" % i)
        finally:
            conn.close()

    # errors

    def test_unknown_tunnel_404(self):
        status, headers, body = harness.http_request("GET", self.port, "/hello",
                                                     host="nosuch.localhost:%d" % self.port)
        self.assert_proxer_error(status, headers, body, 404)
        status, headers, body = harness.http_request("GET", self.port, "/t/nosuch/hello")
        self.assert_proxer_error(status, headers, body, 404)

    def test_local_service_down_502(self):
        start = time.monotonic()
        status, headers, body = self.via_path("GET", "/hello", tunnel="down", timeout=15)
        self.assert_proxer_error(status, headers, body, 502)
        self.assertIn("local", body.decode("utf-8", "replace").lower(),
                      "502 body should say the local service is unreachable")
        self.assertLess(time.monotonic() - start, 5)

    # per-tunnel token

    def test_tunnel_token_required(self):
        status, headers, body = self.via_path("GET", "/hello", tunnel="api")
        self.assert_proxer_error(status, headers, body, 401)
        status, headers, body = self.via_host("GET", "/hello", tunnel="api")
        self.assert_proxer_error(status, headers, body, 401)

    def test_tunnel_token_accepted_forms(self):
        basic = base64.b64encode(b"anyone:" + TUNNEL_TOKEN.encode()).decode()
        forms = {
            "bearer": {"Authorization": "Bearer " + TUNNEL_TOKEN},
            "x-proxer-token": {"X-Proxer-Token": TUNNEL_TOKEN},
            "basic": {"Authorization": "Basic " + basic},
        }
        for label, headers in forms.items():
            with self.subTest(form=label):
                status, _, body = self.via_path("GET", "/hello", tunnel="api", headers=headers)
                self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_tunnel_token_wrong(self):
        bad_basic = base64.b64encode(b"anyone:nope").decode()
        for headers in ({"Authorization": "Bearer nope"}, {"X-Proxer-Token": "nope"},
                        {"Authorization": "Basic " + bad_basic}, {"X-Proxer-Token": TUNNEL_TOKEN + "x"}):
            with self.subTest(headers=headers):
                status, rheaders, body = self.via_path("GET", "/hello", tunnel="api", headers=headers)
                self.assert_proxer_error(status, rheaders, body, 401)

    def test_tunnel_token_not_forwarded(self):
        basic = base64.b64encode(b"anyone:" + TUNNEL_TOKEN.encode()).decode()
        for name, value in (("Authorization", "Bearer " + TUNNEL_TOKEN),
                            ("X-Proxer-Token", TUNNEL_TOKEN),
                            ("Authorization", "Basic " + basic)):
            with self.subTest(header=name, value=value):
                status, _, body = self.via_path("GET", "/headers", tunnel="api", headers={name: value})
                self.assertEqual(status, 200)
                info = json.loads(body)
                self.assertNotIn(value, header_values(info, name), info)
                self.assertEqual(header_values(info, "X-Proxer-Token"), [], info)

    # malformed requests: 400 from the gateway, nothing reaches the backend

    def _malformed(self, head_lines, tail=b"", smuggled=True, complete_only=False):
        """Sends a malformed request (with an optional smuggled request behind it); expects 400
        and that the backend saw neither. `complete_only`: the gateway may have streamed the
        request head before it met the bad body, so only a completed request counts."""
        marker = uuid.uuid4().hex
        host = "127.0.0.1:%d" % self.port
        head = "\r\n".join(l.format(marker=marker, host=host) for l in head_lines).encode()
        data = head + b"\r\n\r\n" + tail
        if smuggled:
            data += b"GET /t/app/hello?smuggled=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (
                marker.encode(), host.encode())
        raw = harness.raw_request(self.port, data, timeout=10)
        status, fields, body = harness.parse_response(raw)
        self.assertEqual(status, 400, "response: %r" % raw[:600])
        self.assertIn("x-proxer-error", fields, raw[:600])
        # Responses from the backend would have come before ours; give stragglers a moment.
        time.sleep(0.2)
        seen = self.backend_saw(marker)
        if complete_only:
            seen = [r for r in seen if r["complete"] or "smuggled" in r["path"]]
        self.assertEqual(seen, [], "the backend received a malformed or smuggled request")
        self.assertEqual(raw.count(b"HTTP/1.1 200"), 0, raw[:600])

    def test_malformed_cl_and_te(self):
        self._malformed(["POST /t/app/echo?m={marker} HTTP/1.1", "Host: {host}",
                         "Content-Length: 5", "Transfer-Encoding: chunked"],
                        b"0\r\n\r\n")

    def test_malformed_duplicate_content_length(self):
        self._malformed(["POST /t/app/echo?m={marker} HTTP/1.1", "Host: {host}",
                         "Content-Length: 5", "Content-Length: 6"],
                        b"hello")

    def test_malformed_bad_chunk_size(self):
        self._malformed(["POST /t/app/echo?m={marker} HTTP/1.1", "Host: {host}",
                         "Transfer-Encoding: chunked"],
                        b"zz\r\nhello\r\n0\r\n\r\n", complete_only=True)

    def test_malformed_obs_fold(self):
        self._malformed(["GET /t/app/headers?m={marker} HTTP/1.1", "Host: {host}",
                         "X-Folded: first", " continued"])

    def test_header_too_large_431(self):
        marker = uuid.uuid4().hex
        data = (b"GET /t/app/hello?m=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Big: %s\r\n\r\n"
                % (marker.encode(), self.port, b"a" * (20 * 1024)))
        raw = harness.raw_request(self.port, data, timeout=10)
        status, fields, _ = harness.parse_response(raw)
        self.assertEqual(status, 431, "response: %r" % raw[:600])
        self.assertIn("x-proxer-error", fields)
        self.assertEqual(self.backend_saw(marker), [])

    # agent authentication

    def test_wrong_agent_token_refused(self):
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("intruder", self.be.port)],
                        token="definitely-wrong", name="bad-agent")
        ag.wait_for_output("auth", timeout=10, stream="stderr")
        # Still not listed a while later (a refused agent may keep retrying).
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            self.assertIsNone(harness.find_tunnel(self.admin, "intruder"))
            time.sleep(0.1)
        status, headers, body = self.via_path("GET", "/hello", tunnel="intruder")
        self.assert_proxer_error(status, headers, body, 404)

    # admin API

    def test_admin_health(self):
        info = harness.get_json(self.admin, "/api/health")
        self.assertEqual(info["status"], "ok")

    def test_admin_tunnel_fields_and_counters(self):
        before = harness.find_tunnel(self.admin, "app")
        for field in ("name", "agent_id", "connected_since", "request_count", "error_count",
                      "bytes_in", "bytes_out", "avg_latency_ms", "last_status"):
            self.assertIn(field, before)
        self.assertEqual(before["agent_id"], "core-agent")
        # Bodies both ways, so bytes_in/bytes_out move whichever direction each one counts.
        for i in range(3):
            status, _, _ = self.via_path("POST", "/echo", body=b"counter-%d" % i * 100)
            self.assertEqual(status, 200)
        deadline = time.monotonic() + 5
        while True:
            after = harness.find_tunnel(self.admin, "app")
            if (after["request_count"] >= before["request_count"] + 3
                    and after["bytes_out"] > before["bytes_out"] and after["bytes_in"] > before["bytes_in"]):
                break
            self.assertLess(time.monotonic(), deadline, "counters did not move: %r -> %r" % (before, after))
            time.sleep(0.1)
        self.assertGreater(after["bytes_out"], 0)
        self.assertEqual(str(after["last_status"]), "200")


class RequestTimeoutTest(harness.ProxerTestCase):
    """--request-timeout 1s: a local service slower than that gives 504, quickly."""

    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--request-timeout", "1s"])
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("app", cls.be.port)],
                                     registry=cls.class_procs)
        harness.wait_tunnel(cls.gw.ports.admin, "app", procs=[cls.gw, cls.ag])

    def test_slow_local_service_504(self):
        start = time.monotonic()
        status, headers, body = harness.http_request("GET", self.gw.ports.listen, "/t/app/slow?ms=4000",
                                                     timeout=10)
        elapsed = time.monotonic() - start
        self.assertEqual(status, 504, body[:300])
        self.assertIsNotNone(headers.get("X-Proxer-Error"))
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 3.0)
        # The tunnel still serves fast requests afterwards.
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/t/app/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_fast_enough_request_passes(self):
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/t/app/slow?ms=300")
        self.assertEqual((status, body), (200, b"slept 300 ms\n"))


if __name__ == "__main__":
    unittest.main()
