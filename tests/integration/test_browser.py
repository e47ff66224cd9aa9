"""The web pages in a real browser (headless Chromium from Debian): the admin dashboard renders
the live tunnel list from the admin API, and `proxer up`'s demo page, loaded through the tunnel
by Host and by path, runs its script against the local service."""

import html
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import unittest

import harness
from test_pools import agent_toml

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(workdir, url, budget_ms=4000, host_rules=None):
    """The DOM after the page's scripts ran for `budget_ms` of virtual time."""
    profile = os.path.join(workdir, "chromium-profile")
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--disable-background-networking",
            "--user-data-dir=" + profile, "--virtual-time-budget=%d" % budget_ms]
    if host_rules:
        args.append("--host-resolver-rules=" + host_rules)
    out = subprocess.run(args + ["--dump-dom", url], capture_output=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError("chromium failed (%d): %s" % (out.returncode,
                                                          out.stderr.decode(errors="replace")[-2000:]))
    return out.stdout.decode(errors="replace")


def cells(dom, tbody_id):
    body = re.search(r'<tbody id="%s">(.*?)</tbody>' % tbody_id, dom, re.S)
    assert body, dom[:2000]
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c))
             for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]


@unittest.skipIf(CHROMIUM is None, "chromium is not installed")
class DashboardTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("shop", cls.be.port),
                                      harness.tunnel_spec("blog", cls.be.port)],
                                     registry=cls.class_procs, agent_id="dash-agent")
        for name in ("shop", "blog"):
            harness.wait_tunnel(cls.gw.ports.admin, name, procs=[cls.gw, cls.ag])
        for _ in range(3):
            harness.http_request("GET", cls.gw.ports.listen, "/t/shop/hello")

    def test_dashboard_lists_tunnels_with_live_counters(self):
        dom = dump_dom(self.workdir, "http://127.0.0.1:%d/" % self.gw.ports.admin)
        health = re.search(r'<span id="health">(.*?)</span>', dom, re.S).group(1)
        self.assertEqual(html.unescape(health), "ok, 2 tunnel(s), 1 agent(s), 3 request(s)")
        rows = {r[0]: r for r in cells(dom, "tunnels")}
        self.assertEqual(sorted(rows), ["blog", "shop"])
        shop = rows["shop"]
        self.assertEqual(shop[1], "dash-agent")
        self.assertEqual(shop[2], "tcp")
        self.assertEqual(shop[4], "3")    # requests
        self.assertEqual(shop[9], "200")  # last status
        self.assertEqual(shop[10], "ok")   # health
        self.assertEqual(rows["blog"][4], "0")
        conns = cells(dom, "connections")
        self.assertEqual(len(conns), 1, conns)
        self.assertEqual(conns[0][1], "dash-agent")
        self.assertEqual(conns[0][2], "tcp")
        self.assertTrue(conns[0][3].startswith("127.0.0.1:"), conns)
        self.assertEqual(conns[0][5], "shop, blog")


