"""Tunnel pools: several agents serving one tunnel name (pool = true on every one of them). The
gateway spreads requests over them, drops an agent that leaves, refuses an agent that did not
opt in, follows the agents' own health checks of their local targets (a malformed status line
fails them), balances a cluster's tunnel endpoint over the pool with the cluster's policy, and
shares a TCP tunnel's port."""

import http.client
import json
import os
import socket
import time

import harness

GATEWAY_TOML = """
tcp = { port_range = "%d-%d" }

[[routes]]
name = "rr"
path_prefix = "/rr/"
cluster = "pooled-rr"
strip_prefix = true

[[routes]]
name = "sticky"
path_prefix = "/sticky/"
cluster = "pooled-hash"
strip_prefix = true

[clusters.pooled-rr]
lb = "round_robin"
endpoints = ["tunnel:app"]

[clusters.pooled-hash]
lb = "ip_hash"
endpoints = ["tunnel:app"]
"""


def agent_toml(tunnels):
    """[[tunnels]] tables: each a dict of name, url, and optional pool / health (a dict)."""
    out = []
    for t in tunnels:
        out.append("[[tunnels]]")
        out.append('name = "%s"' % t["name"])
        out.append('url = "%s"' % t["url"])
        if t.get("pool"):
            out.append("pool = true")
        if "health" in t:
            out.append("[tunnels.health_check]")
            for k, v in t["health"].items():
                out.append("%s = %s" % (k, json.dumps(v)))
    return "\n".join(out) + "\n"


def served_by(port, path, count, host=None):
    """`count` requests to the backend's /conn, each on a new connection: the backend ports that
    answered, in order (every answer must be a 200)."""
    ports = []
    for _ in range(count):
        status, _, body = harness.http_request("GET", port, path, host=host)
        if status != 200:
            raise AssertionError("GET %s answered %d: %r" % (path, status, body))
        ports.append(json.loads(body)["port"])
    return ports


class RawTarget(harness.ThreadedServer):
    """A local target that answers every request head with `self.reply` (raw bytes, settable)
    and closes: a health check's view of a server that writes its status line by hand."""

    def __init__(self, reply):
        self.reply = reply
        super().__init__()

    def _serve(self, conn):
        conn.settimeout(10)
        buf = b""
        with conn:
            try:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                conn.sendall(self.reply)
            except OSError:
                return



class PoolsTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be_a = harness.start_backend(cls.workdir, registry=cls.class_procs, name="backend-a")
        cls.be_b = harness.start_backend(cls.workdir, registry=cls.class_procs, name="backend-b")

    def setUp(self):
        super().setUp()
        for be in (self.be_a, self.be_b):
            self.set_backend_health(be, True)

    # --- helpers ------------------------------------------------------------------------------

    def start_gateway(self):
        lo = harness.free_port()  # the TCP port range: one port, shared by a TCP pool
        conf = os.path.join(self.workdir, "gateway-%d.toml" % lo)
        with open(conf, "w") as f:
            f.write(GATEWAY_TOML % (lo, lo))
        gw = self.gateway(extra=["--config", conf])
        gw.tcp_port = lo
        return gw

    def start_pool_agent(self, gw, agent_id, tunnels):
        conf = os.path.join(self.workdir, "agent-%s.toml" % agent_id)
        with open(conf, "w") as f:
            f.write(agent_toml(tunnels))
        return self.agent(gw.ports.agent, [], agent_id=agent_id, name="agent-" + agent_id,
                          extra=["--config", conf])

    def app(self, be, pool=True, health=None, name="app", scheme="http"):
        t = {"name": name, "url": "%s://127.0.0.1:%d" % (scheme, be.port), "pool": pool}
        if health is not None:
            t["health"] = health
        return t

    def wait_members(self, gw, name, want, procs=(), timeout=harness.TUNNEL_TIMEOUT,
                     in_rotation=None):
        """Polls the admin API until `name` has `want` members (and, when given, `in_rotation`
        of them in rotation); returns the tunnel's entry."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            for p in procs:
                if p.poll() is not None:
                    raise AssertionError("%s exited\n%s" % (p.name, p.tail()))
            last = harness.find_tunnel(gw.ports.admin, name)
            members = len(last["members"]) if last else 0
            rot = last["members_in_rotation"] if last else 0
            if members == want and (in_rotation is None or rot == in_rotation):
                return last
            if time.monotonic() >= deadline:
                raise AssertionError("tunnel %r: wanted %d member(s) (%s in rotation), last: %r"
                                     % (name, want, in_rotation, last))
            time.sleep(0.05)

    @staticmethod
    def set_backend_health(be, ok):
        conn = http.client.HTTPConnection(harness.LOOPBACK, be.port, timeout=5)
        try:
            conn.request("POST", "/__health?ok=%d" % (1 if ok else 0), body=b"")
            resp = conn.getresponse()
            assert resp.status == 200, resp.status
            resp.read()
        finally:
            conn.close()

    # --- tests --------------------------------------------------------------------------------

    def test_two_agents_share_a_name_then_one_leaves(self):
        gw = self.start_gateway()
        a = self.start_pool_agent(gw, "pa", [self.app(self.be_a)])
        b = self.start_pool_agent(gw, "pb", [self.app(self.be_b)])
        t = self.wait_members(gw, "app", 2, procs=[gw, a, b])
        self.assertTrue(t["pool"])
        self.assertTrue(t["healthy"])
        self.assertEqual(sorted(m["agent_id"] for m in t["members"]), ["pa", "pb"])
        both = {self.be_a.port, self.be_b.port}
        # By path and by Host: each new connection's request goes to the next member.
        ports = served_by(gw.ports.listen, "/t/app/conn", 10)
        self.assertEqual(set(ports), both)
        self.assertEqual(ports.count(self.be_a.port), 5)
        self.assertEqual(set(served_by(gw.ports.listen, "/conn", 4, host="app.localhost")), both)
        # One keep-alive client connection: still balanced per request, every answer whole.
        conn = http.client.HTTPConnection(harness.LOOPBACK, gw.ports.listen, timeout=10)
        seen = []
        for _ in range(6):
            status, _, body = harness.http_request("GET", gw.ports.listen, "/t/app/conn",
                                                   conn=conn)
            self.assertEqual(status, 200)
            seen.append(json.loads(body)["port"])
        conn.close()
        self.assertEqual(set(seen), both)
        t = harness.find_tunnel(gw.ports.admin, "app")
        self.assertEqual(t["request_count"], sum(m["request_count"] for m in t["members"]))
        self.assertGreaterEqual(t["request_count"], 20)
        self.assertIn("(pool: 2 members)", gw.stderr())

        # Agent "pa" dies: the pool shrinks to "pb", and every request succeeds there.
        a.kill()
        self.wait_members(gw, "app", 1, procs=[gw, b])
        self.assertEqual(served_by(gw.ports.listen, "/t/app/conn", 10), [self.be_b.port] * 10)
        # The last member leaves: the name is gone.
        b.kill()
        harness.wait_tunnel_gone(gw.ports.admin, "app", timeout=10)
        status, _, _ = harness.http_request("GET", gw.ports.listen, "/t/app/conn")
        self.assertEqual(status, 404)

    def test_an_agent_must_opt_in_to_share_a_name(self):
        gw = self.start_gateway()
        a = self.start_pool_agent(gw, "pa", [self.app(self.be_a)])
        self.wait_members(gw, "app", 1, procs=[gw, a])
        lone = self.start_pool_agent(gw, "lone", [self.app(self.be_b, pool=False)])
        lone.wait_for_output("tunnel 'app' is already served by agent 'pa' as a pool: set "
                             "pool = true", timeout=10, stream="stderr")
        # The other way round: the holder did not opt in.
        solo = self.start_pool_agent(gw, "solo", [self.app(self.be_a, pool=False, name="solo")])
        self.wait_members(gw, "solo", 1, procs=[gw, solo])
        joiner = self.start_pool_agent(gw, "joiner", [self.app(self.be_b, name="solo")])
        joiner.wait_for_output("tunnel 'solo' is already served by agent 'solo' without pool = "
                               "true", timeout=10, stream="stderr")
        # Traffic stays with the holders.
        self.assertEqual(set(served_by(gw.ports.listen, "/t/app/conn", 4)), {self.be_a.port})
        self.assertEqual(set(served_by(gw.ports.listen, "/t/solo/conn", 4)), {self.be_a.port})
        self.assertEqual(len(harness.find_tunnel(gw.ports.admin, "app")["members"]), 1)
        self.assertFalse(harness.find_tunnel(gw.ports.admin, "solo")["pool"])

    def test_agent_health_checks_take_a_member_out_and_back(self):
        gw = self.start_gateway()
        health = {"path": "/healthz", "interval": "100ms", "timeout": "100ms",
                  "healthy_threshold": 1, "unhealthy_threshold": 2}
        a = self.start_pool_agent(gw, "pa", [self.app(self.be_a, health=health)])
        b = self.start_pool_agent(gw, "pb", [self.app(self.be_b, health=health)])
        self.wait_members(gw, "app", 2, procs=[gw, a, b], in_rotation=2)
        self.assertEqual(set(served_by(gw.ports.listen, "/t/app/conn", 4)),
                         {self.be_a.port, self.be_b.port})

        # Backend A starts failing its health path: agent "pa" reports it, the gateway stops
        # sending to it (its /conn would still answer: only the report keeps requests away).
        self.set_backend_health(self.be_a, False)
        t = self.wait_members(gw, "app", 2, procs=[gw, a, b], in_rotation=1)
        member = {m["agent_id"]: m for m in t["members"]}
        self.assertFalse(member["pa"]["healthy"])
        self.assertFalse(member["pa"]["in_rotation"])
        self.assertIn("answered 503", member["pa"]["health_reason"])
        self.assertEqual(member["pa"]["health_transitions"], 1)
        self.assertTrue(member["pb"]["healthy"])
        self.assertEqual(served_by(gw.ports.listen, "/t/app/conn", 8), [self.be_b.port] * 8)
        a.wait_for_output("is unhealthy", timeout=5, stream="stderr")
        self.assertEqual(gw.stderr().count("reports its local target unhealthy"), 1)

        # Both unhealthy: a clear 503.
        self.set_backend_health(self.be_b, False)
        self.wait_members(gw, "app", 2, procs=[gw, a, b], in_rotation=0)
        status, headers, body = harness.http_request("GET", gw.ports.listen, "/t/app/conn")
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("X-Proxer-Error"), "no_healthy_endpoint")
        self.assertIn(b"no connected agent whose local service is healthy", body)
        self.assertFalse(harness.find_tunnel(gw.ports.admin, "app")["healthy"])

        # Both recover: both are used again.
        self.set_backend_health(self.be_a, True)
        self.set_backend_health(self.be_b, True)
        t = self.wait_members(gw, "app", 2, procs=[gw, a, b], in_rotation=2)
        self.assertEqual({m["health_transitions"] for m in t["members"]}, {2})
        self.assertEqual(set(served_by(gw.ports.listen, "/t/app/conn", 6)),
                         {self.be_a.port, self.be_b.port})
        self.assertEqual(gw.stderr().count("healthy again; back in rotation"), 2)

    def test_unhealthy_target_at_registration_is_reported_after_it(self):
        # Agent "pa" finds its target down (possibly before its tunnel is registered): the
        # verdict reaches the gateway either way, and the member leaves the rotation.
        self.set_backend_health(self.be_a, False)
        gw = self.start_gateway()
        health = {"path": "/healthz", "interval": "100ms", "timeout": "100ms",
                  "healthy_threshold": 1, "unhealthy_threshold": 1}
        b = self.start_pool_agent(gw, "pb", [self.app(self.be_b)])
        self.wait_members(gw, "app", 1, procs=[gw, b])
        a = self.start_pool_agent(gw, "pa", [self.app(self.be_a, health=health)])
        a.wait_for_output("is unhealthy", timeout=10, stream="stderr")
        self.wait_members(gw, "app", 2, procs=[gw, a, b], in_rotation=1)
        self.assertEqual(set(served_by(gw.ports.listen, "/t/app/conn", 6)), {self.be_b.port})

    def test_agent_health_check_parses_the_status_line(self):
        # The agent's check reads the response head with http::parse_response_head: a malformed
        # status line fails it, a status line without a reason phrase passes.
        target = RawTarget(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")
        self.addCleanup(target.close)
        gw = self.start_gateway()
        health = {"path": "/healthz", "interval": "200ms", "timeout": "200ms",
                  "healthy_threshold": 1, "unhealthy_threshold": 1}
        t = {"name": "app", "url": "http://127.0.0.1:%d" % target.port, "pool": True,
             "health": health}
        a = self.start_pool_agent(gw, "pa", [t])
        t = self.wait_members(gw, "app", 1, procs=[gw, a], in_rotation=0)
        self.assertIn("malformed response head: invalid status line",
                      t["members"][0]["health_reason"])

        target.reply = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"
        self.wait_members(gw, "app", 1, procs=[gw, a], in_rotation=1)
        a.wait_for_output("is healthy again", timeout=5, stream="stderr")

        target.reply = b"HTTP/1.1 20\r\n\r\n"
        t = self.wait_members(gw, "app", 1, procs=[gw, a], in_rotation=0)
        self.assertIn("malformed response head: invalid status line",
                      t["members"][0]["health_reason"])

    def test_cluster_tunnel_endpoint_uses_the_cluster_policy_over_the_pool(self):
        gw = self.start_gateway()
        a = self.start_pool_agent(gw, "pa", [self.app(self.be_a)])
        b = self.start_pool_agent(gw, "pb", [self.app(self.be_b)])
        self.wait_members(gw, "app", 2, procs=[gw, a, b])
        # round_robin alternates between the members.
        ports = served_by(gw.ports.listen, "/rr/conn", 6)
        self.assertEqual(set(ports), {self.be_a.port, self.be_b.port})
        self.assertTrue(all(ports[i] != ports[i + 1] for i in range(5)), ports)
        # ip_hash keeps this client (127.0.0.1) on one member.
        self.assertEqual(len(set(served_by(gw.ports.listen, "/sticky/conn", 6))), 1)
        # A member leaving: the cluster's requests go to the other.
        a.kill()
        self.wait_members(gw, "app", 1, procs=[gw, b])
        self.assertEqual(set(served_by(gw.ports.listen, "/rr/conn", 4)), {self.be_b.port})
        self.assertEqual(set(served_by(gw.ports.listen, "/sticky/conn", 4)), {self.be_b.port})

    def test_tcp_pool_shares_one_port(self):
        gw = self.start_gateway()
        a = self.start_pool_agent(gw, "pa", [self.app(self.be_a, scheme="tcp", name="db")])
        b = self.start_pool_agent(gw, "pb", [self.app(self.be_b, scheme="tcp", name="db")])
        t = self.wait_members(gw, "db", 2, procs=[gw, a, b])
        self.assertEqual(t["public_port"], gw.tcp_port)

        def conn_port():
            # HTTP/1.0 over the raw TCP tunnel: the backend answers and closes.
            with socket.create_connection((harness.LOOPBACK, gw.tcp_port), timeout=10) as s:
                s.sendall(b"GET /conn HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            return json.loads(body)["port"]

        ports = [conn_port() for _ in range(6)]
        self.assertEqual(set(ports), {self.be_a.port, self.be_b.port})
        # The first member leaving keeps the port open for the other.
        a.kill()
        self.wait_members(gw, "db", 1, procs=[gw, b])
        self.assertEqual({conn_port() for _ in range(4)}, {self.be_b.port})
        # The last one leaving frees it.
        b.kill()
        harness.wait_tunnel_gone(gw.ports.admin, "db", timeout=10)
        deadline = time.monotonic() + 5
        while harness.port_is_open(gw.tcp_port):
            self.assertLess(time.monotonic(), deadline, "the pool's port stayed open")
            time.sleep(0.05)


if __name__ == "__main__":
    import unittest
    unittest.main()
