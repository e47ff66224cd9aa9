"""Agent carriers other than raw TCP/TLS: WebSocket (ws://) on the public listener and on the
agent listener, and wss:// to a TLS agent listener. Same frames, same session semantics: the
tunnel must behave exactly as over tcp://."""

import os
import shutil
import sys
import unittest

import harness

try:
    import websockets
    import asyncio
except ImportError:  # pragma: no cover
    websockets = None


def agent_args(url, tunnels, extra=()):
    args = [harness.proxer_bin(), "agent", "--gateway", url, "--token", harness.DEFAULT_TOKEN]
    for t in tunnels:
        args += ["--tunnel", t]
    return args + list(extra)


class WebSocketCarrierTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)

    def start(self, url, name, agent_id):
        ag = self.spawn("agent-" + name,
                        agent_args(url, [harness.tunnel_spec(name, self.be.port)],
                                   ["--id", agent_id]))
        harness.wait_tunnel(self.gw.ports.admin, name, procs=[self.gw, ag])
        return ag

    def connection(self, agent_id):
        for c in harness.get_json(self.gw.ports.admin, "/connections")["connections"]:
            if c["agent_id"] == agent_id:
                return c
        self.fail("no connection for agent %s" % agent_id)

    def check_traffic(self, name):
        # Several flow-control windows both ways, checksums compared.
        self.check_tunnel_traffic(self.gw.ports.listen, name, 8 << 20, 5 << 20)

    def test_ws_on_the_public_listener(self):
        ag = self.start("ws://127.0.0.1:%d/ws" % self.gw.ports.listen, "viapublic", "ws-public")
        self.check_traffic("viapublic")
        c = self.connection("ws-public")
        self.assertEqual(c["carrier"], "ws")
        self.assertEqual(c["tunnels"], ["viapublic"])
        # The agent was told its connection id: the one /connections shows.
        ag.wait_for_output(c["id"], timeout=5, stream="stderr")
        t = harness.find_tunnel(self.gw.ports.admin, "viapublic")
        self.assertEqual(t["carrier"], "ws")

    def test_ws_on_the_agent_listener(self):
        self.start("ws://127.0.0.1:%d/ws" % self.gw.ports.agent, "viaagent", "ws-agent")
        self.check_traffic("viaagent")
        self.assertEqual(self.connection("ws-agent")["carrier"], "ws")

    def test_plain_tcp_agents_still_work_on_the_sniffing_agent_listener(self):
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("plain", self.be.port)],
                        agent_id="plain-agent")
        harness.wait_tunnel(self.gw.ports.admin, "plain", procs=[self.gw, ag])
        self.assertEqual(self.connection("plain-agent")["carrier"], "tcp")

    def test_the_agent_listener_answers_other_http_with_a_clear_404(self):
        status, _, body = harness.http_request("GET", self.gw.ports.agent, "/")
        self.assertEqual(status, 404)
        self.assertIn(b"agent listener", body)
        # Its long-poll endpoints are live (an unknown session is a 404 that says so).
        status, _, body = harness.http_request(
            "POST", self.gw.ports.agent, "/api/agent/heartbeat?session_id=nope", body=b"")
        self.assertEqual(status, 404)
        self.assertIn(b"register again", body)

    def test_long_poll_on_the_agent_listener(self):
        self.start("http://127.0.0.1:%d" % self.gw.ports.agent, "pollagent", "poll-agent")
        self.check_traffic("pollagent")
        self.assertEqual(self.connection("poll-agent")["carrier"], "poll")

    def test_wrong_path_is_a_clear_handshake_failure(self):
        ag = self.spawn("agent-badpath",
                        agent_args("ws://127.0.0.1:%d/nope" % self.gw.ports.listen,
                                   [harness.tunnel_spec("badpath", self.be.port)]))
        ag.wait_for_output("WebSocket handshake with ws://127.0.0.1:%d/nope failed"
                           % self.gw.ports.listen, timeout=10, stream="stderr")

    @unittest.skipIf(websockets is None, "python3-websockets is not installed")
    def test_a_tunnels_own_ws_path_is_not_taken_for_an_agent(self):
        ws_echo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ws_echo.py")
        echo = self.spawn("ws-echo", [sys.executable, "-u", ws_echo, "0"])
        text = echo.wait_for_output("WS_READY", harness.START_TIMEOUT, stream="stdout")
        port = int(text.split("WS_READY")[1].split()[0])
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("app", port)], agent_id="app")
        harness.wait_tunnel(self.gw.ports.admin, "app", procs=[self.gw, ag])

        async def go():
            uri = "ws://app.localhost:%d/ws" % self.gw.ports.listen
            async with websockets.connect(uri, host="127.0.0.1", port=self.gw.ports.listen,
                                          ping_interval=None) as ws:
                await ws.send("to the app, not the gateway")
                return await ws.recv()
        self.assertEqual(asyncio.run(asyncio.wait_for(go(), 20)), "to the app, not the gateway")


class SecureWebSocketCarrierTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        harness.start_tls_gateway_class(cls)

    def test_wss_with_ca(self):
        ag = self.spawn("agent-wss",
                        agent_args("wss://localhost:%d/ws" % self.gw.ports.agent,
                                   [harness.tunnel_spec("secure", self.be.port)],
                                   ["--ca", self.cert, "--id", "wss-agent"]))
        harness.wait_tunnel(self.gw.ports.admin, "secure", procs=[self.gw, ag])
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/t/secure/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        conns = harness.get_json(self.gw.ports.admin, "/connections")["connections"]
        self.assertEqual([c["carrier"] for c in conns if c["agent_id"] == "wss-agent"], ["wss"])

    def test_wss_without_ca_is_refused(self):
        ag = self.spawn("agent-wss-noca",
                        agent_args("wss://localhost:%d/ws" % self.gw.ports.agent,
                                   [harness.tunnel_spec("unverified", self.be.port)]))
        ag.wait_for_output("TLS handshake with the gateway", timeout=10, stream="stderr")
        self.assertIsNone(harness.find_tunnel(self.gw.ports.admin, "unverified"))


def start_buffering_nginx(workdir, upstream_port, registry):
    """nginx in front of the gateway as a reverse proxy that buffers whole request and response
    bodies (its defaults: proxy_request_buffering and proxy_buffering on)."""
    port = harness.free_port()
    d = os.path.join(workdir, "nginx-front")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""user root;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 256; }
http {
  access_log %(d)s/access.log;
  client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
  uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  client_max_body_size 2m;
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      proxy_pass http://127.0.0.1:%(up)d;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_request_buffering on;
      proxy_buffering on;
      proxy_read_timeout 60s;
    }
  }
}
""" % {"d": d, "port": port, "up": upstream_port})
    proc = harness.start_proc(workdir, "nginx-front",
                              [shutil.which("nginx"), "-c", conf, "-g", "daemon off;"], registry)
    harness.wait_port(proc, port, "nginx")
    proc.port = port
    proc.access_log = os.path.join(d, "access.log")
    return proc


class LongPollCarrierTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)

    def start(self, url, name, extra=()):
        ag = self.spawn("agent-" + name, agent_args(url, [harness.tunnel_spec(name, self.be.port)],
                                                    ["--id", name] + list(extra)))
        harness.wait_tunnel(self.gw.ports.admin, name, procs=[self.gw, ag])
        return ag

    def check_traffic(self, name):
        WebSocketCarrierTest.check_traffic(self, name)

    def test_long_poll_on_the_public_listener(self):
        ag = self.start("http://127.0.0.1:%d" % self.gw.ports.listen, "polled")
        self.check_traffic("polled")
        conns = harness.get_json(self.gw.ports.admin, "/connections")["connections"]
        c = [c for c in conns if c["agent_id"] == "polled"][0]
        self.assertEqual(c["carrier"], "poll")
        self.assertTrue(c["remote_address"].startswith("127.0.0.1:"), c)
        self.assertIn("over poll", ag.stderr())

    @unittest.skipIf(shutil.which("nginx") is None, "nginx is not installed")
    def test_long_poll_through_a_proxy_that_buffers_whole_bodies(self):
        front = start_buffering_nginx(self.workdir, self.gw.ports.listen, self.procs)
        self.start("http://127.0.0.1:%d" % front.port, "buffered")
        self.check_traffic("buffered")
        with open(front.access_log) as f:
            log = f.read()
        self.assertIn("/api/agent/pull", log)
        self.assertIn("/api/agent/respond", log)

    def test_wrong_token_is_refused_at_registration(self):
        ag = self.spawn("agent-badtoken",
                        [harness.proxer_bin(), "agent", "--gateway",
                         "http://127.0.0.1:%d" % self.gw.ports.listen, "--token", "wrong",
                         "--tunnel", harness.tunnel_spec("nope", self.be.port)])
        ag.wait_for_output("long-poll registration refused: invalid agent token", timeout=10,
                           stream="stderr")

    def test_endpoints_answer_bad_input_clearly(self):
        status, _, body = harness.http_request("POST", self.gw.ports.listen, "/api/agent/register",
                                               body=b"{nope")
        self.assertEqual(status, 400, body)
        status, _, body = harness.http_request("GET", self.gw.ports.listen,
                                               "/api/agent/pull?session_id=0000&wait=10")
        self.assertEqual(status, 404, body)
        self.assertIn(b"register again", body)
        status, _, body = harness.http_request("POST", self.gw.ports.listen,
                                               "/api/agent/respond?session_id=0000", body=b"x")
        self.assertEqual(status, 404, body)
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/api/agent/nothing")
        self.assertEqual(status, 404, body)


if __name__ == "__main__":
    unittest.main()
