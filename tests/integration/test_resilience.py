"""Failures and lifecycle: dead agents, gateway restarts, SIGTERM drain, busy ports, session TTL."""

import os
import signal
import socket
import threading
import time
import unittest

import harness


class Background:
    """Runs one http_request in a thread; result() joins it (bounded) and returns
    (status, headers, body, seconds) or re-raises the client's exception."""

    def __init__(self, *args, **kw):
        self.value = None
        self.error = None
        self.done_at = None
        self.start = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=args, kwargs=kw, daemon=True)
        self.thread.start()

    def _run(self, *args, **kw):
        try:
            self.value = harness.http_request(*args, **kw)
        except BaseException as e:  # Reported by result().
            self.error = e
        self.done_at = time.monotonic()

    def alive(self):
        return self.thread.is_alive()

    def result(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("client request still hanging after %.1f s" % timeout)
        if self.error is not None:
            raise self.error
        return self.value + (self.done_at - self.start,)


class ResilienceTest(harness.ProxerTestCase):
    """Each test starts its own gateway and agent (they get killed); the backend is shared."""

    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)

    def pair(self, gateway_extra=(), ports=None):
        gw = self.gateway(extra=gateway_extra, ports=ports)
        ag = self.agent(gw.ports.agent, [harness.tunnel_spec("app", self.be.port)])
        harness.wait_tunnel(gw.ports.admin, "app", procs=[gw, ag])
        return gw, ag

    def hello(self, gw, timeout=10):
        return harness.http_request("GET", gw.ports.listen, "/t/app/hello", timeout=timeout)

    def test_agent_killed_mid_request_502(self):
        gw, ag = self.pair()
        req = Background("GET", gw.ports.listen, "/t/app/slow?ms=5000", timeout=15)
        time.sleep(0.5)
        killed_at = time.monotonic()
        ag.kill()
        status, headers, body, _ = req.result(timeout=10)
        waited = req.done_at - killed_at
        self.assertEqual(status, 502, body[:300])
        self.assertIsNotNone(headers.get("X-Proxer-Error"))
        self.assertLess(waited, 2.0, "502 came %.2f s after the agent died" % waited)
        # The tunnel is gone; new requests fail fast too.
        harness.wait_tunnel_gone(gw.ports.admin, "app", timeout=5)
        start = time.monotonic()
        status, _, _ = self.hello(gw)
        self.assertIn(status, (404, 502))
        self.assertLess(time.monotonic() - start, 2.0)

    def test_gateway_restart_agent_reconnects(self):
        gw, ag = self.pair()
        self.assertEqual(self.hello(gw)[0], 200)
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(15), 0, gw.tail())
        gw2 = self.gateway(ports=gw.ports, name="gateway-restarted")
        start = time.monotonic()
        harness.wait_tunnel(gw2.ports.admin, "app", timeout=15, procs=[gw2, ag])
        status, _, body = self.hello(gw2)
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        print("\n  agent back %.2f s after the gateway restarted" % (time.monotonic() - start))

    def test_sigterm_drains_inflight(self):
        gw, _ = self.pair()
        req = Background("GET", gw.ports.listen, "/t/app/slow?ms=1500", timeout=15)
        time.sleep(0.3)
        term_at = time.monotonic()
        gw.signal(signal.SIGTERM)
        status, _, body, _ = req.result(timeout=15)
        self.assertEqual((status, body), (200, b"slept 1500 ms\n"))
        rc = gw.wait_exit(15)
        self.assertEqual(rc, 0, gw.tail())
        print("\n  gateway exited %.2f s after SIGTERM" % (time.monotonic() - term_at))

    def test_sigterm_refuses_new_connections(self):
        gw, _ = self.pair()
        req = Background("GET", gw.ports.listen, "/t/app/slow?ms=3000", timeout=15)
        time.sleep(0.3)
        gw.signal(signal.SIGTERM)
        # While the slow request is still in flight, the public port must refuse connections.
        deadline = time.monotonic() + 1.5
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                with socket.create_connection(("127.0.0.1", gw.ports.listen), timeout=1):
                    pass
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        self.assertTrue(refused, "public port still accepts connections 1.5 s after SIGTERM")
        self.assertTrue(req.alive(), "the in-flight request ended before the check was meaningful")
        self.assertIsNone(gw.poll(), "gateway exited before draining its in-flight request")
        status, _, body, _ = req.result(timeout=15)
        self.assertEqual((status, body), (200, b"slept 3000 ms\n"))
        self.assertEqual(gw.wait_exit(15), 0, gw.tail())

    def test_port_in_use(self):
        for flag in ("listen", "agent", "admin"):
            with self.subTest(port=flag):
                holder = socket.socket()
                try:
                    holder.bind(("127.0.0.1", 0))
                    holder.listen(8)
                    busy = holder.getsockname()[1]
                    ports = harness.GatewayPorts(**{flag: busy})
                    gw = self.gateway(ports=ports, wait=False, name="gateway-busy-" + flag)
                    rc = gw.wait_exit(10)
                    self.assertIsNotNone(rc, "gateway kept running with %s port %d taken" % (flag, busy))
                    self.assertNotEqual(rc, 0)
                    self.assertIn(str(busy), gw.stderr(), "stderr should name the busy address")
                finally:
                    holder.close()

    def test_session_ttl_and_reconnect(self):
        config = os.path.join(self.workdir, "ttl-gateway.toml")
        with open(config, "w") as f:
            f.write('[session]\nheartbeat_interval = "300ms"\nttl = "1s"\n')
        gw, ag = self.pair(gateway_extra=["--config", config])
        ag.signal(signal.SIGSTOP)
        try:
            gone_after = harness.wait_tunnel_gone(gw.ports.admin, "app", timeout=4)
        finally:
            ag.signal(signal.SIGCONT)
        self.assertLess(gone_after, 3.5)
        print("\n  stale session dropped %.2f s after the agent froze" % gone_after)
        status, headers, _ = self.hello(gw)
        self.assertIn(status, (404, 502))
        # Awake again: the agent notices its session is dead and reconnects by itself.
        harness.wait_tunnel(gw.ports.admin, "app", timeout=15, procs=[gw, ag])
        status, _, body = self.hello(gw)
        self.assertEqual((status, body), (200, b"Hello, world\n"))


if __name__ == "__main__":
    unittest.main()
