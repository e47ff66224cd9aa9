"""Hot reload of [[routes]] and [clusters]: on a change of the --config file and on SIGHUP; an
invalid file is rejected with all its errors while the old configuration keeps serving; under
load, wrk through 20 reloads that move the route between two upstreams, with zero failed
requests; and a change of a cluster's retry budget applies to the next request."""

import json
import os
import shutil
import signal
import threading
import time
import unittest

import harness
from test_load import run_wrk


def config_text(port, watch=True, extra=""):
    return f"""
[reload]
watch = {"true" if watch else "false"}

[[routes]]
path_prefix = "/"
cluster = "app"

[clusters.app]
endpoints = ["http://127.0.0.1:{port}"]
{extra}
"""


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # as editors and config managers do


class ReloadTest(harness.ProxerTestCase):
    watch = True

    @classmethod
    def start_class_processes(cls):
        cls.a = harness.start_backend(cls.workdir, cls.class_procs, name="backend-a")
        cls.b = harness.start_backend(cls.workdir, cls.class_procs, name="backend-b")
        cls.conf = os.path.join(cls.workdir, "gateway.toml")
        write_atomically(cls.conf, config_text(cls.a.port, cls.watch))
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", cls.conf])

    def serving(self):
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/conn",
                                               host="app.example")
        self.assertEqual(status, 200, body)
        return json.loads(body)["port"]

    def wait_serving(self, port, timeout=10):
        deadline = time.monotonic() + timeout
        while self.serving() != port:
            self.assertLess(time.monotonic(), deadline, self.gw.tail())
            time.sleep(0.1)

    def wait_log(self, text, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while self.gw.stderr().count(text) + self.gw.stdout().count(text) < count:
            self.assertLess(time.monotonic(), deadline, "no %r in the log\n%s" % (text,
                                                                                self.gw.tail()))
            time.sleep(0.1)

    def log_count(self, text):
        return self.gw.stderr().count(text) + self.gw.stdout().count(text)

    def switch_to(self, port, hup=False):
        write_atomically(self.conf, config_text(port, self.watch))
        if hup:
            os.kill(self.gw.pid, signal.SIGHUP)
        self.wait_serving(port)


class FileWatchReloadTest(ReloadTest):
    def test_a_changed_file_is_applied_and_an_invalid_one_rejected(self):
        self.wait_serving(self.a.port)
        reloaded = self.log_count("configuration reloaded")
        self.switch_to(self.b.port)
        self.assertEqual(self.log_count("configuration reloaded"), reloaded + 1)
        # Two errors at once: both reported, and b keeps serving.
        write_atomically(self.conf, config_text(self.a.port) +
                         '[clusters.app.outlier]\nmax_ejected_percent = 300\n'
                         '[[routes]]\ncluster = "nope"\n')
        self.wait_log("configuration reload (file changed) rejected")
        self.wait_log("max_ejected_percent: must be between 0 and 100")
        self.wait_log('no cluster named "nope"')
        for _ in range(5):
            self.assertEqual(self.serving(), self.b.port)
        # Fixed again: applied.
        self.switch_to(self.a.port)


class SighupReloadTest(ReloadTest):
    watch = False

    def test_sighup_reloads_and_the_watch_can_be_off(self):
        self.wait_serving(self.a.port)
        write_atomically(self.conf, config_text(self.b.port, watch=False))
        time.sleep(2.5)  # the watch (1 s period) is off: nothing happens without the signal
        self.assertEqual(self.serving(), self.a.port)
        os.kill(self.gw.pid, signal.SIGHUP)
        self.wait_serving(self.b.port)
        self.wait_log("configuration reloaded")

    @unittest.skipUnless(shutil.which("wrk"), "wrk is not installed")
    def test_wrk_through_20_reloads_without_a_failed_request(self):
        before_a = len(harness.get_json(self.a.port, "/__stats")["requests"])
        before_b = len(harness.get_json(self.b.port, "/__stats")["requests"])
        reloads = self.log_count("configuration reloaded")
        result = {}

        def load():
            result["wrk"] = run_wrk(self.gw.ports.listen, "app.example", "/hello", 16, 8)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.5)
        for i in range(20):
            port = self.b.port if i % 2 == 0 else self.a.port
            # Every other reload also changes the cluster's pool settings: a new cluster object,
            # not only a new route table.
            extra = "max_idle = %d\n" % (8 + i) if i % 4 < 2 else ""
            write_atomically(self.conf, config_text(port, False, extra))
            os.kill(self.gw.pid, signal.SIGHUP)
            time.sleep(0.3)
        t.join(60)
        total, errors, out = result["wrk"]
        self.wait_log("configuration reloaded", reloads + 20)
        self.assertGreater(total, 500, out)
        self.assertEqual(errors, 0, out)
        served_a = len(harness.get_json(self.a.port, "/__stats")["requests"]) - before_a
        served_b = len(harness.get_json(self.b.port, "/__stats")["requests"]) - before_b
        self.assertGreater(served_a, 100)
        self.assertGreater(served_b, 100)


