"""Process and HTTP helpers for the proxer integration tests (python3 stdlib only).

Everything listens on 127.0.0.1 and on ports found free at run time. Every process runs in its own
process group with its stdout/stderr in files under the test's temporary directory; the group is
killed when the test (or class) ends, also on failure, and the log tails are printed on failure.
Every wait is bounded.

Environment:
  PROXER_BIN        path of the proxer binary (tests skip when it is unset or missing)
  PROXER_IT_KEEP=1  keep the temporary directories (logs) after the run
  PROXER_IT_LOG_LEVEL=debug   passes --log-level to gateways
"""

import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND_PY = os.path.join(HERE, "backend.py")
LOOPBACK = "127.0.0.1"
DEFAULT_TOKEN = "it-agent-token"

# Generous bounds: the same tests run under AddressSanitizer builds on a shared 2-core machine.
START_TIMEOUT = 20.0
TUNNEL_TIMEOUT = 20.0


# --- binary -----------------------------------------------------------------------------------


def proxer_bin():
    """Returns the proxer binary path, or raises unittest.SkipTest with the reason."""
    path = os.environ.get("PROXER_BIN", "")
    if not path:
        raise unittest.SkipTest("PROXER_BIN is not set: integration tests need the proxer binary")
    if not os.path.isfile(path):
        raise unittest.SkipTest("PROXER_BIN=%s does not exist (binary not built?)" % path)
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest("PROXER_BIN=%s is not executable" % path)
    return path


# --- ports ------------------------------------------------------------------------------------


def free_ports(count):
    """`count` distinct free TCP ports on 127.0.0.1 (bound together, read, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


_reserved = []  # sockets holding closed_port()s until the test process exits


def closed_port():
    """A port where nothing listens, for as long as this test process runs: bound without
    listen() (connections are refused) and without SO_REUSEADDR, so no other process can bind
    it meanwhile, as could happen to a port that free_port() gave back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((LOOPBACK, 0))
    _reserved.append(s)
    return s.getsockname()[1]


def port_is_open(port, timeout=0.5):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- processes --------------------------------------------------------------------------------

# If the test runner dies (ctest timeout, ^C), the kernel kills its children too (parent-death
# signal), so no orphaned gateway keeps a port after the run. setpriv sets it and then execs the
# command (same pid); without setpriv, prctl runs in the forked child.
_SETPRIV = shutil.which("setpriv")
_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _child_setup():
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _launch_args(args):
    if _SETPRIV:
        return [_SETPRIV, "--pdeathsig", "KILL", "--"] + args, None
    return args, _child_setup


_live_procs = []
_live_lock = threading.Lock()


@atexit.register
def _kill_leftovers():
    with _live_lock:
        procs = list(_live_procs)
    for p in procs:
        p.kill()


