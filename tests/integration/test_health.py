"""Active health checks of clusters ([clusters.NAME.health_check]): an endpoint whose checks fail
leaves the rotation after unhealthy_threshold failures and comes back after healthy_threshold
passes, each transition logged once; expected_status decides what passes; a tunnel endpoint is
checked through its agent (and fails while the tunnel has no agent); a cluster with no healthy
endpoint answers 503 no_healthy_endpoint. Real backends (backend.py), real gateway and agent."""

import json
import os
import signal
import sys
import time

import harness

WAIT = 15.0  # bound of every wait for a health transition (checks run every 200 ms)


def health_section(cluster, path, expected="200-399", healthy=2, unhealthy=2, host=None):
    text = f"""
[clusters.{cluster}.health_check]
path = "{path}"
interval = "200ms"
timeout = "1s"
expected_status = "{expected}"
healthy_threshold = {healthy}
unhealthy_threshold = {unhealthy}
"""
    if host:
        text += f'host = "{host}"\n'
    # Passive ejection off: what takes an endpoint out here is the active checks alone.
    text += f"""
[clusters.{cluster}.outlier]
consecutive_5xx = 0
consecutive_connect_failures = 0
"""
    return text


def route(name, cluster):
    return f"""
[[routes]]
name = "{name}"
path_prefix = "/{name}/"
strip_prefix = true
cluster = "{cluster}"
[routes.retry]
retries = 0
"""


