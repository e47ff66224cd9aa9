"""Direct upstreams (http:// and https:// endpoints of a cluster) and the policies around them:
connection pooling and idle timeout, upstream TLS verification with SNI, a cluster mixing a
direct endpoint and a tunnel, the errors of design E (refused 502, timeout 504, no healthy
endpoint 503, retries exhausted 502), retries (another endpoint; never a POST that reached an
upstream), passive outlier ejection, the circuit breaker, and a WebSocket upgrade to a direct
upstream. Real backends (backend.py, ws_echo.py), real gateway, real clients."""

import asyncio
import concurrent.futures
import json
import os
import socket
import time
import unittest

import backend
import harness
from test_websocket import start_ws_echo

try:
    import websockets
except ImportError:  # pragma: no cover - the install script provides python3-websockets
    websockets = None


def blackhole_listener():
    """A listening socket whose accept queue is full: further connects hang (the kernel drops
    their SYNs), as with a firewall that drops packets. Returns (listener, filler, port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=2)
    return listener, filler, listener.getsockname()[1]


def gateway_toml(a, b, flaky, tls, closed, ws, cert, blackhole):
    return f"""
[[routes]]
name = "direct"
path_prefix = "/d/"
strip_prefix = true
cluster = "direct"

[[routes]]
name = "mixed"
path_prefix = "/m/"
strip_prefix = true
cluster = "mixed"

[[routes]]
name = "tls-ok"
path_prefix = "/tls/"
strip_prefix = true
cluster = "tls-ok"

[[routes]]
name = "tls-unverified"
path_prefix = "/tls-unknown-ca/"
strip_prefix = true
cluster = "tls-unknown-ca"

[[routes]]
name = "tls-insecure"
path_prefix = "/tls-insecure/"
strip_prefix = true
cluster = "tls-insecure"

[[routes]]
name = "tls-wrong-name"
path_prefix = "/tls-wrong-name/"
strip_prefix = true
cluster = "tls-wrong-name"

[[routes]]
name = "refused"
path_prefix = "/refused/"
strip_prefix = true
cluster = "refused"
[routes.retry]
retries = 0

[[routes]]
name = "failover"
path_prefix = "/failover/"
strip_prefix = true
cluster = "failover"

[[routes]]
name = "retry-503"
path_prefix = "/retry/"
strip_prefix = true
cluster = "flaky-and-good"
[routes.retry]
retries = 1
on = ["503"]
backoff_base = "1ms"
backoff_max = "5ms"

[[routes]]
name = "exhausted"
path_prefix = "/exhausted/"
strip_prefix = true
cluster = "all-refused"
[routes.retry]
retries = 2
backoff_base = "1ms"
backoff_max = "2ms"

[[routes]]
name = "slow"
path_prefix = "/slow/"
strip_prefix = true
cluster = "direct"
timeout = "500ms"
[routes.retry]
retries = 0

[[routes]]
name = "slow-retried"
path_prefix = "/slow-retried/"
strip_prefix = true
cluster = "direct"
timeout = "3s"
[routes.retry]
retries = 1
on = ["timeout"]
per_try_timeout = "300ms"
backoff_base = "1ms"
backoff_max = "2ms"

[[routes]]
name = "breaker"
path_prefix = "/breaker/"
strip_prefix = true
cluster = "limited"

[[routes]]
name = "eject"
path_prefix = "/eject/"
strip_prefix = true
cluster = "eject"
[routes.retry]
retries = 0

[[routes]]
name = "ws"
path_prefix = "/ws/"
cluster = "ws"

[clusters.direct]
endpoints = ["http://127.0.0.1:{a}"]
idle_timeout = "1s"

[clusters.mixed]
endpoints = ["http://127.0.0.1:{a}", "tunnel:b"]

[clusters.tls-ok]
endpoints = ["https://localhost:{tls}"]
ca = "{cert}"

[clusters.tls-unknown-ca]
endpoints = ["https://localhost:{tls}"]

[clusters.tls-insecure]
endpoints = ["https://127.0.0.1:{tls}"]
insecure = true

[clusters.tls-wrong-name]
endpoints = ["https://127.0.0.1:{tls}"]
ca = "{cert}"
server_name = "other.example"

[clusters.refused]
endpoints = ["http://127.0.0.1:{closed}"]

[clusters.failover]
endpoints = ["http://127.0.0.1:{closed}", "http://127.0.0.1:{b}"]
[clusters.failover.outlier]
consecutive_connect_failures = 2
max_ejected_percent = 50
base_ejection_time = "1m"

[clusters.flaky-and-good]
endpoints = ["http://127.0.0.1:{flaky}", "http://127.0.0.1:{a}"]
[clusters.flaky-and-good.outlier]
consecutive_5xx = 0

[clusters.all-refused]
endpoints = ["http://127.0.0.1:{closed}"]
[clusters.all-refused.outlier]
consecutive_connect_failures = 0

