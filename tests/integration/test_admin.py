"""Admin endpoints of design B: GET /connections, POST /forward, GET /health (and the /api/
aliases), against a real gateway, agent and backend."""

import base64
import json
import os
import time
import unittest

import backend
import harness


def forward(admin, payload, timeout=20):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, _, out = harness.http_request("POST", admin, "/forward", body=body,
                                          headers={"Content-Type": "application/json"},
                                          timeout=timeout)
    return status, json.loads(out)


class AdminTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.closed_port = harness.closed_port()
        conf = os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write('[timeouts]\nforward = "1s"\n')
        cls.gw = harness.start_gateway(cls.workdir, extra=["--config", conf],
                                       registry=cls.class_procs)
        cls.admin = cls.gw.ports.admin
        cls.ag = harness.start_agent(
            cls.workdir, cls.gw.ports.agent,
            [harness.tunnel_spec("app", cls.be.port),
             harness.tunnel_spec("locked", cls.be.port, "tok"),
             harness.tunnel_spec("down", cls.closed_port)],
            registry=cls.class_procs, agent_id="admin-agent")
        for name in ("app", "locked", "down"):
            harness.wait_tunnel(cls.admin, name, procs=[cls.gw, cls.ag])

    def test_health_aliases(self):
        for path in ("/health", "/api/health"):
            self.assertEqual(harness.get_json(self.admin, path)["status"], "ok")

    def test_connections_lists_the_agent_session(self):
        for path in ("/connections", "/api/connections"):
            conns = harness.get_json(self.admin, path)["connections"]
            self.assertEqual(len(conns), 1)
            c = conns[0]
            self.assertEqual(c["agent_id"], "admin-agent")
            self.assertEqual(sorted(c["tunnels"]), ["app", "down", "locked"])
            self.assertEqual(c["carrier"], "tcp")
            self.assertTrue(c["remote_address"].startswith("127.0.0.1:"), c)
            self.assertRegex(c["connected_since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertTrue(c["id"])
            self.assertIsInstance(c["open_streams"], int)
            self.assertIsInstance(c["rtt_us"], int)

    def test_forward_get(self):
        status, out = forward(self.admin, {"tunnel": "app", "path": "/hello"})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["status"], 200)
        self.assertEqual(out["body"], "Hello, world\n")
        self.assertEqual(out["headers"]["content-length"], "13")
        self.assertGreaterEqual(out["duration_ms"], 0)

    def test_forward_post_with_headers_and_body(self):
        status, out = forward(self.admin, {"tunnel": "app", "method": "POST", "path": "/echo",
                                           "headers": {"Content-Type": "text/x-test",
                                                       "X-Many": ["a", "b"]},
                                           "body": "héllo through /forward"})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["status"], 200)
        self.assertEqual(out["body"], "héllo through /forward")
        self.assertEqual(out["headers"]["content-type"], "text/x-test")
        _, seen = forward(self.admin, {"tunnel": "app", "path": "/headers",
                                       "headers": {"X-Many": ["a", "b"]}})
        sent = json.loads(seen["body"])["headers"]
        self.assertEqual([v for k, v in sent if k.lower() == "x-many"], ["a", "b"])
        self.assertEqual([v for k, v in sent if k.lower() == "host"], ["app.localhost"])

    def test_forward_binary_body_both_ways(self):
        raw = bytes(range(256)) * 4
        status, out = forward(self.admin, {"tunnel": "app", "method": "PUT", "path": "/echo",
                                           "body_base64": base64.b64encode(raw).decode()})
        self.assertEqual(status, 200, out)
        self.assertNotIn("body", out)
        self.assertEqual(base64.b64decode(out["body_base64"]), raw)
        status, out = forward(self.admin, {"tunnel": "app", "path": "/bytes?n=70000&seed=3"})
        self.assertEqual(status, 200, out)
        self.assertEqual(base64.b64decode(out["body_base64"]), backend.gen_bytes(70000, 3))

    def test_forward_skips_the_tunnel_token(self):
        # The admin listener is trusted: /forward reaches a token-protected tunnel directly.
        status, out = forward(self.admin, {"tunnel": "locked", "path": "/hello"})
        self.assertEqual((status, out["status"]), (200, 200))

    def test_forward_errors(self):
        cases = [
            (b"{not json", 400, "not valid JSON"),
            ({"path": "/"}, 400, "'tunnel' is required"),
            ({"tunnel": "app", "verb": "GET"}, 400, "unknown field 'verb'"),
            ({"tunnel": "app", "path": "no-slash"}, 400, "'path' must start with '/'"),
            ({"tunnel": "app", "headers": {"Bad Name": "x"}}, 400, "invalid header name"),
            ({"tunnel": "app", "headers": {"X": "a\r\nInjected: 1"}}, 400, "control characters"),
            ({"tunnel": "app", "headers": {"Content-Length": "5"}}, 400, "set by the gateway"),
            ({"tunnel": "app", "body": "a", "body_base64": "YQ=="}, 400, "not both"),
            ({"tunnel": "nope"}, 404, "tunnel 'nope' not found"),
            ({"tunnel": "down", "path": "/"}, 502, "refused the connection"),
        ]
        for payload, want_status, want_text in cases:
            status, out = forward(self.admin, payload)
            self.assertEqual(status, want_status, (payload, out))
            self.assertIn(want_text, out["error"], payload)

    def test_forward_timeout_default_and_per_request(self):
        start = time.monotonic()
        status, out = forward(self.admin, {"tunnel": "app", "path": "/slow?ms=4000"})
        took = time.monotonic() - start
        self.assertEqual(status, 504, out)
        self.assertIn("1000 ms", out["error"])  # timeouts.forward = 1s from the config
        self.assertLess(took, 3.5)
        status, out = forward(self.admin, {"tunnel": "app", "path": "/slow?ms=300",
                                           "timeout_ms": 3000})
        self.assertEqual((status, out["status"]), (200, 200))

    def test_forward_refuses_what_a_browser_page_could_forge(self):
        body = json.dumps({"tunnel": "app", "path": "/hello"}).encode()
        # A cross-site form or simple fetch: text/plain, no preflight.
        status, _, out = harness.http_request("POST", self.admin, "/forward", body=body,
                                              headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415, out)
        # DNS rebinding: the page's own host name in Host.
        status, _, out = harness.http_request("POST", self.admin, "/forward", body=body,
                                              host="evil.example:%d" % self.admin,
                                              headers={"Content-Type": "application/json"})
        self.assertEqual(status, 403, out)
        status, _, out = harness.http_request("POST", self.admin, "/forward", body=body,
                                              host="localhost:%d" % self.admin,
                                              headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, out)

    def test_forward_counts_in_tunnel_stats(self):
        before = harness.find_tunnel(self.admin, "app")["request_count"]
        forward(self.admin, {"tunnel": "app", "path": "/status/201"})
        t = harness.find_tunnel(self.admin, "app")
        self.assertEqual(t["request_count"], before + 1)
        self.assertEqual(t["last_status"], 201)


if __name__ == "__main__":
    unittest.main()
