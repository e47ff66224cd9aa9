"""Agent <-> gateway over TLS with a self-signed certificate."""

import http.client
import time
import unittest

import harness


class TlsTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        harness.start_tls_gateway_class(cls)

    def public_get(self, path):
        """GET on the public listener. --tls-cert is for the agent listener; should the
        gateway serve the public side over TLS as well, talk HTTPS with the same CA."""
        port = self.gw.ports.listen
        try:
            return harness.http_request("GET", port, path, timeout=10)
        except (http.client.BadStatusLine, http.client.RemoteDisconnected, ConnectionResetError):
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                               context=harness.client_tls_context(self.cert))
            return harness.http_request("GET", port, path, timeout=10, conn=conn)

    def assert_tunnel_serves(self, name):
        status, _, body = self.public_get("/t/%s/hello" % name)
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_agent_with_ca(self):
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("secure", self.be.port)],
                        scheme="tls", extra=["--ca", self.cert])
        harness.wait_tunnel(self.gw.ports.admin, "secure", procs=[self.gw, ag])
        self.assert_tunnel_serves("secure")
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/hello",
                                               host="secure.localhost:%d" % self.gw.ports.listen)
        self.assertEqual(status, 200)

    def test_agent_without_ca_refuses_gateway(self):
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("untrusted", self.be.port)],
                        scheme="tls", name="agent-no-ca")
        text = ag.wait_for_output(
            lambda t: "certificate" in t.lower() or "verify" in t.lower(), timeout=10)
        self.assertTrue(text)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            self.assertIsNone(harness.find_tunnel(self.gw.ports.admin, "untrusted"))
            time.sleep(0.1)

    def test_agent_insecure(self):
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("lax", self.be.port)],
                        scheme="tls", extra=["--insecure"], name="agent-insecure")
        harness.wait_tunnel(self.gw.ports.admin, "lax", procs=[self.gw, ag])
        self.assert_tunnel_serves("lax")

    def test_plain_tcp_agent_not_accepted_on_tls_listener(self):
        self.agent(self.gw.ports.agent, [harness.tunnel_spec("plain", self.be.port)],
                   scheme="tcp", name="agent-plain")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            self.assertIsNone(harness.find_tunnel(self.gw.ports.admin, "plain"))
            time.sleep(0.1)


if __name__ == "__main__":
    unittest.main()
