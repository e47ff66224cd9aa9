"""Configured routes ([[routes]]) to clusters of tunnels ([clusters.NAME]): first match in file
order by host, path prefix, method and header; prefix strip and rewrite; request and response
header changes; balancing across two agents; 503 when no endpoint can take the request; and the
built-in tunnel routing still behind the routes."""

import json
import os
import sys
import time

import harness


def start_named_backend(workdir, name, registry):
    proc = harness.start_proc(workdir, name, [sys.executable, "-u", harness.BACKEND_PY, "0"],
                              registry, env={"PYTHONDONTWRITEBYTECODE": "1"})
    text = proc.wait_for_output("BACKEND_READY", harness.START_TIMEOUT, stream="stdout")
    proc.port = int(text.split("BACKEND_READY")[1].split()[0])
    return proc


GATEWAY_TOML = """
[[routes]]
name = "canary"
path_prefix = "/api/"
headers = { "X-Env" = "canary" }
cluster = "green-only"
strip_prefix = true

[[routes]]
name = "api"
host = "api.localhost"
path_prefix = "/api/"
methods = ["GET", "POST"]
cluster = "both"
strip_prefix = true
[routes.request_headers]
set = { "X-Route" = "api" }
remove = ["X-Secret"]
[routes.response_headers]
set = { "X-Served-By" = "proxer" }

[[routes]]
name = "legacy"
path_prefix = "/old/"
prefix_rewrite = "/"
cluster = "weighted"

[[routes]]
name = "down"
path_prefix = "/down/"
cluster = "nobody"
strip_prefix = true

[clusters.both]
endpoints = ["tunnel:blue", "tunnel:green"]

[clusters.green-only]
endpoints = ["tunnel:green"]

[clusters.weighted]
lb = "weighted"
endpoints = [{ url = "tunnel:blue", weight = 3 }, "tunnel:green"]

[clusters.nobody]
endpoints = ["tunnel:ghost"]
"""


class RoutesTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.blue = start_named_backend(cls.workdir, "backend-blue", cls.class_procs)
        cls.green = start_named_backend(cls.workdir, "backend-green", cls.class_procs)
        conf = os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write(GATEWAY_TOML)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", conf])
        for name, be in (("blue", cls.blue), ("green", cls.green)):
            ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec(name, be.port)],
                                     registry=cls.class_procs, name="agent-" + name,
                                     agent_id="agent-" + name)
            harness.wait_tunnel(cls.gw.ports.admin, name, procs=[cls.gw, ag])

    def served(self, backend):
        return harness.get_json(backend.port, "/__stats")["requests"]

    def get(self, path, host="api.localhost", headers=None, method="GET"):
        return harness.http_request(method, self.gw.ports.listen, path, host=host,
                                    headers=headers)

    def test_route_strips_the_prefix_and_changes_headers(self):
        status, headers, body = self.get("/api/headers?x=1", headers={"X-Secret": "s"})
        self.assertEqual(status, 200, body)
        echo = json.loads(body)
        self.assertEqual(echo["path"], "/headers?x=1")
        sent = {k.lower(): v for k, v in echo["headers"]}
        self.assertEqual(sent.get("x-route"), "api")
        self.assertNotIn("x-secret", sent)
        self.assertEqual(sent.get("x-forwarded-host"), "api.localhost")
        self.assertEqual(headers.get("x-served-by"), "proxer")

    def test_round_robin_across_two_agents(self):
        before = (len(self.served(self.blue)), len(self.served(self.green)))
        for _ in range(10):
            status, _, body = self.get("/api/hello")
            self.assertEqual((status, body), (200, b"Hello, world\n"))
        after = (len(self.served(self.blue)), len(self.served(self.green)))
        # Each /__stats call is itself a request to that backend, counted after the snapshot.
        self.assertEqual(after[0] - before[0] - 1, 5)
        self.assertEqual(after[1] - before[1] - 1, 5)

    def test_weighted_cluster(self):
        before = (len(self.served(self.blue)), len(self.served(self.green)))
        for _ in range(8):
            status, _, _ = self.get("/old/hello", host="any.example")
            self.assertEqual(status, 200)
        after = (len(self.served(self.blue)), len(self.served(self.green)))
        self.assertEqual((after[0] - before[0] - 1, after[1] - before[1] - 1), (6, 2))

    def test_first_match_wins_and_headers_select(self):
        before = len(self.served(self.green))
        for _ in range(4):
            status, _, _ = self.get("/api/hello", headers={"X-Env": "canary"})
            self.assertEqual(status, 200)
        self.assertEqual(len(self.served(self.green)) - before - 1, 4)

    def test_method_and_host_conditions(self):
        # DELETE is not among the api route's methods, and no other route matches: the request
        # falls through to the built-in tunnel routing, which knows no tunnel "api".
        status, _, body = self.get("/api/hello", method="DELETE")
        self.assertEqual(status, 404, body)
        status, _, body = self.get("/api/hello", host="other.example")
        self.assertEqual(status, 404, body)

    def test_no_endpoint_is_503_naming_the_tunnels(self):
        status, headers, body = self.get("/down/x", host="x.example")
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("x-proxer-error"), "no_healthy_endpoint")
        self.assertIn(b"ghost", body)

    def test_builtin_tunnel_routing_still_works(self):
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/t/blue/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_an_agent_going_away_leaves_the_other_endpoint(self):
        ag = harness.start_agent(self.workdir, self.gw.ports.agent,
                                 [harness.tunnel_spec("ghost", self.blue.port)],
                                 registry=self.procs, name="agent-ghost", agent_id="agent-ghost")
        harness.wait_tunnel(self.gw.ports.admin, "ghost", procs=[self.gw, ag])
        status, _, _ = self.get("/down/hello", host="x.example")
        self.assertEqual(status, 200)
        ag.kill()
        harness.wait_tunnel_gone(self.gw.ports.admin, "ghost", timeout=40)
        deadline = time.monotonic() + 10
        while self.get("/down/hello", host="x.example")[0] != 503:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)


class RoutesConfigErrorsTest(harness.ProxerTestCase):
    def test_invalid_routes_are_refused_with_every_error(self):
        conf = os.path.join(self.workdir, "bad.toml")
        with open(conf, "w") as f:
            f.write('[[routes]]\ncluster = "nope"\npath_prefix = "api"\n'
                    '[clusters.c]\nendpoints = ["http://10.0.0.1:80"]\n'
                    '[clusters.c.circuit_breaker]\nmax_requests = 0\n')
        proc = self.spawn("gateway-bad", [harness.proxer_bin(), "gateway", "--config", conf])
        self.assertEqual(proc.wait_exit(10), 2)
        err = proc.stderr()
        self.assertIn('routes[0].cluster: no cluster named "nope"', err)
        self.assertIn("routes[0].path_prefix: must start with '/'", err)
        self.assertIn("clusters.c.circuit_breaker.max_requests: must be between 1", err)