class Proc:
    """A child process in its own process group, stdout/stderr captured to files."""

    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, name, args, workdir, env=None, cwd=None):
        with Proc._counter_lock:
            Proc._counter += 1
            seq = Proc._counter
        self.name = name
        self.args = [str(a) for a in args]
        self.stdout_path = os.path.join(workdir, "%02d-%s.out" % (seq, name))
        self.stderr_path = os.path.join(workdir, "%02d-%s.err" % (seq, name))
        # Tests run on loopback only: a proxy from the machine's environment must not be picked
        # up by the agent (test_proxy.py sets its own).
        full_env = {k: v for k, v in os.environ.items()
                    if k.lower() not in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")}
        if env:
            for k, v in env.items():
                if v is None:
                    full_env.pop(k, None)
                else:
                    full_env[k] = v
        launch, preexec = _launch_args(self.args)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                launch,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=cwd or workdir,
                start_new_session=True,
                preexec_fn=preexec,
            )
        self.pid = self.popen.pid
        self.started_at = time.monotonic()
        with _live_lock:
            _live_procs.append(self)

    # state

    def poll(self):
        return self.popen.poll()

    @property
    def running(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.returncode

    def wait_exit(self, timeout):
        """Waits up to `timeout` s; returns the exit code, or None if still running."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # signals

    def signal(self, sig):
        """Sends `sig` to the process itself (not its group)."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _signal_group(self, sig):
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self):
        """SIGKILL to the whole group, then reap."""
        self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._forget()

    def stop(self, timeout=5.0):
        """SIGTERM (and SIGCONT, in case it is stopped), then SIGKILL after `timeout`."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            self._signal_group(signal.SIGCONT)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def _forget(self):
        with _live_lock:
            if self in _live_procs:
                _live_procs.remove(self)

    # logs

    def stdout(self):
        return _read_text(self.stdout_path)

    def stderr(self):
        return _read_text(self.stderr_path)

    def output(self):
        return self.stdout() + self.stderr()

    def wait_for_output(self, predicate, timeout, stream="any"):
        """Polls the log until predicate(text) is true; returns the text or raises TimeoutError.

        `predicate` may be a string (substring test, case-insensitive). Fails early if the
        process exited and its log still does not match."""
        if isinstance(predicate, str):
            needle = predicate.lower()
            predicate = lambda text: needle in text.lower()  # noqa: E731
        read = {"stdout": self.stdout, "stderr": self.stderr, "any": self.output}[stream]
        deadline = time.monotonic() + timeout
        while True:
            exited = self.popen.poll() is not None
            text = read()
            if predicate(text):
                return text
            if exited:
                raise TimeoutError("%s exited (code %s) before the expected output\n%s"
                                   % (self.name, self.popen.returncode, self.tail()))
            if time.monotonic() >= deadline:
                raise TimeoutError("%s: expected output not seen within %.1f s\n%s"
                                   % (self.name, timeout, self.tail()))
            time.sleep(0.05)

    def tail(self, lines=40):
        parts = ["----- %s (pid %d, %s) -----" % (self.name, self.pid, self._state()),
                 "$ " + " ".join(self.args)]
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = _read_text(path)
            body = text.splitlines()[-lines:]
            parts.append("[%s: %s]" % (label, path))
            parts.extend(body if body else ["<empty>"])
        return "\n".join(parts)

    def _state(self):
        rc = self.popen.poll()
        return "running" if rc is None else "exited %s" % rc

    def __repr__(self):
        return "Proc(%s, pid=%d, %s)" % (self.name, self.pid, self._state())


def _read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _track(proc, registry):
    if registry is not None:
        registry.append(proc)
    return proc


def start_proc(workdir, name, args, registry=None, env=None):
    return _track(Proc(name, args, workdir, env=env), registry)


# --- backend ----------------------------------------------------------------------------------


def wait_port(proc, port, what, timeout=START_TIMEOUT):
    """Waits until `port` accepts connections; fails with `proc`'s log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while not port_is_open(port):
        if time.monotonic() > deadline or not proc.running:
            raise AssertionError("%s did not start\n%s" % (what, proc.tail()))
        time.sleep(0.05)


def start_backend(workdir, registry=None, timeout=START_TIMEOUT, name="backend", tls=None,
                  fail_status=None):
    """Starts backend.py on a free port; returns the Proc with `.port` set once it listens.
    `tls`: (cert, key) to serve HTTPS; `fail_status`: answer every request with that status."""
    args = [sys.executable, "-u", BACKEND_PY, "0"] + (["--tls", tls[0], tls[1]] if tls else [])
    if fail_status:
        args += ["--fail-status", str(fail_status)]
    proc = start_proc(workdir, name, args, registry, env={"PYTHONDONTWRITEBYTECODE": "1"})
    text = proc.wait_for_output("BACKEND_READY", timeout, stream="stdout")
    for line in text.splitlines():
        if line.startswith("BACKEND_READY"):
            proc.port = int(line.split()[1])
            return proc
    raise AssertionError("backend printed no port\n" + proc.tail())


# --- gateway / agent --------------------------------------------------------------------------


class GatewayPorts:
    def __init__(self, listen=None, agent=None, admin=None):
        fresh = free_ports(3)
        self.listen = listen or fresh[0]
        self.agent = agent or fresh[1]
        self.admin = admin or fresh[2]

    def __repr__(self):
        return "GatewayPorts(listen=%d, agent=%d, admin=%d)" % (self.listen, self.agent, self.admin)