@unittest.skipIf(CHROMIUM is None, "chromium is not installed")
class PoolDashboardTest(harness.ProxerTestCase):
    """A tunnel served by a pool of two agents, one of which reports its local service down; a
    cluster whose active checks probe each member finds the same member failing."""

    @classmethod
    def start_class_processes(cls):
        cls.be_ok = harness.start_backend(cls.workdir, registry=cls.class_procs, name="be-ok")
        cls.be_down = harness.start_backend(cls.workdir, registry=cls.class_procs, name="be-down")
        conn = http.client.HTTPConnection(harness.LOOPBACK, cls.be_down.port, timeout=5)
        conn.request("POST", "/__health?ok=0", body=b"")
        assert conn.getresponse().status == 200
        conn.close()
        gw_conf = os.path.join(cls.workdir, "gateway.toml")
        with open(gw_conf, "w") as f:
            f.write("""
[[routes]]
name = "checked"
path_prefix = "/checked/"
cluster = "checked"

[clusters.checked]
endpoints = ["tunnel:shop"]
[clusters.checked.health_check]
path = "/healthz"
interval = "200ms"
timeout = "1s"
unhealthy_threshold = 1
""")
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                       extra=["--config", gw_conf])
        for agent_id, be in (("pool-a", cls.be_ok), ("pool-b", cls.be_down)):
            conf = os.path.join(cls.workdir, agent_id + ".toml")
            with open(conf, "w") as f:
                f.write(agent_toml([{"name": "shop", "url": "http://127.0.0.1:%d" % be.port,
                                     "pool": True,
                                     "health": {"path": "/healthz", "interval": "200ms",
                                                "timeout": "150ms",
                                                "unhealthy_threshold": 1}}]))
            harness.start_agent(cls.workdir, cls.gw.ports.agent, [], registry=cls.class_procs,
                                agent_id=agent_id, name="agent-" + agent_id,
                                extra=["--config", conf])
        deadline = time.monotonic() + harness.TUNNEL_TIMEOUT
        while True:
            t = harness.find_tunnel(cls.gw.ports.admin, "shop")
            checked = {}
            for c in harness.get_json(cls.gw.ports.admin, "/api/clusters")["clusters"]:
                for m in c["endpoints"][0].get("members", []):
                    if m["checked"]:
                        checked[m["agent_id"]] = m["healthy"]
            if (t and len(t["members"]) == 2 and t["members_in_rotation"] == 1
                    and checked == {"pool-a": True, "pool-b": False}):
                break
            assert time.monotonic() < deadline, t
            time.sleep(0.05)

    def test_dashboard_shows_the_pool_and_its_member_health(self):
        dom = dump_dom(self.workdir, "http://127.0.0.1:%d/" % self.gw.ports.admin)
        rows = {r[0]: r for r in cells(dom, "tunnels")}
        self.assertEqual(sorted(rows), ["shop"])
        shop = rows["shop"]
        self.assertEqual(sorted(shop[1].split(", ")), ["pool-a", "pool-b"])
        self.assertTrue(shop[10].startswith("1/2 in rotation; pool-b: "), shop[10])
        # Each member's verdict by the cluster's checks (in join order), next to its agent's.
        head, sep, checks = shop[10].partition("; cluster 'checked': ")
        self.assertTrue(sep, shop[10])
        self.assertEqual(sorted(checks.split(", ")), ["pool-a ok", "pool-b failing (status 503)"])


@unittest.skipIf(CHROMIUM is None, "chromium is not installed")
class DemoPageTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.port, cls.admin = harness.free_ports(2)
        cls.up = harness.start_proc(
            cls.workdir, "up",
            [harness.proxer_bin(), "up", "--listen", "127.0.0.1:%d" % cls.port,
             "--admin-listen", "127.0.0.1:%d" % cls.admin], registry=cls.class_procs)
        harness.wait_http(cls.port, "/t/demo/", expect=200, proc=cls.up)

    def check_demo(self, dom):
        self.assertIn("It works: this page came through a proxer tunnel", dom)
        echo = re.search(r'<pre id="echo">(.*?)</pre>', dom, re.S)
        self.assertTrue(echo, dom[:2000])
        info = json.loads(html.unescape(echo.group(1)))  # the script's fetch succeeded
        return info

    def test_demo_by_path(self):
        info = self.check_demo(dump_dom(self.workdir, "http://127.0.0.1:%d/t/demo/" % self.port))
        self.assertIn("headers", json.dumps(info))

    def test_demo_by_host(self):
        # demo.localhost resolves to loopback in Chromium; pin it anyway for the test.
        dom = dump_dom(self.workdir, "http://demo.localhost:%d/" % self.port,
                       host_rules="MAP demo.localhost 127.0.0.1")
        self.check_demo(dom)


if __name__ == "__main__":
    unittest.main()
