"""A cluster's active health checks of a pooled tunnel endpoint: two agents serve tunnel `app` as a
pool, and the cluster's checks probe each member on its own. A member whose service fails the
check path gets no requests through the cluster (the other keeps serving, the endpoint stays
healthy), /api/clusters and /metrics show its verdict next to the agent's, and it gets traffic
again when its service recovers. With no member passing, the endpoint is unhealthy (503).
Real gateway, agents and backends on loopback."""

import http.client
import os
import time

import harness
import test_pools

WAIT = 15.0  # bound of every wait for a verdict (checks run every 200 ms)

GATEWAY_TOML = """
[[routes]]
name = "checked"
path_prefix = "/checked/"
cluster = "checked"
strip_prefix = true
[routes.retry]
retries = 0

[clusters.checked]
lb = "round_robin"
endpoints = ["tunnel:app"]

[clusters.checked.health_check]
path = "/healthz"
interval = "200ms"
timeout = "1s"
healthy_threshold = 2
unhealthy_threshold = 2

# Passive ejection off: what keeps a member out here is the active checks alone.
[clusters.checked.outlier]
consecutive_5xx = 0
consecutive_connect_failures = 0
"""


class PoolHealthCheckTest(harness.ProxerTestCase):
    def setUp(self):
        super().setUp()
        self.be_a = harness.start_backend(self.workdir, self.procs, name="backend-a")
        self.be_b = harness.start_backend(self.workdir, self.procs, name="backend-b")
        conf = os.path.join(self.workdir, "gateway-%s.toml" % self._testMethodName)
        with open(conf, "w") as f:
            f.write(GATEWAY_TOML)
        self.gw = self.gateway(extra=["--config", conf])
        self.pa = self.pool_agent("pa", self.be_a)
        self.pb = self.pool_agent("pb", self.be_b)
        # Before the agents connect (slow under sanitizers) the checks may already have found
        # the endpoint without a member and declared it unhealthy: the tests count from here.
        e = self.wait_for("both members checked and passing",
                          lambda e: e["healthy"] and len(e.get("members", [])) == 2
                          and all(m["checked"] and m["healthy"] for m in e["members"]))
        self.base_unhealthy = e["became_unhealthy"]
        self.base_logs = {n: self.log_count(n) for n in (
            "endpoint tunnel:app is unhealthy", "endpoint tunnel:app is healthy again")}

    # --- helpers ------------------------------------------------------------------------------

    def pool_agent(self, agent_id, be):
        conf = os.path.join(self.workdir, "agent-%s-%s.toml" % (agent_id, self._testMethodName))
        with open(conf, "w") as f:
            f.write(test_pools.agent_toml([{"name": "app", "pool": True,
                                            "url": "http://127.0.0.1:%d" % be.port}]))
        return self.agent(self.gw.ports.agent, [], agent_id=agent_id, name="agent-" + agent_id,
                          extra=["--config", conf])

    def endpoint(self):
        clusters = harness.get_json(self.gw.ports.admin, "/api/clusters")["clusters"]
        (c,) = [c for c in clusters if c["name"] == "checked"]
        (e,) = c["endpoints"]
        return e

    def members(self):
        return {m["agent_id"]: m for m in self.endpoint().get("members", [])}

    def wait_for(self, what, predicate, timeout=WAIT):
        """Polls /api/clusters until predicate(endpoint) holds; returns the endpoint."""
        deadline = time.monotonic() + timeout
        while True:
            for p in (self.gw, self.pa, self.pb):
                if p.poll() is not None and p not in getattr(self, "gone", ()):
                    raise AssertionError("%s exited\n%s" % (p.name, p.tail()))
            e = self.endpoint()
            if predicate(e):
                return e
            if time.monotonic() >= deadline:
                raise AssertionError("timed out waiting for %s; last: %r" % (what, e))
            time.sleep(0.05)

    def wait_members(self, n):
        return self.wait_for("%d member(s)" % n, lambda e: len(e.get("members", [])) == n)

    def member_is(self, agent_id, healthy):
        def check(e):
            ms = {m["agent_id"]: m for m in e.get("members", [])}
            return agent_id in ms and ms[agent_id]["checked"] and ms[agent_id]["healthy"] == healthy
        return check

    def served(self, n):
        return test_pools.served_by(self.gw.ports.listen, "/checked/conn", n)

    def set_health(self, be, ok, status=503):
        conn = http.client.HTTPConnection(harness.LOOPBACK, be.port, timeout=5)
        try:
            conn.request("POST", "/__health?ok=%d&status=%d" % (1 if ok else 0, status), body=b"")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            resp.read()
        finally:
            conn.close()

    def health_hits(self, be):
        return sum(1 for r in harness.get_json(be.port, "/__stats")["requests"]
                   if r["path"] == "/healthz")

    def log_count(self, needle):
        text = self.gw.stdout() + self.gw.stderr()
        return sum(1 for line in text.splitlines() if needle in line)

    def metric(self, name, labels):
        status, _, body = harness.http_request("GET", self.gw.ports.admin, "/metrics")
        self.assertEqual(status, 200)
        prefix = name + "{" + labels + "}"
        for line in body.decode().splitlines():
            if line.startswith(prefix + " "):
                return int(line.split()[-1])
        raise AssertionError("no sample %s in\n%s" % (prefix, body.decode()))

    # --- tests --------------------------------------------------------------------------------

    def test_a_failing_member_gets_no_traffic_and_comes_back(self):
        both = {self.be_a.port, self.be_b.port}
        # Every member is probed on each interval (not one member per check in turn).
        start_a, start_b = self.health_hits(self.be_a), self.health_hits(self.be_b)
        self.wait_for("checks of both members",
                      lambda e: self.health_hits(self.be_a) >= start_a + 3
                      and self.health_hits(self.be_b) >= start_b + 3)
        self.assertEqual(set(self.served(6)), both)

        # Backend B answers 500 on the health path (its /conn still answers 200: only the
        # cluster's checks can keep requests away from it).
        self.set_health(self.be_b, False, status=500)
        e = self.wait_for("member pb failing", self.member_is("pb", False))
        pb, pa = self.members()["pb"], self.members()["pa"]
        self.assertEqual(pb["last_failure"], "status 500")
        self.assertTrue(pb["agent_healthy"])  # its agent has nothing against it
        self.assertFalse(pb["in_rotation"])
        self.assertEqual(pb["became_unhealthy"], 1)
        self.assertTrue(pa["healthy"] and pa["in_rotation"])
        self.assertTrue(e["healthy"])         # one member passes: the endpoint stays healthy
        self.assertTrue(e["in_rotation"])
        self.assertEqual(e["became_unhealthy"], self.base_unhealthy)
        # Every request through the cluster goes to the member that passes.
        self.assertEqual(self.served(10), [self.be_a.port] * 10)
        # The checks go on; the transition is logged once.
        hits = self.health_hits(self.be_b)
        self.wait_for("more checks of pb", lambda e: self.health_hits(self.be_b) >= hits + 3)
        self.assertEqual(self.served(4), [self.be_a.port] * 4)
        self.assertEqual(self.log_count("member 'pb' is unhealthy after 2 failed check(s)"), 1)
        self.assertEqual(self.log_count("endpoint tunnel:app is unhealthy"),
                         self.base_logs["endpoint tunnel:app is unhealthy"])
        labels = 'cluster="checked",endpoint="tunnel:app",member="pb"'
        self.assertEqual(self.metric("proxer_cluster_endpoint_member_healthy", labels), 0)
        self.assertEqual(self.metric("proxer_cluster_endpoint_member_health_transitions_total",
                                     labels + ',to="unhealthy"'), 1)
        self.assertEqual(self.metric("proxer_cluster_endpoint_healthy",
                                     'cluster="checked",endpoint="tunnel:app"'), 1)
        # The verdict is the cluster's: routing by tunnel name still uses both members.
        self.assertEqual(set(test_pools.served_by(self.gw.ports.listen, "/t/app/conn", 6)), both)

        # B recovers: after two passes it gets traffic again.
        self.set_health(self.be_b, True)
        self.wait_for("member pb healthy again", self.member_is("pb", True))
        self.assertEqual(set(self.served(6)), both)
        pb = self.members()["pb"]
        self.assertEqual((pb["became_unhealthy"], pb["became_healthy"]), (1, 1))
        self.assertNotIn("last_failure", pb)
        self.assertEqual(self.log_count("member 'pb' is healthy again"), 1)
        self.assertEqual(self.log_count("member 'pa' is"), 0)
        self.assertEqual(self.endpoint()["became_unhealthy"], self.base_unhealthy)

    def test_a_stopped_member_then_none_passing_then_recovery(self):
        # Backend B stops: its agent's streams are refused, pb fails the checks.
        self.be_b.stop()
        self.wait_for("member pb failing", self.member_is("pb", False))
        self.assertIn("refused", self.members()["pb"]["last_failure"])
        self.assertEqual(self.served(6), [self.be_a.port] * 6)
        self.assertTrue(self.endpoint()["healthy"])

        # A fails too: no member passes, the endpoint is unhealthy and the route answers 503.
        self.set_health(self.be_a, False, status=500)
        e = self.wait_for("endpoint unhealthy", lambda e: not e["healthy"])
        self.assertFalse(e["in_rotation"])
        self.assertEqual(e["became_unhealthy"], self.base_unhealthy + 1)
        self.assertEqual({m["healthy"] for m in e["members"]}, {False})
        status, headers, body = harness.http_request("GET", self.gw.ports.listen, "/checked/conn")
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("X-Proxer-Error"), "no_healthy_endpoint")
        # The agents are connected: the message blames the cluster's checks, not the agents.
        self.assertIn(b"every agent fails the cluster's health checks: app", body)
        self.assertEqual(self.log_count("endpoint tunnel:app is unhealthy: none of its 2"), 1)

        # A recovers: the endpoint is healthy again with A alone.
        self.set_health(self.be_a, True)
        e = self.wait_for("endpoint healthy again", lambda e: e["healthy"])
        self.assertEqual(self.served(4), [self.be_a.port] * 4)
        self.assertEqual(self.log_count("endpoint tunnel:app is healthy again"),
                         self.base_logs["endpoint tunnel:app is healthy again"] + 1)
        self.assertIn("endpoint tunnel:app is healthy again: 1 of its 2",
                      [ln for ln in self.gw.stderr().splitlines() if "healthy again" in ln][-1])

        # Agent pb leaves: its member and its verdict go.
        self.gone = (self.pb,)
        self.pb.kill()
        e = self.wait_members(1)
        self.assertEqual([m["agent_id"] for m in e["members"]], ["pa"])
        self.assertTrue(e["healthy"])


if __name__ == "__main__":
    import unittest
    unittest.main()
