"""Cluster counters on the admin API: GET /api/clusters (JSON) and GET /metrics (Prometheus text).
Requests are routed to a cluster with a good and a failing endpoint (5xx until ejected), to a
cluster whose only endpoint refuses connections, and to a cluster whose active health checks
take an endpoint out; the numbers are read back from both views and must agree with what was
sent. Real backends (backend.py), real gateway."""

import json
import os
import re
import time

import harness

WAIT = 15.0

GATEWAY_TOML = """
[[routes]]
name = "mixed"
path_prefix = "/mixed/"
strip_prefix = true
cluster = "good-and-bad"
[routes.retry]
retries = 0

[[routes]]
name = "refused"
path_prefix = "/refused/"
strip_prefix = true
cluster = "refused"
[routes.retry]
retries = 0

[[routes]]
name = "checked"
path_prefix = "/checked/"
strip_prefix = true
cluster = "checked"

[clusters.good-and-bad]
endpoints = ["http://127.0.0.1:{good}", {{ url = "http://127.0.0.1:{bad}", weight = 2 }}]
[clusters.good-and-bad.outlier]
consecutive_5xx = 2
max_ejected_percent = 50
base_ejection_time = "1m"

[clusters.refused]
endpoints = ["http://127.0.0.1:{closed}"]
[clusters.refused.outlier]
consecutive_connect_failures = 0

[clusters.checked]
endpoints = ["http://127.0.0.1:{good}", "http://127.0.0.1:{closed}"]
[clusters.checked.health_check]
path = "/hello"
interval = "200ms"
timeout = "1s"
unhealthy_threshold = 1
healthy_threshold = 1
"""

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\d+)$')


def parse_metrics(text):
    """{(name, frozenset of label pairs): value}, checking the exposition format on the way:
    every sample belongs to the family announced by the last # TYPE line."""
    out = {}
    family = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            family = line.split()[2]
            continue
        m = SAMPLE.match(line)
        assert m, "malformed sample line: %r" % line
        name, labels, value = m.groups()
        assert name == family, "%s outside its family %s" % (name, family)
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        key = (name, pairs)
        assert key not in out, "duplicate series %r" % (key,)
        out[key] = int(value)
    return out


class ClusterMetricsTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.good = harness.start_backend(cls.workdir, cls.class_procs, name="backend-good")
        cls.bad = harness.start_backend(cls.workdir, cls.class_procs, name="backend-bad",
                                        fail_status=503)
        cls.closed = harness.closed_port()
        conf = os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write(GATEWAY_TOML.format(good=cls.good.port, bad=cls.bad.port, closed=cls.closed))
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", conf])

    def get(self, path):
        return harness.http_request("GET", self.gw.ports.listen, path, host="app.example")

    def clusters(self):
        return {c["name"]: c for c in harness.get_json(self.gw.ports.admin, "/api/clusters")["clusters"]}

    def metrics(self):
        status, headers, body = harness.http_request("GET", self.gw.ports.admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"))
        return parse_metrics(body.decode())

    def value(self, metrics, name, **labels):
        key = (name, frozenset(labels.items()))
        self.assertIn(key, metrics, "no series %s%r" % (name, labels))
        return metrics[key]

    def test_counters_of_a_cluster_with_a_failing_endpoint(self):
        good = "http://127.0.0.1:%d" % self.good.port
        bad = "http://127.0.0.1:%d" % self.bad.port
        statuses = [self.get("/mixed/hello")[0] for _ in range(9)]
        # The bad endpoint answers 503 until its second one ejects it; the rest go to the good one.
        self.assertEqual(statuses.count(503), 2, statuses)
        self.assertEqual(statuses.count(200), 7, statuses)

        c = self.clusters()["good-and-bad"]
        self.assertEqual(c["routes"], ["mixed"])
        self.assertEqual((c["requests"], c["retries"], c["no_endpoint"]), (9, 0, 0))
        self.assertEqual((c["ejections"], c["active_requests"]), (1, 0))
        eps = {e["url"]: e for e in c["endpoints"]}
        self.assertEqual(eps[bad]["weight"], 2)
        self.assertEqual((eps[bad]["requests"], eps[bad]["failures"], eps[bad]["responses_5xx"],
                          eps[bad]["connect_failures"]), (2, 2, 2, 0))
        self.assertEqual((eps[bad]["ejected"], eps[bad]["healthy"], eps[bad]["in_rotation"],
                          eps[bad]["ejections"]), (True, True, False, 1))
        self.assertEqual((eps[good]["requests"], eps[good]["failures"], eps[good]["ejected"]),
                         (7, 0, False))
        self.assertEqual(c["circuit_breaker"]["requests"]["limit"], 1024)

        m = self.metrics()
        cl = "good-and-bad"
        self.assertEqual(self.value(m, "proxer_cluster_requests_total", cluster=cl), 9)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_requests_total", cluster=cl,
                                    endpoint=bad), 2)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_requests_total", cluster=cl,
                                    endpoint=good), 7)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_failures_total", cluster=cl,
                                    endpoint=bad, kind="5xx"), 2)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_failures_total", cluster=cl,
                                    endpoint=bad, kind="connect"), 0)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_ejected", cluster=cl,
                                    endpoint=bad), 1)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_ejected", cluster=cl,
                                    endpoint=good), 0)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_ejections_total", cluster=cl,
                                    endpoint=bad), 1)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_active_requests", cluster=cl,
                                    endpoint=good), 0)
        self.assertEqual(self.value(m, "proxer_cluster_breaker_limit", cluster=cl,
                                    resource="requests"), 1024)
        self.assertGreaterEqual(self.value(m, "proxer_requests_total"), 9)

    def test_connect_failures_count_as_upstream_errors(self):
        before = self.clusters()["refused"]
        for _ in range(3):
            status, headers, _ = self.get("/refused/hello")
            self.assertEqual((status, headers.get("x-proxer-error")), (502, "upstream_refused"))
        after = self.clusters()["refused"]
        self.assertEqual(after["requests"] - before["requests"], 3)
        self.assertEqual(after["upstream_errors"] - before["upstream_errors"], 3)
        ep_before, ep_after = before["endpoints"][0], after["endpoints"][0]
        self.assertEqual(ep_after["connect_failures"] - ep_before["connect_failures"], 3)
        self.assertEqual(ep_after["responses_5xx"], 0)
        m = self.metrics()
        self.assertEqual(self.value(m, "proxer_cluster_upstream_errors_total", cluster="refused"),
                         after["upstream_errors"])
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_failures_total", cluster="refused",
                                    endpoint="http://127.0.0.1:%d" % self.closed,
                                    kind="connect"), ep_after["connect_failures"])

    def test_health_transitions_are_counted(self):
        down = "http://127.0.0.1:%d" % self.closed
        up = "http://127.0.0.1:%d" % self.good.port
        deadline = time.monotonic() + WAIT
        while True:
            eps = {e["url"]: e for e in self.clusters()["checked"]["endpoints"]}
            if not eps[down]["healthy"]:
                break
            self.assertLess(time.monotonic(), deadline, "the closed endpoint never became unhealthy")
            time.sleep(0.1)
        self.assertEqual((eps[down]["became_unhealthy"], eps[down]["became_healthy"]), (1, 0))
        self.assertEqual((eps[up]["healthy"], eps[up]["became_unhealthy"]), (True, 0))
        for _ in range(4):  # all to the healthy endpoint
            self.assertEqual(self.get("/checked/hello")[0], 200)
        m = self.metrics()
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_healthy", cluster="checked",
                                    endpoint=down), 0)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_healthy", cluster="checked",
                                    endpoint=up), 1)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_health_transitions_total",
                                    cluster="checked", endpoint=down, to="unhealthy"), 1)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_health_transitions_total",
                                    cluster="checked", endpoint=down, to="healthy"), 0)
        self.assertEqual(self.value(m, "proxer_cluster_endpoint_requests_total", cluster="checked",
                                    endpoint=down), 0)
        self.assertGreaterEqual(self.value(m, "proxer_cluster_endpoint_requests_total",
                                           cluster="checked", endpoint=up), 4)

    def test_metrics_answer_head_and_json_is_valid(self):
        status, headers, body = harness.http_request("HEAD", self.gw.ports.admin, "/metrics")
        self.assertEqual((status, body), (200, b""))
        status, _, body = harness.http_request("GET", self.gw.ports.admin, "/api/clusters")
        self.assertEqual(status, 200)
        names = [c["name"] for c in json.loads(body)["clusters"]]
        self.assertEqual(names, sorted(names))
        self.assertEqual(set(names), {"good-and-bad", "refused", "checked"})