def budget_config_text(dead_port, budget_min):
    """A route whose only upstream refuses connections (one retry on connect_failure), and the
    cluster's retry budget: 0% of the requests in flight, at least `budget_min`."""
    return f"""
[[routes]]
path_prefix = "/"
cluster = "dead"
[routes.retry]
retries = 1
backoff_base = "1ms"
backoff_max = "1ms"

[clusters.dead]
endpoints = ["http://127.0.0.1:{dead_port}"]
[clusters.dead.outlier]
consecutive_connect_failures = 0
[clusters.dead.circuit_breaker]
retry_budget_percent = 0
retry_budget_min = {budget_min}
"""


class RetryBudgetReloadTest(harness.ProxerTestCase):
    """The retry budget is the cluster's ([clusters.NAME.circuit_breaker]); a reload that changes
    it builds the cluster anew, and the next request is held to the new budget."""

    @classmethod
    def start_class_processes(cls):
        cls.dead_port = harness.free_port()  # nothing listens: every attempt is refused
        cls.conf = os.path.join(cls.workdir, "gateway.toml")
        write_atomically(cls.conf, budget_config_text(cls.dead_port, 0))
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", cls.conf])

    def cluster(self):
        clusters = harness.get_json(self.gw.ports.admin, "/api/clusters")["clusters"]
        return {c["name"]: c for c in clusters}["dead"]

    def log(self):
        return self.gw.stderr() + self.gw.stdout()

    def wait_log(self, text, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            self.assertLess(time.monotonic(), deadline,
                            "no %r in the log\n%s" % (text, self.gw.tail()))
            time.sleep(0.1)

    def test_a_reload_that_changes_the_budget_takes_effect(self):
        # Budget 0: the failed attempt is not retried, and the cluster counts the spent budget.
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/x")
        self.assertEqual(status, 502, body)
        self.assertNotIn(b"attempts failed", body)
        c = self.cluster()
        self.assertEqual((c["requests"], c["retries"], c["retry_budget_spent"]), (1, 0, 1))
        self.assertEqual(c["circuit_breaker"]["retry_budget"],
                         {"percent": 0, "min": 0, "allows_retry": False})

        reloads = self.log().count("configuration reloaded")
        write_atomically(self.conf, budget_config_text(self.dead_port, 1))
        self.wait_log("configuration reloaded", reloads + 1)

        # Budget 1: the same request is now retried once (the new cluster's counters).
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/x")
        self.assertEqual(status, 502, body)
        self.assertIn(b"2 attempts failed", body)
        c = self.cluster()
        self.assertEqual((c["requests"], c["retries"], c["retry_budget_spent"]), (1, 1, 0))
        self.assertEqual(c["circuit_breaker"]["retry_budget"],
                         {"percent": 0, "min": 1, "allows_retry": True})

    def test_the_old_route_keys_are_refused_with_the_new_key(self):
        # A file with the old per-route key: the reload is rejected with the key to set instead.
        rejected = self.log().count("configuration reload (file changed) rejected")
        text = budget_config_text(self.dead_port, 0).replace(
            'backoff_max = "1ms"\n', 'backoff_max = "1ms"\nbudget_percent = 50\n')
        self.assertIn("budget_percent = 50", text)
        write_atomically(self.conf, text)
        self.wait_log("configuration reload (file changed) rejected", rejected + 1)
        self.wait_log("routes[0].retry.budget_percent: moved; set "
                      "clusters.dead.circuit_breaker.retry_budget_percent (the budget is shared "
                      "by every route of a cluster)")
        write_atomically(self.conf, budget_config_text(self.dead_port, 0))


del ReloadTest  # the base class has no tests of its own

if __name__ == "__main__":
    unittest.main()