[clusters.limited]
endpoints = ["http://127.0.0.1:{a}"]
[clusters.limited.circuit_breaker]
max_requests = 1

[clusters.eject]
endpoints = ["http://127.0.0.1:{flaky}", "http://127.0.0.1:{b}"]
[clusters.eject.outlier]
consecutive_5xx = 2
max_ejected_percent = 50
base_ejection_time = "1m"

[clusters.ws]
endpoints = ["http://127.0.0.1:{ws}"]

[[routes]]
name = "blackhole"
path_prefix = "/blackhole/"
strip_prefix = true
cluster = "blackhole"
[routes.retry]
retries = 0

[clusters.blackhole]
endpoints = ["http://127.0.0.1:{blackhole}"]
connect_timeout = "300ms"
"""


class UpstreamsTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.cert, cls.key = harness.make_self_signed_cert(cls.workdir)
        cls.a = harness.start_backend(cls.workdir, cls.class_procs, name="backend-a")
        cls.b = harness.start_backend(cls.workdir, cls.class_procs, name="backend-b")
        cls.flaky = harness.start_backend(cls.workdir, cls.class_procs, name="backend-flaky",
                                          fail_status=503)
        cls.tls = harness.start_backend(cls.workdir, cls.class_procs, name="backend-tls",
                                        tls=(cls.cert, cls.key))
        cls.ws = None
        if websockets is not None:
            cls.ws = start_ws_echo(cls.workdir, cls.class_procs).port
        cls.blackhole = blackhole_listener()
        conf = os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write(gateway_toml(cls.a.port, cls.b.port, cls.flaky.port, cls.tls.port,
                                 harness.closed_port(), cls.ws or 1, cls.cert,
                                 cls.blackhole[2]))
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", conf])
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("b", cls.b.port)],
                                     registry=cls.class_procs)
        harness.wait_tunnel(cls.gw.ports.admin, "b", procs=[cls.gw, cls.ag])

    @classmethod
    def tearDownClass(cls):
        for sock in cls.blackhole[:2]:
            sock.close()
        super().tearDownClass()

    def req(self, method, path, **kw):
        return harness.http_request(method, self.gw.ports.listen, path, host="app.example", **kw)

    def served(self, backend):
        return harness.get_json(backend.port, "/__stats")["requests"]

    def hits(self, backend, path):
        return sum(1 for r in self.served(backend) if r["path"] == path)

    def test_direct_get_post_and_chunked(self):
        status, _, body = self.req("GET", "/d/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        payload = os.urandom(300_000)
        status, _, body = self.req("POST", "/d/echo", body=payload)
        self.assertEqual((status, body), (200, payload))
        status, _, body = self.req("POST", "/d/echo", body=payload, chunked=True)
        self.assertEqual((status, body), (200, payload))
        status, headers, body = self.req("GET", "/d/bytes?n=2000000&seed=3")
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 2_000_000)
        self.assertEqual(body, backend.gen_bytes(2_000_000, 3))

    def test_pooled_connection_is_reused_then_closed_when_idle(self):
        peers = set()
        for _ in range(5):  # a new client connection each time: the pool, not client affinity
            status, _, body = self.req("GET", "/d/conn")
            self.assertEqual(status, 200)
            peers.add(json.loads(body)["peer"])
        self.assertEqual(len(peers), 1, peers)
        # idle_timeout = 1s: the sweep closes it; the next request needs a new connection.
        time.sleep(2.2)
        status, _, body = self.req("GET", "/d/conn")
        self.assertEqual(status, 200)
        self.assertNotIn(json.loads(body)["peer"], peers)

    def test_cluster_mixing_direct_and_tunnel(self):
        ports = [json.loads(self.req("GET", "/m/conn")[2])["port"] for _ in range(6)]
        self.assertEqual(sorted(set(ports)), sorted({self.a.port, self.b.port}))
        self.assertEqual(ports.count(self.a.port), 3)

    def test_upstream_tls_verified_with_sni(self):
        status, _, body = self.req("GET", "/tls/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        status, headers, body = self.req("GET", "/tls-unknown-ca/hello")
        self.assertEqual(status, 502, body)
        self.assertEqual(headers.get("x-proxer-error"), "upstream_tls")
        self.assertIn(b"certificate verify failed", body)
        status, headers, body = self.req("GET", "/tls-wrong-name/hello")
        self.assertEqual(status, 502, body)
        self.assertEqual(headers.get("x-proxer-error"), "upstream_tls")
        status, _, body = self.req("GET", "/tls-insecure/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_refused_is_502(self):
        status, headers, body = self.req("GET", "/refused/hello")
        self.assertEqual(status, 502)
        self.assertEqual(headers.get("x-proxer-error"), "upstream_refused")
        self.assertIn(b"refused the connection", body)

    def test_connect_timeout_is_504(self):
        started = time.monotonic()
        status, headers, body = self.req("GET", "/blackhole/hello")
        elapsed = time.monotonic() - started
        self.assertEqual(status, 504, body)
        self.assertEqual(headers.get("x-proxer-error"), "upstream_timeout")
        self.assertIn(b"did not accept the connection within 300ms", body)
        self.assertLess(elapsed, 5)  # the connect deadline, not the kernel's SYN retries

    def test_connect_failure_fails_over_and_ejects(self):
        for _ in range(8):
            status, _, body = self.req("GET", "/failover/hello")
            self.assertEqual((status, body), (200, b"Hello, world\n"))
        # POST too: a refused connection carried nothing, so retrying it is safe.
        status, _, body = self.req("POST", "/failover/echo", body=b"once")
        self.assertEqual((status, body), (200, b"once"))
        self.assertIn("ejected", self.gw.stderr() + self.gw.stdout())

    def test_retries_exhausted_is_502(self):
        status, headers, body = self.req("GET", "/exhausted/hello")
        self.assertEqual(status, 502)
        self.assertEqual(headers.get("x-proxer-error"), "retries_exhausted")
        self.assertIn(b"3 attempts failed", body)

    def test_503_retried_for_get_never_for_post(self):
        before_flaky, before_a = self.hits(self.flaky, "/hello"), self.hits(self.a, "/hello")
        for _ in range(6):
            status, _, body = self.req("GET", "/retry/hello")
            self.assertEqual((status, body), (200, b"Hello, world\n"))
        # Round robin sends each GET to the flaky endpoint first (the retry takes the other
        # turn), and the retry always goes to the other endpoint.
        self.assertEqual(self.hits(self.flaky, "/hello") - before_flaky, 6)
        self.assertEqual(self.hits(self.a, "/hello") - before_a, 6)
        # POST is not idempotent: a 503 that reached the flaky upstream is passed on, not retried.
        before_flaky, before_a = self.hits(self.flaky, "/echo"), self.hits(self.a, "/echo")
        statuses = [self.req("POST", "/retry/echo", body=b"x")[0] for _ in range(4)]
        self.assertEqual((sorted(statuses), self.hits(self.flaky, "/echo") - before_flaky),
                         ([200, 200, 503, 503], 2))
        self.assertEqual(self.hits(self.a, "/echo") - before_a, 2)

    def test_response_timeout_is_504(self):
        status, headers, body = self.req("GET", "/slow/slow?ms=3000")
        self.assertEqual(status, 504)
        self.assertEqual(headers.get("x-proxer-error"), "timeout")

    def test_every_attempt_timed_out_is_504(self):
        # Two attempts, each cut at per_try_timeout: the answer follows the last failure (a
        # timeout, 504) rather than the generic 502 retries_exhausted.
        before = self.hits(self.a, "/slow?ms=2001")
        started = time.monotonic()
        status, headers, body = self.req("GET", "/slow-retried/slow?ms=2001")
        elapsed = time.monotonic() - started
        self.assertEqual(status, 504, body)
        self.assertEqual(headers.get("x-proxer-error"), "timeout")
        self.assertIn(b"2 attempts failed; the last:", body)
        self.assertIn(b"did not answer within 300ms", body)
        self.assertGreaterEqual(elapsed, 0.55)
        self.assertLess(elapsed, 1.9)
        self.assertEqual(self.hits(self.a, "/slow?ms=2001") - before, 2)

    def test_outlier_ejection_after_consecutive_5xx(self):
        before = self.hits(self.flaky, "/hello")
        statuses = [self.req("GET", "/eject/hello")[0] for _ in range(12)]
        self.assertEqual(self.hits(self.flaky, "/hello") - before, 2)
        self.assertEqual(statuses.count(503), 2)
        self.assertEqual(statuses[-6:], [200] * 6)

    def test_circuit_breaker_limits_requests_in_flight(self):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            slow = pool.submit(self.req, "GET", "/breaker/slow?ms=1500")
            time.sleep(0.4)
            status, headers, body = self.req("GET", "/breaker/hello")
            self.assertEqual(status, 503, body)
            self.assertEqual(headers.get("x-proxer-error"), "circuit_open")
            self.assertEqual(slow.result()[0], 200)
        self.assertEqual(self.req("GET", "/breaker/hello")[0], 200)

    @unittest.skipIf(websockets is None, "python3-websockets is not installed")
    def test_websocket_to_a_direct_upstream(self):
        async def go():
            url = "ws://127.0.0.1:%d/ws/chat" % self.gw.ports.listen
            async with websockets.connect(url, ping_interval=None, max_size=1 << 22) as ws:
                for msg in ["hello", b"\x00binary", "x" * 200_000]:
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
        asyncio.run(asyncio.wait_for(go(), 20))


if __name__ == "__main__":
    unittest.main()
