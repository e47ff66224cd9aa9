"""The embedding example (examples/embed): a program with its own HTTP server that hands the
requests proxer routes claim to the embedded engine. Checked with curl through the example: its
own paths, a direct upstream (GET, POST with a body), a tunnel served by a real `proxer agent`
connected to the engine's agent listener, an upstream that is down (the engine's 502 comes back
through the middleware), hot reload on SIGHUP (a bad file is refused) and a graceful stop."""

import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import backend
import harness

CURL_DIR = tempfile.mkdtemp(prefix="proxer-it-embed-curl-")
atexit.register(shutil.rmtree, CURL_DIR, True)


def example_bin():
    path = os.environ.get("PROXER_EMBED_EXAMPLE")
    if not path:
        # Next to the proxer binary's build tree: build/src/app/proxer -> build/examples/embed/.
        build = os.path.dirname(os.path.dirname(os.path.dirname(harness.proxer_bin())))
        path = os.path.join(build, "examples", "embed", "proxer-embed-example")
    if not os.access(path, os.X_OK):
        raise harness.unittest.SkipTest("the embedding example is not built (%s)" % path)
    return path


def engine_toml(backend_port, closed_port, extra=""):
    return """
agent_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
token = "%s"

[[routes]]
name = "direct"
path_prefix = "/api/"
cluster = "direct"
strip_prefix = true
[routes.response_headers]
set = { "X-Via-Engine" = "direct" }

[[routes]]
name = "tunnel"
path_prefix = "/tun/"
cluster = "tunneled"
strip_prefix = true

[[routes]]
name = "down"
path_prefix = "/down/"
cluster = "down"

[clusters.direct]
endpoints = ["http://127.0.0.1:%d"]

[clusters.tunneled]
endpoints = ["tunnel:app"]

[clusters.down]
endpoints = ["http://127.0.0.1:%d"]
%s""" % (harness.DEFAULT_TOKEN, backend_port, closed_port, extra)


READY = re.compile(r"http port (\d+), engine agent port (\d+), admin port (\d+)")


def start_example(workdir, config_path, registry, name="example"):
    args = [example_bin(), "--config", config_path, "--listen", "127.0.0.1:0"]
    level = os.environ.get("PROXER_IT_LOG_LEVEL")
    if level:
        args += ["--log-level", level]
    proc = harness.start_proc(workdir, name, args, registry)
    text = proc.wait_for_output("http port", harness.START_TIMEOUT, stream="stdout")
    m = READY.search(text)
    if not m:
        raise AssertionError("the example printed no ports\n" + proc.tail())
    proc.port, proc.agent_port, proc.admin_port = (int(g) for g in m.groups())
    return proc


_body_files = iter(range(1 << 30))


def curl_status(port, path, *args):
    """(status, response head text, body bytes) of one curl request to the example."""
    out = os.path.join(CURL_DIR, "body-%d" % next(_body_files))
    r = harness.curl("-D", "-", "-o", out, *args, "http://127.0.0.1:%d%s" % (port, path),
                     timeout=30)
    head = r.stdout.decode("latin-1")
    status = int(head.split()[1]) if head.startswith("HTTP/") else 0
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    return status, head, body


class EmbedExampleTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.tunnel_be = harness.start_backend(cls.workdir, registry=cls.class_procs,
                                              name="tunnel-backend")
        cls.closed = harness.closed_port()
        cls.config = os.path.join(cls.workdir, "engine.toml")
        with open(cls.config, "w") as f:
            f.write(engine_toml(cls.be.port, cls.closed))
        cls.ex = start_example(cls.workdir, cls.config, cls.class_procs)
        cls.agent = harness.start_agent(
            cls.workdir, cls.ex.agent_port, [harness.tunnel_spec("app", cls.tunnel_be.port)],
            registry=cls.class_procs)
        harness.wait_tunnel(cls.ex.admin_port, "app", procs=[cls.ex, cls.agent])

    def test_own_paths(self):
        status, head, body = curl_status(self.ex.port, "/hello")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"hello from the host application\n")
        self.assertNotIn("x-proxer-error", head.lower())
        status, _, body = curl_status(self.ex.port, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        status, head, body = curl_status(self.ex.port, "/nothing-here")
        self.assertEqual(status, 404)
        self.assertEqual(body, b"no such path on the host application\n")
        self.assertNotIn("x-proxer-error", head.lower())

    def test_direct_get(self):
        status, head, body = curl_status(self.ex.port, "/api/hello")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"Hello, world\n")
        self.assertIn("x-via-engine: direct", head.lower())
        # The upstream sees the client the host application saw, and the stripped path.
        status, _, body = curl_status(self.ex.port, "/api/headers?x=1", "-H", "X-Custom: 7")
        self.assertEqual(status, 200)
        seen = json.loads(body)
        self.assertEqual(seen["path"], "/headers?x=1")
        headers = {k.lower(): v for k, v in seen["headers"]}
        self.assertEqual(headers.get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(headers.get("x-custom"), "7")
        # A large body comes back whole (Content-Length framing by the host's server).
        status, _, body = curl_status(self.ex.port, "/api/bytes?n=3000000&seed=4")
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 3000000)
        self.assertEqual(hashlib.sha256(body).hexdigest(), backend.gen_sha256(3000000, 4))

    def test_direct_post(self):
        payload = os.urandom(300000)
        path = os.path.join(self.workdir, "post.bin")
        with open(path, "wb") as f:
            f.write(payload)
        status, _, body = curl_status(self.ex.port, "/api/upload", "--data-binary", "@" + path,
                                      "-H", "Content-Type: application/octet-stream")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body),
                         {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()})
        status, _, body = curl_status(self.ex.port, "/api/echo", "--data-binary", "hello engine")
        self.assertEqual((status, body), (200, b"hello engine"))

    def test_tunnel_route(self):
        status, head, body = curl_status(self.ex.port, "/tun/hello")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"Hello, world\n")
        status, _, body = curl_status(self.ex.port, "/tun/echo", "--data-binary", "via agent")
        self.assertEqual((status, body), (200, b"via agent"))
        # The tunnel's own backend answered, not the direct one.
        def hellos(be):
            return sum(1 for r in harness.get_json(be.port, "/__stats")["requests"]
                       if r["path"] == "/hello")
        before, before_direct = hellos(self.tunnel_be), hellos(self.be)
        curl_status(self.ex.port, "/tun/hello")
        self.assertEqual(hellos(self.tunnel_be), before + 1)
        self.assertEqual(hellos(self.be), before_direct)
        # And the engine's admin API lists the tunnel with its traffic.
        tunnel = harness.find_tunnel(self.ex.admin_port, "app")
        self.assertGreaterEqual(tunnel["request_count"], 3)

    def test_upstream_down(self):
        status, head, body = curl_status(self.ex.port, "/down/x")
        self.assertEqual(status, 502)
        self.assertIn("x-proxer-error: retries_exhausted", head.lower())
        self.assertIn(b"refused", body)


class EmbedReloadTest(harness.ProxerTestCase):
    def test_sighup_reload_and_stop(self):
        be = harness.start_backend(self.workdir, registry=self.procs)
        closed = harness.closed_port()
        config = os.path.join(self.workdir, "engine.toml")
        with open(config, "w") as f:
            f.write(engine_toml(be.port, closed))
        ex = start_example(self.workdir, config, self.procs)
        status, _, _ = curl_status(ex.port, "/added/hello")
        self.assertEqual(status, 404)  # the host application's own 404: no route yet

        added = '\n[[routes]]\nname = "added"\npath_prefix = "/added/"\ncluster = "direct"\n' \
                'strip_prefix = true\n'
        with open(config, "w") as f:
            f.write(engine_toml(be.port, closed, added))
        ex.signal(signal.SIGHUP)
        ex.wait_for_output("configuration reloaded", 10, stream="stderr")
        status, _, body = curl_status(ex.port, "/added/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

        # A file with errors is refused, with every error, and the running routes stay.
        with open(config, "w") as f:
            f.write(engine_toml(be.port, closed, added + '\n[clusters.bad]\nlb = "nope"\n'))
        ex.signal(signal.SIGHUP)
        text = ex.wait_for_output("reload rejected", 10, stream="stderr")
        self.assertIn("clusters.bad", text)
        status, _, body = curl_status(ex.port, "/added/hello")
        self.assertEqual((status, body), (200, b"Hello, world\n"))

        # Graceful stop: a slow request in flight still gets its response.
        start = time.monotonic()
        proc = subprocess.Popen(
            ["curl", "-sS", "--max-time", "30", "-w", " %{http_code}",
             "http://127.0.0.1:%d/api/slow?ms=700" % ex.port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.3)
        ex.signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(out, b"slept 700 ms\n 200", err)
        self.assertEqual(ex.wait_exit(20), 0, ex.tail())
        self.assertIn("stopped", ex.stderr())
        self.assertLess(time.monotonic() - start, 15)