def gateway_args(ports, token=DEFAULT_TOKEN, domain="localhost", extra=()):
    args = [proxer_bin(), "gateway",
            "--listen", "%s:%d" % (LOOPBACK, ports.listen),
            "--agent-listen", "%s:%d" % (LOOPBACK, ports.agent),
            "--admin-listen", "%s:%d" % (LOOPBACK, ports.admin),
            "--domain", domain]
    if token is not None:
        args += ["--token", token]
    level = os.environ.get("PROXER_IT_LOG_LEVEL")
    if level:
        args += ["--log-level", level]
    return args + list(extra)


def start_gateway(workdir, ports=None, token=DEFAULT_TOKEN, domain="localhost", extra=(),
                  registry=None, wait=True, timeout=START_TIMEOUT, name="gateway"):
    """Starts `proxer gateway`; with wait, returns once GET /api/health answers 200.

    The Proc gets `.ports` (GatewayPorts) and `.token`."""
    ports = ports or GatewayPorts()
    proc = start_proc(workdir, name, gateway_args(ports, token, domain, extra), registry)
    proc.ports = ports
    proc.token = token
    if wait:
        wait_http(ports.admin, "/api/health", timeout, expect=200, proc=proc)
    return proc


def tunnel_spec(name, target_port, token=None):
    """`name=http://127.0.0.1:port` or `name@token=http://...` (per-tunnel token)."""
    label = name if token is None else "%s@%s" % (name, token)
    return "%s=http://%s:%d" % (label, LOOPBACK, target_port)


def start_agent(workdir, agent_port, tunnels, token=DEFAULT_TOKEN, scheme="tcp", extra=(),
                registry=None, env=None, name="agent", agent_id=None):
    """Starts `proxer agent` (no readiness wait: use wait_tunnel). `tunnels` are tunnel specs."""
    args = [proxer_bin(), "agent", "--gateway", "%s://%s:%d" % (scheme, LOOPBACK, agent_port)]
    if token is not None:
        args += ["--token", token]
    for spec in tunnels:
        args += ["--tunnel", spec]
    if agent_id:
        args += ["--id", agent_id]
    return start_proc(workdir, name, args + list(extra), registry, env=env)


# --- HTTP helpers -----------------------------------------------------------------------------


def http_request(method, port, path, host=None, headers=None, body=None, timeout=10,
                 chunked=False, conn=None):
    """One request with http.client; returns (status, headers, body bytes).

    `headers` is a dict or a list of (name, value) pairs (duplicates allowed). With `chunked`,
    `body` (bytes or an iterable of bytes) is sent with Transfer-Encoding: chunked. Pass an
    open HTTPConnection as `conn` to reuse it (keep-alive)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        names = set()
        for k, v in items:
            conn.putheader(k, v)
            names.add(k.lower())
        if chunked:
            if "transfer-encoding" not in names:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            parts = [body] if isinstance(body, (bytes, bytearray)) else (body or [])
            for part in parts:
                if part:
                    conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            if body is not None and "content-length" not in names:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        if own:
            conn.close()


def get_json(port, path, timeout=5, host=None):
    status, _, body = http_request("GET", port, path, host=host, timeout=timeout)
    if status != 200:
        raise AssertionError("GET %s on port %d -> %d: %r" % (path, port, status, body[:300]))
    return json.loads(body)


def wait_http(port, path="/", timeout=START_TIMEOUT, host=None, expect=None, proc=None):
    """Polls until an HTTP response arrives (with status `expect` if given); returns
    (status, headers, body). Fails early, with the log tail, if `proc` exits meanwhile.

    `port` may also be a URL ("http://127.0.0.1:8080/x"); its path is then used."""
    if isinstance(port, str):
        parts = urlsplit(port)
        port = parts.port or 80
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        host = host or (parts.netloc if parts.hostname != LOOPBACK else None)
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s exited (code %s) while waiting for http://%s:%d%s\n%s"
                                 % (proc.name, proc.returncode, LOOPBACK, port, path, proc.tail()))
        try:
            result = http_request("GET", port, path, host=host, timeout=2)
            if expect is None or result[0] == expect:
                return result
            last = "status %d: %r" % (result[0], result[2][:200])
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        if time.monotonic() >= deadline:
            tail = ("\n" + proc.tail()) if proc is not None else ""
            raise AssertionError("http://%s:%d%s not ready within %.1f s (last: %s)%s"
                                 % (LOOPBACK, port, path, timeout, last, tail))
        time.sleep(0.05)


def list_tunnels(admin_port, timeout=5):
    """The `tunnels` array of GET /api/tunnels."""
    return get_json(admin_port, "/api/tunnels", timeout=timeout)["tunnels"]


def find_tunnel(admin_port, name):
    for t in list_tunnels(admin_port):
        if t.get("name") == name:
            return t
    return None


def wait_tunnel(admin_port, name, timeout=TUNNEL_TIMEOUT, procs=()):
    """Polls /api/tunnels until `name` is listed; returns its entry. Fails early, with log
    tails, if one of `procs` exits."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError("%s exited (code %s) while waiting for tunnel %r\n%s"
                                     % (p.name, p.returncode, name, p.tail()))
        try:
            tunnels = list_tunnels(admin_port, timeout=2)
            for t in tunnels:
                if t.get("name") == name:
                    return t
            last = "listed: %s" % [t.get("name") for t in tunnels]
        except (OSError, http.client.HTTPException, ValueError, KeyError, AssertionError) as e:
            last = repr(e)
        if time.monotonic() >= deadline:
            tails = "".join("\n" + p.tail() for p in procs)
            raise AssertionError("tunnel %r not listed within %.1f s (last: %s)%s"
                                 % (name, timeout, last, tails))
        time.sleep(0.05)


