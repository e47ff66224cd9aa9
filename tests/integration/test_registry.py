"""Tunnel ownership between agents, and request limits of the public listener."""

import socket
import time
import unittest

import harness


class RegistryTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)

    def test_name_held_by_another_live_agent_is_refused(self):
        gw = self.gateway()
        first = self.agent(gw.ports.agent, [harness.tunnel_spec("shared", self.be.port)],
                           agent_id="first", name="first")
        harness.wait_tunnel(gw.ports.admin, "shared", procs=[gw, first])
        second = self.agent(gw.ports.agent, [harness.tunnel_spec("shared", self.be.port)],
                            agent_id="second", name="second")
        second.wait_for_output("already served by agent 'first'", timeout=10, stream="stderr")
        t = harness.find_tunnel(gw.ports.admin, "shared")
        self.assertEqual(t["agent_id"], "first")
        # Traffic still reaches the first agent's tunnel.
        status, _, body = harness.http_request("GET", gw.ports.listen, "/t/shared/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_same_agent_id_replaces_its_stale_session(self):
        gw = self.gateway()
        old = self.agent(gw.ports.agent, [harness.tunnel_spec("mine", self.be.port)],
                         agent_id="laptop", name="old")
        harness.wait_tunnel(gw.ports.admin, "mine", procs=[gw, old])
        since = harness.find_tunnel(gw.ports.admin, "mine")["connected_since"]
        # The old agent freezes (its session is stale but not yet expired: default TTL 30 s).
        old.signal(__import__("signal").SIGSTOP)
        new = self.agent(gw.ports.agent, [harness.tunnel_spec("mine", self.be.port)],
                         agent_id="laptop", name="new")
        new.wait_for_output("is live", timeout=10, stream="stderr")
        status, _, body = harness.http_request("GET", gw.ports.listen, "/t/mine/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        t = harness.find_tunnel(gw.ports.admin, "mine")
        self.assertEqual(t["agent_id"], "laptop")
        self.assertGreaterEqual(t["connected_since"], since)
        self.assertIn("replacing its previous session", gw.stderr())


class StreamReuseTest(harness.ProxerTestCase):
    """A keep-alive client keeps its tunnel stream between requests; the pool gets it back when
    the client leaves."""

    def test_client_connection_keeps_its_stream_then_returns_it(self):
        be = self.backend()
        gw = self.gateway()
        ag = self.agent(gw.ports.agent, [harness.tunnel_spec("reuse", be.port)])
        harness.wait_tunnel(gw.ports.admin, "reuse", procs=[gw, ag])
        conn = __import__("http.client").client.HTTPConnection(harness.LOOPBACK, gw.ports.listen,
                                                               timeout=10)
        for _ in range(3):
            status, _, body = harness.http_request("GET", gw.ports.listen, "/t/reuse/hello",
                                                   conn=conn)
            self.assertEqual((status, body), (200, b"Hello, world\n"))
            t = harness.find_tunnel(gw.ports.admin, "reuse")
            self.assertEqual(t["idle_streams"], 0)  # held by the connection, not pooled
            self.assertEqual(t["open_streams"], 1)  # one stream served all three requests
        conn.close()
        deadline = time.monotonic() + 5
        while harness.find_tunnel(gw.ports.admin, "reuse")["idle_streams"] != 1:
            self.assertLess(time.monotonic(), deadline, "stream never returned to the pool")
            time.sleep(0.05)
        # The next client takes it from the pool: still one stream in all.
        status, _, _ = harness.http_request("GET", gw.ports.listen, "/t/reuse/hello")
        self.assertEqual(status, 200)
        self.assertEqual(harness.find_tunnel(gw.ports.admin, "reuse")["open_streams"], 1)


class LimitsTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        conf = harness.os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write('[timeouts]\nheader = "500ms"\n[limits]\nmax_body_bytes = "1KiB"\n')
        cls.gw = harness.start_gateway(cls.workdir, extra=["--config", conf],
                                       registry=cls.class_procs)
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("lim", cls.be.port)],
                                     registry=cls.class_procs)
        harness.wait_tunnel(cls.gw.ports.admin, "lim", procs=[cls.gw, cls.ag])

    def test_slow_client_gets_408(self):
        with socket.create_connection(("127.0.0.1", self.gw.ports.listen), timeout=10) as s:
            s.sendall(b"GET /t/lim/hello HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
            start = time.monotonic()
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            elapsed = time.monotonic() - start
        status, fields, _ = harness.parse_response(data)
        self.assertEqual(status, 408, data[:300])
        self.assertIn("x-proxer-error", fields)
        self.assertLess(elapsed, 5)

    def test_body_over_limit_gets_413(self):
        status, headers, _ = harness.http_request("POST", self.gw.ports.listen, "/t/lim/upload",
                                                  body=b"x" * 4096)
        self.assertEqual(status, 413)
        self.assertIn("x-proxer-error", {k.lower() for k in headers})

    def test_chunked_body_over_limit_gets_413(self):
        status, headers, _ = harness.http_request("POST", self.gw.ports.listen, "/t/lim/upload",
                                                  body=b"y" * 4096, chunked=True)
        self.assertEqual(status, 413)

    def test_body_under_limit_passes(self):
        status, _, body = harness.http_request("POST", self.gw.ports.listen, "/t/lim/echo",
                                               body=b"z" * 512)
        self.assertEqual((status, body), (200, b"z" * 512))


if __name__ == "__main__":
    unittest.main()
