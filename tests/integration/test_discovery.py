"""Clusters whose endpoints come from service discovery, through the real gateway: a watched
endpoints file (changes, an empty set → 503 no_endpoint), DNS SRV records served by a real
dnsmasq (re-resolved after the TTL when dnsmasq changes its answer), and a reload that keeps the
discovered endpoints."""

import json
import os
import shutil
import time
import unittest

import harness


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class DiscoveryTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.a = harness.start_backend(cls.workdir, cls.class_procs, name="backend-a")
        cls.b = harness.start_backend(cls.workdir, cls.class_procs, name="backend-b")
        cls.endpoints = os.path.join(cls.workdir, "api.endpoints")
        write_atomically(cls.endpoints, "# the api servers\n127.0.0.1:%d\n" % cls.a.port)
        cls.dns_port = harness.free_port()
        cls.dnsmasq = None
        cls.start_dnsmasq(cls.a.port)
        cls.conf = os.path.join(cls.workdir, "gateway.toml")
        cls.write_config()
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", cls.conf])

    @classmethod
    def write_config(cls, extra=""):
        write_atomically(cls.conf, f"""
[[routes]]
path_prefix = "/file/"
strip_prefix = true
cluster = "from-file"

[[routes]]
path_prefix = "/dns/"
strip_prefix = true
cluster = "from-dns"

[clusters.from-file.discovery]
type = "file"
path = "{cls.endpoints}"

[clusters.from-dns.discovery]
type = "dns"
name = "_http._tcp.api.test"
record = "srv"
nameserver = "127.0.0.1:{cls.dns_port}"
{extra}
""")

    @classmethod
    def start_dnsmasq(cls, port):
        if not os.path.exists(DNSMASQ):
            raise AssertionError("dnsmasq is not installed: run scripts/install-deps.sh")
        if cls.dnsmasq:
            cls.dnsmasq.kill()
        # The SRV target is "localhost": the gateway resolves it when it connects.
        cls.dnsmasq = harness.start_proc(
            cls.workdir, "dnsmasq",
            [DNSMASQ, "--no-daemon", "--port=%d" % cls.dns_port, "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--local-ttl=1", "--user=root",
             "--srv-host=_http._tcp.api.test,localhost,%d,0,10" % port],
            cls.class_procs)
        time.sleep(0.3)

    def serving(self, prefix):
        status, headers, body = harness.http_request("GET", self.gw.ports.listen,
                                                     prefix + "conn", host="app.example")
        if status != 200:
            return status, headers.get("x-proxer-error")
        return status, json.loads(body)["port"]

    def wait_for(self, prefix, want, timeout=15):
        deadline = time.monotonic() + timeout
        got = None
        while True:
            got = self.serving(prefix)
            if got == want:
                return
            self.assertLess(time.monotonic(), deadline, "%s: still %r\n%s" % (prefix, got,
                                                                            self.gw.tail()))
            time.sleep(0.1)

    def test_file_discovery_follows_the_file(self):
        self.wait_for("/file/", (200, self.a.port))
        write_atomically(self.endpoints, "127.0.0.1:%d 5\n" % self.b.port)
        self.wait_for("/file/", (200, self.b.port))
        write_atomically(self.endpoints, "127.0.0.1:%d\n127.0.0.1:%d\n" % (self.a.port,
                                                                            self.b.port))
        deadline = time.monotonic() + 15
        seen = set()
        while seen != {self.a.port, self.b.port}:
            self.assertLess(time.monotonic(), deadline, seen)
            seen.add(self.serving("/file/")[1])
        write_atomically(self.endpoints, "# nobody\n")
        self.wait_for("/file/", (503, "no_endpoint"))
        # A broken file keeps the last set (empty here) and says which line is wrong.
        write_atomically(self.endpoints, "not an endpoint\n")
        time.sleep(0.5)
        self.assertEqual(self.serving("/file/"), (503, "no_endpoint"))
        write_atomically(self.endpoints, "127.0.0.1:%d\n" % self.a.port)
        self.wait_for("/file/", (200, self.a.port))

    def test_dns_srv_discovery_reresolves_after_the_ttl(self):
        self.wait_for("/dns/", (200, self.a.port))
        type(self).start_dnsmasq(self.b.port)  # a new answer; the old one had a 1 s TTL
        self.wait_for("/dns/", (200, self.b.port))
        # A reload that changes something else keeps the discovered endpoints at once.
        type(self).write_config('[clusters.from-dns.circuit_breaker]\nmax_requests = 100\n')
        harness_deadline = time.monotonic() + 10
        while "configuration reloaded" not in self.gw.stderr() + self.gw.stdout():
            self.assertLess(time.monotonic(), harness_deadline)
            time.sleep(0.1)
        self.assertEqual(self.serving("/dns/"), (200, self.b.port))


if __name__ == "__main__":
    unittest.main()
