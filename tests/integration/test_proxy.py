"""The agent leaves through an HTTP proxy with CONNECT (--proxy, HTTPS_PROXY), as corporate
networks require, tested through a real tinyproxy (Debian's): each carrier, proxy credentials,
a proxy that refuses, and NO_PROXY."""

import os
import shutil
import unittest

import harness

TINYPROXY = shutil.which("tinyproxy")


def start_tinyproxy(workdir, name, registry, extra=""):
    port = harness.free_port()
    conf = os.path.join(workdir, name + ".conf")
    log = os.path.join(workdir, name + ".log")
    with open(conf, "w") as f:
        f.write("Port %d\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nLogFile \"%s\"\n"
                "LogLevel Info\nAllow 127.0.0.1\nDisableViaHeader Yes\n%s" % (port, log, extra))
    proc = harness.start_proc(workdir, name, [TINYPROXY, "-d", "-c", conf], registry)
    harness.wait_port(proc, port, "tinyproxy")
    proc.port = port
    proc.log = log
    return proc


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


@unittest.skipIf(TINYPROXY is None, "tinyproxy is not installed")
class ProxyTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)
        cls.proxy = start_tinyproxy(cls.workdir, "tinyproxy", cls.class_procs)
        cls.locked = start_tinyproxy(cls.workdir, "tinyproxy-auth", cls.class_procs,
                                     "BasicAuth alice s3cr3t\n")
        cls.strict = start_tinyproxy(cls.workdir, "tinyproxy-strict", cls.class_procs,
                                     "ConnectPort 443\n")

    def agent_through(self, name, gateway, proxy=None, env=None):
        args = [harness.proxer_bin(), "agent", "--gateway", gateway, "--token",
                harness.DEFAULT_TOKEN, "--tunnel", harness.tunnel_spec(name, self.be.port),
                "--id", name]
        if proxy is not None:
            args += ["--proxy", proxy]
        return self.spawn("agent-" + name, args, env=env)

    def assert_serves(self, name, ag):
        harness.wait_tunnel(self.gw.ports.admin, name, procs=[self.gw, ag])
        status, _, body = harness.http_request("GET", self.gw.ports.listen, "/t/%s/hello" % name)
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def connects_logged(self, proxy):
        # tinyproxy logs each CONNECT request line.
        return read(proxy.log).count("CONNECT 127.0.0.1:%d" % self.gw.ports.agent) + \
            read(proxy.log).count("CONNECT 127.0.0.1:%d" % self.gw.ports.listen)

    def test_tcp_carrier_through_the_proxy(self):
        before = self.connects_logged(self.proxy)
        ag = self.agent_through("viatcp", "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                                "http://127.0.0.1:%d" % self.proxy.port)
        self.assert_serves("viatcp", ag)
        self.assertGreater(self.connects_logged(self.proxy), before, read(self.proxy.log)[-2000:])
        self.assertIn("leaving through the HTTP proxy 127.0.0.1:%d" % self.proxy.port, ag.stderr())

    def test_ws_carrier_through_the_proxy(self):
        before = self.connects_logged(self.proxy)
        ag = self.agent_through("viaws", "ws://127.0.0.1:%d/ws" % self.gw.ports.listen,
                                "http://127.0.0.1:%d" % self.proxy.port)
        self.assert_serves("viaws", ag)
        self.assertGreater(self.connects_logged(self.proxy), before)

    def test_https_proxy_environment_and_no_proxy(self):
        env = {"HTTPS_PROXY": "http://127.0.0.1:%d" % self.proxy.port}
        ag = self.agent_through("viaenv", "tcp://127.0.0.1:%d" % self.gw.ports.agent, env=env)
        self.assert_serves("viaenv", ag)
        self.assertIn("leaving through the HTTP proxy", ag.stderr())
        env = dict(env, NO_PROXY="localhost,127.0.0.1")
        ag = self.agent_through("bypass", "tcp://127.0.0.1:%d" % self.gw.ports.agent, env=env)
        self.assert_serves("bypass", ag)
        self.assertNotIn("leaving through the HTTP proxy", ag.stderr())

    def test_proxy_credentials(self):
        ag = self.agent_through("nocreds", "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                                "http://127.0.0.1:%d" % self.locked.port)
        ag.wait_for_output("the proxy answered 407", timeout=10, stream="stderr")
        ag = self.agent_through("creds", "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                                "http://alice:s3cr3t@127.0.0.1:%d" % self.locked.port)
        self.assert_serves("creds", ag)
        self.assertNotIn("s3cr3t", ag.stderr())  # credentials never reach the log

    def test_refusing_proxy_is_a_clear_error(self):
        ag = self.agent_through("refused", "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                                "http://127.0.0.1:%d" % self.strict.port)
        ag.wait_for_output("through the proxy 127.0.0.1:%d: the proxy answered 403"
                           % self.strict.port, timeout=10, stream="stderr")

    def test_proxy_down_is_a_clear_error(self):
        dead = harness.closed_port()
        ag = self.agent_through("noproxy", "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                                "http://127.0.0.1:%d" % dead)
        ag.wait_for_output("cannot connect to the proxy 127.0.0.1:%d" % dead, timeout=10,
                           stream="stderr")


if __name__ == "__main__":
    unittest.main()