def wait_tunnel_gone(admin_port, name, timeout):
    """Polls until `name` is no longer listed; returns the seconds it took, or raises."""
    start = time.monotonic()
    while True:
        try:
            if all(t.get("name") != name for t in list_tunnels(admin_port, timeout=2)):
                return time.monotonic() - start
        except (OSError, http.client.HTTPException, ValueError, KeyError, AssertionError):
            pass
        if time.monotonic() - start >= timeout:
            raise AssertionError("tunnel %r still listed after %.1f s" % (name, timeout))
        time.sleep(0.05)


def fetch_url(url, timeout=10, headers=None):
    """GET a public URL printed by proxer, connecting to 127.0.0.1 whatever the host name
    (so name.localhost works without a resolver); the URL's host:port goes in Host."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return http_request("GET", port, path, host=parts.netloc, headers=headers, timeout=timeout)


# --- raw sockets ------------------------------------------------------------------------------


def raw_request(port, data, timeout=10, read_timeout=None):
    """Sends raw bytes and returns the raw response bytes.

    Reads until one complete response is in (by Content-Length or the chunked terminator), the
    peer closes, or `timeout` passes. A reset after some bytes returns what arrived."""
    deadline = time.monotonic() + timeout
    buf = b""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The server may answer (431/400) and close before reading everything.
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(min(left, read_timeout or left))
            try:
                piece = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not piece:
                break
            buf += piece
            if _response_complete(buf):
                break
    return buf


def _response_complete(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return False
    body = buf[end + 4:]
    if 100 <= status < 200:
        return _response_complete(body)
    if status in (204, 304):
        return True
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return body.endswith(b"0\r\n\r\n")
    if "content-length" in fields:
        try:
            return len(body) >= int(fields["content-length"])
        except ValueError:
            return False
    return False  # Delimited by close.


def parse_response(raw):
    """(status, {lowercase name: value}, body) of a raw response; status 0 if unparsable."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return 0, {}, raw
    lines = raw[:end].decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return 0, {}, raw
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, raw[end + 4:]


# --- curl / TLS -------------------------------------------------------------------------------


def curl(*args, timeout=60, input=None, stdout=subprocess.PIPE):
    """Runs curl -sS with `args`; returns CompletedProcess (stdout bytes, stderr bytes).
    --max-time is set from `timeout` unless given."""
    cmd = ["curl", "-sS"]
    if "--max-time" not in args and "-m" not in args:
        cmd += ["--max-time", str(int(timeout))]
    cmd += [str(a) for a in args]
    return subprocess.run(cmd, input=input, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=timeout + 10)


