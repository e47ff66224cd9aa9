"""transport auto: the agent walks down the carrier ladder (TLS, WebSocket, long-poll) when a
middlebox blocks the higher carriers, and climbs back up, make-before-break, when they return:
requests keep succeeding through the switch and a request in flight on the old carrier
finishes there."""

import os
import sys
import threading
import time

import harness

HERE = os.path.dirname(os.path.abspath(__file__))


class FallbackTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        harness.start_tls_gateway_class(cls)

    def setUp(self):
        super().setUp()
        self.policy = os.path.join(self.workdir, "policy-%s" % self._testMethodName)
        self.set_blocked("")
        self.fw_port = harness.free_port()
        self.fw = self.start_firewall("firewall")

    def start_firewall(self, name):
        fw = self.spawn(name, [sys.executable, "-u", os.path.join(HERE, "firewall.py"),
                               str(self.gw.ports.agent), self.cert, self.key, self.policy,
                               str(self.fw_port)])
        fw.wait_for_output("FW_READY", harness.START_TIMEOUT, stream="stdout")
        return fw

    def set_blocked(self, kinds):
        with open(self.policy, "w") as f:
            f.write(kinds)

    def start_agent(self, name, climb="1s"):
        conf = os.path.join(self.workdir, "agent-%s.toml" % name)
        with open(conf, "w") as f:
            f.write('gateway = "localhost:%d"\n' % self.fw_port)
            f.write('token = "%s"\nid = "%s"\nca = "%s"\n' % (harness.DEFAULT_TOKEN, name,
                                                              self.cert))
            f.write('[reconnect]\nmin = "200ms"\nmax = "2s"\nclimb = "%s"\n' % climb)
            f.write('[[tunnels]]\nname = "%s"\nurl = "http://127.0.0.1:%d"\n'
                    % (name, self.be.port))
        ag = self.spawn("agent-" + name, [harness.proxer_bin(), "agent", "--config", conf])
        harness.wait_tunnel(self.gw.ports.admin, name, procs=[self.gw, ag])
        return ag

    def carrier(self, agent_id):
        for c in harness.get_json(self.gw.ports.admin, "/connections")["connections"]:
            if c["agent_id"] == agent_id:
                return c["carrier"]
        return None

    def wait_carrier(self, agent_id, want, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.carrier(agent_id) == want:
                return
            time.sleep(0.1)
        self.fail("agent %s is on %r, not %r" % (agent_id, self.carrier(agent_id), want))

    def check_traffic(self, name):
        self.check_tunnel_traffic(self.gw.ports.listen, name, 2 << 20, seed=3)

    def climb_under_load(self, name, lower, agent):
        """Unblocks everything while requests run back to back and one slow request is in flight
        on the lower carrier; the agent must move to tls with no failed request."""
        results = {"ok": 0, "failed": []}
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    status, _, body = harness.http_request(
                        "GET", self.gw.ports.listen, "/t/%s/hello" % name, timeout=10)
                    if (status, body) == (200, b"Hello, world\n"):
                        results["ok"] += 1
                    else:
                        results["failed"].append((status, body[:200]))
                except Exception as e:  # noqa: BLE001 - every failure counts
                    results["failed"].append(repr(e))

        slow = {}

        def slow_request():
            slow["answer"] = harness.http_request("GET", self.gw.ports.listen,
                                                  "/t/%s/slow?ms=2500" % name, timeout=30)

        workers = [threading.Thread(target=loop) for _ in range(2)]
        slow_thread = threading.Thread(target=slow_request)
        for w in workers:
            w.start()
        slow_thread.start()
        time.sleep(0.5)  # the slow request is now in flight on the lower carrier
        self.set_blocked("")
        try:
            self.wait_carrier(name, "tls")
            agent.wait_for_output("moved up from %s to tls" % lower, timeout=10, stream="stderr")
            time.sleep(1.0)  # traffic on the new carrier, the old one draining
        finally:
            stop.set()
            for w in workers:
                w.join(30)
            slow_thread.join(30)
        self.assertEqual(results["failed"], [])
        self.assertGreater(results["ok"], 10)
        status, _, body = slow["answer"]
        self.assertEqual((status, body), (200, b"slept 2500 ms\n"))
        self.check_traffic(name)

    def test_long_poll_when_tls_and_websocket_are_blocked_then_back_to_tls(self):
        self.set_blocked("tls,ws")
        ag = self.start_agent("laddered")
        self.assertEqual(self.carrier("laddered"), "poll")
        ag.wait_for_output("cannot connect over tls", timeout=5, stream="stderr")
        ag.wait_for_output("cannot connect over wss", timeout=5, stream="stderr")
        self.check_traffic("laddered")
        t = harness.find_tunnel(self.gw.ports.admin, "laddered")
        self.assertEqual(t["carrier"], "poll")
        # While they stay blocked, climbing attempts fail and change nothing.
        time.sleep(2.5)
        self.assertEqual(self.carrier("laddered"), "poll")
        self.check_traffic("laddered")
        self.climb_under_load("laddered", "https", ag)
        self.assertEqual(harness.find_tunnel(self.gw.ports.admin, "laddered")["carrier"], "tls")

    def test_websocket_when_tls_is_blocked_then_back_to_tls(self):
        self.set_blocked("tls")
        ag = self.start_agent("wsfirst")
        self.assertEqual(self.carrier("wsfirst"), "wss")
        self.check_traffic("wsfirst")
        self.climb_under_load("wsfirst", "wss", ag)

    def test_reconnects_on_the_carrier_that_worked_last(self):
        self.set_blocked("tls,ws")
        ag = self.start_agent("sticky", climb="1h")
        self.assertEqual(self.carrier("sticky"), "poll")
        # A second firewall takes over the port, then the first one dies with the agent's
        # connections: the agent reconnects through the second, long-poll first (it worked
        # last), so the new firewall never sees a TLS or WebSocket attempt.
        fw2 = self.start_firewall("firewall2")
        self.fw.kill()
        deadline = time.monotonic() + 20
        while ag.stderr().count("over poll (session") < 2:
            self.assertLess(time.monotonic(), deadline, ag.tail())
            time.sleep(0.1)
        harness.wait_tunnel(self.gw.ports.admin, "sticky", procs=[self.gw, ag])
        self.check_traffic("sticky")
        self.assertIn("FW passed poll", fw2.stdout())
        self.assertNotIn("FW blocked", fw2.stdout())
