"""Smoke load with wrk through one tunnel: many requests and many concurrent connections, no
error. A correctness check under load, not a benchmark (bench/ measures performance)."""

import re
import shutil
import subprocess
import unittest

import harness


def run_wrk(port, host, path, conns, seconds):
    args = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "5s",
            "-H", "Host: %s" % host, "http://127.0.0.1:%d%s" % (port, path)]
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=seconds + 30).stdout.decode(errors="replace")
    total = re.search(r"(\d+) requests in", out)
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return (int(total.group(1)) if total else 0), errors, out


@unittest.skipUnless(shutil.which("wrk"), "wrk is not installed (scripts/install-deps.sh installs it)")
class LoadTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("load", cls.be.port)],
                                     registry=cls.class_procs)
        harness.wait_tunnel(cls.gw.ports.admin, "load", procs=[cls.gw, cls.ag])
        cls.host = "load.localhost:%d" % cls.gw.ports.listen

    def test_keep_alive_load_has_no_errors(self):
        total, errors, out = run_wrk(self.gw.ports.listen, self.host, "/hello", 50, 3)
        self.assertGreater(total, 300, out)
        self.assertEqual(errors, 0, out)
        t = harness.find_tunnel(self.gw.ports.admin, "load")
        self.assertGreaterEqual(t["request_count"], total)

    def test_many_concurrent_connections_have_no_errors(self):
        total, errors, out = run_wrk(self.gw.ports.listen, self.host, "/hello", 400, 3)
        self.assertGreater(total, 400, out)
        self.assertEqual(errors, 0, out)
        # The gateway still answers normally afterwards.
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/hello", host=self.host)
        self.assertEqual((status, body), (200, b"Hello, world\n"))


if __name__ == "__main__":
    unittest.main()