class HealthCheckTest(harness.ProxerTestCase):
    def start_gateway_with(self, toml):
        conf = os.path.join(self.workdir, "gateway-%s.toml" % self._testMethodName)
        with open(conf, "w") as f:
            f.write(toml)
        # Debug: each failed check is logged, so a test can wait for checks that follow a
        # transition and then prove the transition was logged once only.
        return self.gateway(extra=["--config", conf, "--log-level", "debug"])

    def named_backend(self, name, port=None):
        """backend.py on a free port, or on `port` (to bring a stopped backend back)."""
        if port is None:
            return harness.start_backend(self.workdir, self.procs, name=name)
        proc = self.spawn(name, [sys.executable, "-u", harness.BACKEND_PY, str(port)],
                          env={"PYTHONDONTWRITEBYTECODE": "1"})
        proc.wait_for_output("BACKEND_READY", harness.START_TIMEOUT, stream="stdout")
        proc.port = port
        return proc

    def req(self, gw, path):
        return harness.http_request("GET", gw.ports.listen, path, host="app.example")

    def log(self, gw):
        return gw.stdout() + gw.stderr()

    def count(self, gw, needle):
        return sum(1 for line in self.log(gw).splitlines() if needle in line)

    def wait_count(self, gw, needle, at_least, timeout=WAIT):
        """Waits until `needle` is in at least `at_least` log lines; returns the count."""
        gw.wait_for_output(lambda text: sum(1 for line in text.splitlines() if needle in line)
                           >= at_least, timeout)
        return self.count(gw, needle)

    def hits(self, backend, path):
        return sum(1 for r in harness.get_json(backend.port, "/__stats")["requests"]
                   if r["path"] == path)

    def wait_hits(self, backend, path, at_least, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while self.hits(backend, path) < at_least:
            self.assertLess(time.monotonic(), deadline,
                            "%s: fewer than %d requests for %s" % (backend.name, at_least, path))
            time.sleep(0.05)

    def ports_served(self, gw, path, n):
        ports = []
        for _ in range(n):
            status, _, body = self.req(gw, path)
            self.assertEqual(status, 200, body)
            ports.append(json.loads(body)["port"])
        return ports

    def test_failing_endpoint_leaves_rotation_and_comes_back(self):
        a = self.named_backend("backend-a")
        b = self.named_backend("backend-b")
        gw = self.start_gateway_with(route("pair", "pair") + f"""
[clusters.pair]
endpoints = ["http://127.0.0.1:{a.port}", "http://127.0.0.1:{b.port}"]
""" + health_section("pair", "/hello"))
        # Both in rotation (round robin), and each is probed on its own connection.
        self.assertEqual(sorted(set(self.ports_served(gw, "/pair/conn", 4))),
                         sorted([a.port, b.port]))
        self.wait_hits(a, "/hello", 2)
        self.wait_hits(b, "/hello", 2)

        b_url = "http://127.0.0.1:%d" % b.port
        unhealthy = "endpoint %s is unhealthy" % b_url
        healthy = "endpoint %s is healthy again" % b_url
        failed = "health check of %s failed" % b_url
        b.stop()
        self.wait_count(gw, unhealthy, 1)
        self.assertIn("connection refused", [line for line in self.log(gw).splitlines()
                                             if unhealthy in line][0])
        self.assertEqual(self.ports_served(gw, "/pair/conn", 6), [a.port] * 6)
        # More failed checks after the transition, still one "unhealthy" line.
        self.wait_count(gw, failed, self.count(gw, failed) + 3)
        self.assertEqual(self.count(gw, unhealthy), 1)

        # The backend comes back on the same port: two passes put it back.
        self.named_backend("backend-b-again", port=b.port)
        self.wait_count(gw, healthy, 1)
        self.assertEqual(sorted(set(self.ports_served(gw, "/pair/conn", 4))),
                         sorted([a.port, b.port]))
        self.assertEqual((self.count(gw, unhealthy), self.count(gw, healthy)), (1, 1))
        self.assertEqual(self.count(gw, "endpoint http://127.0.0.1:%d is" % a.port), 0)

    def test_expected_status_decides_and_no_healthy_endpoint_is_503(self):
        a = self.named_backend("backend-a")
        b = self.named_backend("backend-b")
        gw = self.start_gateway_with(
            route("expect404", "expect404") + route("expect2xx", "expect2xx")
            + route("both", "both") + f"""
[clusters.expect404]
endpoints = ["http://127.0.0.1:{a.port}"]
""" + health_section("expect404", "/no-such-path", expected="404") + f"""
[clusters.expect2xx]
endpoints = ["http://127.0.0.1:{b.port}"]
""" + health_section("expect2xx", "/status/500") + f"""
[clusters.both]
endpoints = ["http://127.0.0.1:{a.port}", "http://127.0.0.1:{b.port}"]
""" + health_section("both", "/status/503", unhealthy=3))
        # /status/500 against 200-399 fails: unhealthy, and its only endpoint is out.
        self.wait_count(gw, "cluster 'expect2xx': endpoint http://127.0.0.1:%d is unhealthy"
                        % b.port, 1)
        self.assertIn("status 500", self.log(gw))
        status, headers, body = self.req(gw, "/expect2xx/hello")
        self.assertEqual(status, 503, body)
        self.assertEqual(headers.get("x-proxer-error"), "no_healthy_endpoint")
        self.assertIn(b"unhealthy or ejected", body)

        # Every endpoint of `both` fails its checks: 503 no_healthy_endpoint naming both.
        for port in (a.port, b.port):
            self.wait_count(gw, "cluster 'both': endpoint http://127.0.0.1:%d is unhealthy"
                            % port, 1)
        status, headers, body = self.req(gw, "/both/hello")
        self.assertEqual(status, 503, body)
        self.assertEqual(headers.get("x-proxer-error"), "no_healthy_endpoint")
        for port in (a.port, b.port):
            self.assertIn(b"127.0.0.1:%d" % port, body)

        # A 404 is what expect404 expects: its endpoint passes every check and stays in.
        self.wait_hits(a, "/no-such-path", 4)
        self.assertEqual(self.count(gw, "cluster 'expect404': endpoint"), 0)
        self.assertEqual(self.count(gw, "health check of http://127.0.0.1:%d failed: status 404"
                                    % a.port), 0)
        status, _, body = self.req(gw, "/expect404/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_https_endpoint_is_checked_over_verified_tls(self):
        cert, key = harness.make_self_signed_cert(self.workdir)
        tls = harness.start_backend(self.workdir, self.procs, name="backend-tls", tls=(cert, key))
        gw = self.start_gateway_with(route("tls", "tls") + f"""
[clusters.tls]
endpoints = ["https://localhost:{tls.port}"]
ca = "{cert}"
""" + health_section("tls", "/hello") + f"""
[clusters.tls-wrong-name]
endpoints = ["https://localhost:{tls.port}"]
ca = "{cert}"
server_name = "other.example"
""" + health_section("tls-wrong-name", "/hello"))
        # Same verification as traffic: a name the certificate does not carry fails the check.
        self.wait_count(gw, "cluster 'tls-wrong-name': endpoint https://localhost:%d is unhealthy"
                        % tls.port, 1)
        self.assertIn("TLS handshake failed", self.log(gw))
        # The verified one passes its checks (each on a new TLS connection) and stays in. The
        # HTTPS backend's own /__stats is read through the gateway's route to it.
        deadline = time.monotonic() + WAIT
        while True:
            status, _, body = self.req(gw, "/tls/__stats")
            self.assertEqual(status, 200, body)
            if sum(1 for r in json.loads(body)["requests"] if r["path"] == "/hello") >= 4:
                break
            self.assertLess(time.monotonic(), deadline, "fewer than 4 checks reached %s" % tls)
            time.sleep(0.05)
        self.assertEqual(self.count(gw, "cluster 'tls': endpoint"), 0)
        self.assertEqual(self.count(gw, "cluster 'tls': health check of"), 0)  # none failed
        status, _, body = self.req(gw, "/tls/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_reload_starts_and_stops_the_checks(self):
        good = self.named_backend("backend-good")
        bad = harness.start_backend(self.workdir, self.procs, name="backend-bad", fail_status=503)
        cluster = route("pair", "pair") + f"""
[reload]
watch = false

[clusters.pair]
endpoints = ["http://127.0.0.1:{good.port}", "http://127.0.0.1:{bad.port}"]
[clusters.pair.outlier]
consecutive_5xx = 0
consecutive_connect_failures = 0
"""
        gw = self.start_gateway_with(cluster)
        conf = os.path.join(self.workdir, "gateway-%s.toml" % self._testMethodName)
        statuses = [self.req(gw, "/pair/hello")[0] for _ in range(4)]
        self.assertEqual(sorted(statuses), [200, 200, 503, 503])  # no checks: round robin

        def reload(text, count):
            with open(conf + ".tmp", "w") as f:
                f.write(text)
            os.replace(conf + ".tmp", conf)
            os.kill(gw.pid, signal.SIGHUP)
            self.wait_count(gw, "configuration reloaded", count)

        # Checks turned on by a reload: the failing endpoint leaves the rotation.
        checks = cluster.replace("[clusters.pair.outlier]\nconsecutive_5xx = 0\n"
                                 "consecutive_connect_failures = 0\n", "")
        checks += health_section("pair", "/hello")
        reload(checks, 1)
        self.wait_count(gw, "endpoint http://127.0.0.1:%d is unhealthy" % bad.port, 1)
        self.assertIn("status 503", self.log(gw))
        self.assertEqual([self.req(gw, "/pair/hello")[0] for _ in range(4)], [200] * 4)

        # Turned off again: the checker stops (no more probes) and the new cluster, unchecked,
        # sends traffic to both.
        reload(cluster, 2)
        statuses = [self.req(gw, "/pair/hello")[0] for _ in range(4)]
        self.assertEqual(sorted(statuses), [200, 200, 503, 503])
        probes = self.hits(bad, "/hello")
        time.sleep(1.0)  # five check intervals
        self.assertEqual(self.hits(bad, "/hello"), probes)

    def test_tunnel_endpoint_is_checked_through_its_agent(self):
        svc = self.named_backend("local-service")
        gw = self.start_gateway_with(route("tun", "tun") + route("ghost", "ghost") + """
[clusters.tun]
endpoints = ["tunnel:svc"]
""" + health_section("tun", "/hello") + """
[clusters.ghost]
endpoints = ["tunnel:ghost"]
""" + health_section("ghost", "/hello"))
        # No agent serves tunnel "ghost": its checks fail without a stream.
        self.wait_count(gw, "endpoint tunnel:ghost is unhealthy", 1)
        self.assertIn("tunnel 'ghost' has no connected agent", self.log(gw))

        ag = self.agent(gw.ports.agent, [harness.tunnel_spec("svc", svc.port)])
        harness.wait_tunnel(gw.ports.admin, "svc", procs=[gw, ag])
        # The checks reach the local service through the agent (it sees them as requests).
        self.wait_hits(svc, "/hello", 3)
        # The endpoint may have gone unhealthy while the agent connected; it is healthy now.
        deadline = time.monotonic() + WAIT
        while self.req(gw, "/tun/hello")[0] != 200:
            self.assertLess(time.monotonic(), deadline, "tunnel endpoint never healthy")
            time.sleep(0.05)

        unhealthy = "endpoint tunnel:svc is unhealthy"
        before = self.count(gw, unhealthy)
        svc.stop()
        self.wait_count(gw, unhealthy, before + 1)
        last = [line for line in self.log(gw).splitlines() if unhealthy in line][-1]
        self.assertIn("the local service refused the connection", last)
        status, headers, body = self.req(gw, "/tun/hello")
        self.assertEqual(status, 503, body)
        self.assertEqual(headers.get("x-proxer-error"), "no_healthy_endpoint")

        healthy = "endpoint tunnel:svc is healthy again"
        before_healthy = self.count(gw, healthy)
        self.named_backend("local-service-again", port=svc.port)
        self.wait_count(gw, healthy, before_healthy + 1)
        status, _, body = self.req(gw, "/tun/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        self.assertEqual(self.count(gw, unhealthy), before + 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
