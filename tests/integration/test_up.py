"""`proxer up`: gateway + agent + demo site in one process."""

import re
import signal
import unittest

import harness


class UpTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.port, cls.admin = harness.free_ports(2)
        cls.up = harness.start_proc(
            cls.workdir, "up",
            [harness.proxer_bin(), "up", "--listen", "127.0.0.1:%d" % cls.port,
             "--admin-listen", "127.0.0.1:%d" % cls.admin],
            registry=cls.class_procs)
        harness.wait_http(cls.admin, "/api/health", expect=200, proc=cls.up)
        # The demo tunnel registers in-process; ready once it answers.
        harness.wait_http(cls.port, "/t/demo/", expect=200, proc=cls.up)

    def assert_demo_page(self, status, headers, body):
        self.assertEqual(status, 200, body[:300])
        self.assertIn("text/html", headers.get("Content-Type", ""))
        self.assertIn(b"proxer", body.lower())

    def test_prints_urls(self):
        text = self.up.wait_for_output(lambda t: "http://" in t, timeout=10, stream="stdout")
        urls = re.findall(r"http://[^\s\"'<>]+", text)
        self.assertTrue(any("demo" in u for u in urls), urls)
        self.assertTrue(any(str(self.port) in u for u in urls), urls)

    def test_demo_by_host(self):
        self.assert_demo_page(*harness.http_request("GET", self.port, "/",
                                                    host="demo.localhost:%d" % self.port))

    def test_demo_by_path(self):
        self.assert_demo_page(*harness.http_request("GET", self.port, "/t/demo/"))

    def test_admin_health(self):
        self.assertEqual(harness.get_json(self.admin, "/api/health")["status"], "ok")

    def test_tunnel_listed(self):
        self.assertIsNotNone(harness.find_tunnel(self.admin, "demo"))

    def test_zz_sigint_exits_zero(self):
        # Runs last (alphabetical order): it ends the shared process.
        self.up.signal(signal.SIGINT)
        self.assertEqual(self.up.wait_exit(10), 0, self.up.tail())


if __name__ == "__main__":
    unittest.main()