def make_self_signed_cert(workdir):
    """A P-256 self-signed cert for localhost/127.0.0.1; returns (cert_path, key_path)."""
    cert = os.path.join(workdir, "cert.pem")
    key = os.path.join(workdir, "key.pem")
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("openssl is not installed")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    return cert, key


def start_tls_gateway_class(cls):
    """For a test class: a self-signed certificate (cls.cert, cls.key), a backend (cls.be) and a
    gateway whose agent listener uses that certificate (cls.gw), all class-wide."""
    cls.cert, cls.key = make_self_signed_cert(cls.workdir)
    cls.be = start_backend(cls.workdir, registry=cls.class_procs)
    cls.gw = start_gateway(cls.workdir, registry=cls.class_procs,
                           extra=["--tls-cert", cls.cert, "--tls-key", cls.key])


def client_tls_context(cafile):
    return ssl.create_default_context(cafile=cafile)


# --- test base class --------------------------------------------------------------------------


class ProxerTestCase(unittest.TestCase):
    """Base class: a temporary directory per class, process registries, cleanup, log tails.

    Subclasses start shared processes in `start_class_processes` (registered in
    cls.class_procs) and per-test processes through self.procs (killed after each test)."""

    needs_binary = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.needs_binary:
            proxer_bin()  # Raises SkipTest when the binary is absent.
        cls.workdir = tempfile.mkdtemp(prefix="proxer-it-%s-" % cls.__name__)
        cls.class_procs = []
        try:
            cls.start_class_processes()
        except BaseException:
            _dump_logs("setUpClass of %s failed" % cls.__name__, cls.class_procs)
            cls._cleanup_class()
            raise

    @classmethod
    def start_class_processes(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        cls._cleanup_class()
        super().tearDownClass()

    @classmethod
    def _cleanup_class(cls):
        for p in reversed(getattr(cls, "class_procs", [])):
            p.stop(timeout=3)
        workdir = getattr(cls, "workdir", None)
        if workdir:
            if os.environ.get("PROXER_IT_KEEP"):
                sys.stderr.write("\n[proxer-it] logs kept in %s\n" % workdir)
            else:
                shutil.rmtree(workdir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.procs = []
        self.addCleanup(self._stop_test_procs)

    def _stop_test_procs(self):
        for p in reversed(self.procs):
            p.stop(timeout=3)

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            _dump_logs("%s failed" % self.id(),
                       getattr(self, "procs", []) + getattr(type(self), "class_procs", []))
        return outcome

    # Shortcuts that register the process with the current test.

    def gateway(self, **kw):
        return start_gateway(self.workdir, registry=self.procs, **kw)

    def agent(self, agent_port, tunnels, **kw):
        return start_agent(self.workdir, agent_port, tunnels, registry=self.procs, **kw)

    def backend(self):
        return start_backend(self.workdir, registry=self.procs)

    def spawn(self, name, args, **kw):
        return start_proc(self.workdir, name, args, registry=self.procs, **kw)

    def check_tunnel_traffic(self, port, name, download, upload=0, seed=5):
        """GET /t/{name}/hello, then `download` bytes from the backend's /bytes with their
        checksum compared, then (if `upload`) that many random bytes echoed back whole."""
        import hashlib
        import backend
        status, _, body = http_request("GET", port, "/t/%s/hello" % name)
        self.assertEqual((status, body), (200, b"Hello, world\n"))
        status, _, body = http_request(
            "GET", port, "/t/%s/bytes?n=%d&seed=%d" % (name, download, seed), timeout=60)
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(body).hexdigest(), backend.gen_sha256(download, seed))
        if upload:
            data = os.urandom(upload)
            status, _, body = http_request("POST", port, "/t/%s/echo" % name, body=data,
                                           timeout=60)
            self.assertEqual((status, body == data), (200, True))


def _dump_logs(title, procs):
    out = ["", "=" * 70, "[proxer-it] %s: process logs" % title]
    for p in procs:
        out.append(p.tail())
    out.append("=" * 70)
    sys.stderr.write("\n".join(out) + "\n")
    sys.stderr.flush()


class ThreadedServer:
    """A TCP listener on loopback that serves each accepted connection on its own thread with
    self._serve(conn) (subclasses define it); close() stops accepting."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        self.sock.close()
