"""Command-line behaviour: `proxer http`, config files against flags, strict config keys,
PROXER_AGENT_TOKEN."""

import os
import re
import time
import unittest

import harness

# Where the tests put settings in a config file. Assumption: keys are named after the flags
# (dashes become underscores), top level; sections like [session] as in docs/config.md.
# Should the schema nest them (e.g. under [gateway]), only these two tables change.
GATEWAY_KEY = {  # flag name -> (section or "", key)
    "listen": ("", "listen"),
    "agent-listen": ("", "agent_listen"),
    "admin-listen": ("", "admin_listen"),
    "domain": ("", "domain"),
    "token": ("", "token"),
}
AGENT_KEY = {
    "gateway": ("", "gateway"),
    "token": ("", "token"),
}


def render_toml(keymap, settings, extra_sections=None):
    """TOML text for {flag: value} through `keymap`, plus {section: {key: value}}."""
    sections = {}
    for flag, value in settings.items():
        section, key = keymap[flag]
        sections.setdefault(section, {})[key] = value
    for section, values in (extra_sections or {}).items():
        sections.setdefault(section, {}).update(values)
    out = []
    for section in sorted(sections, key=lambda s: (s != "", s)):
        if section:
            out.append("[%s]" % section)
        for key, value in sections[section].items():
            out.append("%s = %s" % (key, _toml_value(value)))
        out.append("")
    return "\n".join(out)


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def addr(port):
    return "127.0.0.1:%d" % port


class CliTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def printed_urls(self, proc, timeout=15):
        text = proc.wait_for_output(lambda t: "http://" in t, timeout=timeout, stream="stdout")
        return re.findall(r"http://[^\s\"'<>]+", text)

    def assert_url_serves_backend(self, url):
        base = url if url.endswith("/") else url + "/"
        status, _, body = harness.fetch_url(base + "hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"), "via %s" % url)

    # proxer http

    def test_http_named(self):
        proc = self.spawn("http-named", [harness.proxer_bin(), "http", self.be.port,
                                         "--gateway", "tcp://" + addr(self.gw.ports.agent),
                                         "--token", self.gw.token, "--name", "web"])
        harness.wait_tunnel(self.gw.ports.admin, "web", procs=[self.gw, proc])
        urls = self.printed_urls(proc)
        self.assertTrue(urls)
        self.assertTrue(any("web" in u for u in urls), urls)
        for url in urls:
            self.assert_url_serves_backend(url)

    def test_http_unnamed(self):
        proc = self.spawn("http-unnamed", [harness.proxer_bin(), "http", self.be.port,
                                           "--gateway", "tcp://" + addr(self.gw.ports.agent),
                                           "--token", self.gw.token])
        urls = self.printed_urls(proc)
        self.assertTrue(urls)
        deadline = time.monotonic() + 10
        while True:  # The URL may be printed just before the registration is visible.
            try:
                self.assert_url_serves_backend(urls[0])
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for url in urls[1:]:
            self.assert_url_serves_backend(url)

    # config files

    def test_gateway_config_file_and_flag_override(self):
        ports = harness.GatewayPorts()
        config_admin, flag_admin = harness.free_ports(2)
        token = "from-config-file"
        path = self.write("override-gateway.toml", render_toml(GATEWAY_KEY, {
            "listen": addr(ports.listen), "agent-listen": addr(ports.agent),
            "admin-listen": addr(config_admin), "domain": "localhost", "token": token}))
        gw = self.spawn("gateway-config", [harness.proxer_bin(), "gateway", "--config", path,
                                           "--admin-listen", addr(flag_admin)])
        harness.wait_http(flag_admin, "/api/health", expect=200, proc=gw)
        self.assertFalse(harness.port_is_open(config_admin), "the config's admin address was used too")
        # Listen address, agent address and token come from the file.
        ag = self.agent(ports.agent, [harness.tunnel_spec("cfg", self.be.port)], token=token)
        harness.wait_tunnel(flag_admin, "cfg", procs=[gw, ag])
        status, _, body = harness.http_request("GET", ports.listen, "/t/cfg/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

    def test_agent_config_file_and_flag_override(self):
        path = self.write("override-agent.toml", render_toml(AGENT_KEY, {
            "gateway": "tcp://" + addr(self.gw.ports.agent), "token": "wrong-token-in-file"}))
        ag = self.spawn("agent-config", [harness.proxer_bin(), "agent", "--config", path,
                                         "--token", self.gw.token,
                                         "--tunnel", harness.tunnel_spec("agentcfg", self.be.port)])
        harness.wait_tunnel(self.gw.ports.admin, "agentcfg", procs=[self.gw, ag])

    def test_agent_token_from_env(self):
        ag = self.agent(self.gw.ports.agent, [harness.tunnel_spec("envtok", self.be.port)],
                        token=None, env={"PROXER_AGENT_TOKEN": self.gw.token})
        harness.wait_tunnel(self.gw.ports.admin, "envtok", procs=[self.gw, ag])
        status, _, _ = harness.http_request("GET", self.gw.ports.listen, "/t/envtok/hello")
        self.assertEqual(status, 200)

    def _expect_config_rejected(self, kind, text, key):
        path = self.write("bad-%s-%s.toml" % (kind, key), text)
        if kind == "gateway":
            args = harness.gateway_args(harness.GatewayPorts()) + ["--config", path]
        else:
            args = [harness.proxer_bin(), "agent", "--gateway", "tcp://" + addr(self.gw.ports.agent),
                    "--token", self.gw.token, "--tunnel", harness.tunnel_spec("x", self.be.port),
                    "--config", path]
        proc = self.spawn("%s-badkey" % kind, args)
        rc = proc.wait_exit(10)
        self.assertIsNotNone(rc, "%s kept running with unknown key %r" % (kind, key))
        self.assertNotEqual(rc, 0)
        self.assertIn(key, proc.stderr(), "the error should name the unknown key")

    def test_unknown_config_key_rejected(self):
        self._expect_config_rejected("gateway", "no_such_top_key = true\n", "no_such_top_key")
        self._expect_config_rejected(
            "gateway", '[session]\nttl = "5s"\nbogus_knob = 3\n', "bogus_knob")
        self._expect_config_rejected("agent", "mystery_setting = 1\n", "mystery_setting")


if __name__ == "__main__":
    unittest.main()
