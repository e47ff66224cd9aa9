"""TCP tunnels: a public port per tunnel on the gateway, each connection piped to the agent's
local target. Real protocol through it: redis-server and redis-cli / redis-benchmark (Debian's
redis-server, redis-tools). Also: a requested port, refusals, half-close, PROXY protocol v1/v2
towards the target, and the port closing when its agent goes away."""

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import unittest

import harness

TCP_ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tcp_echo.py")
RANGE = (20000, 29999)
REDIS = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCH = shutil.which("redis-benchmark")


def start_tcp_echo(workdir, registry, proxy=False, name="tcp-echo"):
    args = [sys.executable, "-u", TCP_ECHO, "0"] + (["--proxy"] if proxy else [])
    proc = harness.start_proc(workdir, name, args, registry)
    text = proc.wait_for_output("TCP_READY", harness.START_TIMEOUT, stream="stdout")
    proc.port = int(text.split("TCP_READY")[1].split()[0])
    return proc


def free_port_in_range():
    start = random.randint(*RANGE)
    for i in range(RANGE[1] - RANGE[0] + 1):
        port = RANGE[0] + (start - RANGE[0] + i) % (RANGE[1] - RANGE[0] + 1)
        s = socket.socket()
        try:
            s.bind((harness.LOOPBACK, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port in %d-%d" % RANGE)


def public_port(admin, name, procs=()):
    harness.wait_tunnel(admin, name, procs=procs)
    return harness.find_tunnel(admin, name)["public_port"]


def exchange(port, data, timeout=10):
    """Connects, sends `data`, half-closes, returns everything received until EOF."""
    with socket.create_connection((harness.LOOPBACK, port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return bytes(out)
            out += chunk


class TcpTunnelTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.echo = start_tcp_echo(cls.workdir, cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, extra=["--tcp-ports", "%d-%d" % RANGE],
                                       registry=cls.class_procs)
        cls.ag = harness.start_agent(
            cls.workdir, cls.gw.ports.agent,
            ["echo=tcp://127.0.0.1:%d" % cls.echo.port], registry=cls.class_procs)
        cls.port = public_port(cls.gw.ports.admin, "echo", procs=[cls.gw, cls.ag])

    def test_port_is_in_the_range_and_printed_to_the_agent(self):
        self.assertTrue(RANGE[0] <= self.port <= RANGE[1])
        self.ag.wait_for_output("tcp://localhost:%d" % self.port, timeout=5, stream="stderr")
        t = harness.find_tunnel(self.gw.ports.admin, "echo")
        self.assertEqual(t["type"], "tcp")

    def test_bytes_round_trip_with_half_close(self):
        data = os.urandom(3 << 20)  # several windows each way
        self.assertEqual(exchange(self.port, data), data)

    def test_many_concurrent_connections(self):
        import concurrent.futures
        payloads = [os.urandom(random.randint(1, 200000)) for _ in range(40)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(lambda d: exchange(self.port, d), payloads))
        self.assertEqual(results, payloads)
        t = harness.find_tunnel(self.gw.ports.admin, "echo")
        self.assertGreaterEqual(t["request_count"], 40)
        self.assertGreaterEqual(t["bytes_in"], sum(len(p) for p in payloads))

    def test_requested_port_is_granted(self):
        want = free_port_in_range()
        ag = self.agent(self.gw.ports.agent, ["fixed:%d=tcp://127.0.0.1:%d" % (want, self.echo.port)],
                        agent_id="fixed-agent", name="fixed-agent")
        self.assertEqual(public_port(self.gw.ports.admin, "fixed", procs=[self.gw, ag]), want)
        self.assertEqual(exchange(want, b"on the port I asked for"), b"on the port I asked for")

    def test_port_outside_the_range_is_refused(self):
        ag = self.agent(self.gw.ports.agent, ["outside:%d=tcp://127.0.0.1:%d" % (RANGE[0] - 1,
                                                                                   self.echo.port)],
                        agent_id="outside-agent", name="outside-agent")
        ag.wait_for_output("outside this gateway's TCP port range", timeout=10, stream="stderr")

    def test_busy_requested_port_is_refused(self):
        holder = socket.socket()
        holder.bind((harness.LOOPBACK, free_port_in_range()))
        holder.listen(1)
        try:
            busy = holder.getsockname()[1]
            ag = self.agent(self.gw.ports.agent, ["busy:%d=tcp://127.0.0.1:%d" % (busy, self.echo.port)],
                            agent_id="busy-agent", name="busy-agent")
            ag.wait_for_output("port %d is not available" % busy, timeout=10, stream="stderr")
        finally:
            holder.close()

    def test_local_target_down_closes_the_connection(self):
        dead = harness.closed_port()
        ag = self.agent(self.gw.ports.agent, ["dead=tcp://127.0.0.1:%d" % dead],
                        agent_id="dead-agent", name="dead-agent")
        port = public_port(self.gw.ports.admin, "dead", procs=[self.gw, ag])
        with socket.create_connection((harness.LOOPBACK, port), timeout=10) as s:
            s.settimeout(10)
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionResetError:
                pass  # a reset is as good as an EOF here: nothing was served

    def test_port_closes_when_the_agent_goes_away(self):
        ag = self.agent(self.gw.ports.agent, ["gone=tcp://127.0.0.1:%d" % self.echo.port],
                        agent_id="gone-agent", name="gone-agent")
        port = public_port(self.gw.ports.admin, "gone", procs=[self.gw, ag])
        self.assertEqual(exchange(port, b"x"), b"x")
        ag.kill()
        harness.wait_tunnel_gone(self.gw.ports.admin, "gone", timeout=10)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((harness.LOOPBACK, port), timeout=5).close()


class ProxyProtocolTest(harness.ProxerTestCase):
    """`proxer tcp PORT --proxy-protocol v1|v2`: the target sees the public client's address."""

    @classmethod
    def start_class_processes(cls):
        cls.echo = start_tcp_echo(cls.workdir, cls.class_procs, proxy=True)
        cls.gw = harness.start_gateway(cls.workdir, extra=["--tcp-ports", "%d-%d" % RANGE],
                                       registry=cls.class_procs)

    def start_tcp_command(self, version, name):
        proc = self.spawn("proxer-tcp-" + version,
                          [harness.proxer_bin(), "tcp", str(self.echo.port), "--name", name,
                           "--proxy-protocol", version, "--gateway",
                           "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                           "--token", harness.DEFAULT_TOKEN])
        proc.wait_for_output("Forwarding", timeout=10, stream="stdout")
        return public_port(self.gw.ports.admin, name, procs=[self.gw, proc])

    def header_for(self, port, payload=b"after the header"):
        with socket.create_connection((harness.LOOPBACK, port), timeout=10) as s:
            client_port = s.getsockname()[1]
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            out = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        line, _, rest = bytes(out).partition(b"\n")
        self.assertTrue(line.startswith(b"HEADER "), out[:200])
        self.assertEqual(rest, payload)  # the stream itself is untouched
        return bytes.fromhex(line[7:].decode()), client_port

    def test_v1(self):
        port = self.start_tcp_command("v1", "pp1")
        header, client_port = self.header_for(port)
        self.assertEqual(header, b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n" % (client_port, port))

    def test_v2(self):
        port = self.start_tcp_command("v2", "pp2")
        header, client_port = self.header_for(port)
        self.assertEqual(header[:12], b"\r\n\r\n\x00\r\nQUIT\n")
        self.assertEqual(header[12:16], b"\x21\x11\x00\x0c")
        self.assertEqual(socket.inet_ntoa(header[16:20]), "127.0.0.1")
        self.assertEqual(socket.inet_ntoa(header[20:24]), "127.0.0.1")
        self.assertEqual(int.from_bytes(header[24:26], "big"), client_port)
        self.assertEqual(int.from_bytes(header[26:28], "big"), port)

    def test_token_on_a_tcp_tunnel_is_a_config_error(self):
        proc = self.spawn("bad-tcp", [harness.proxer_bin(), "agent", "--gateway",
                                      "tcp://127.0.0.1:%d" % self.gw.ports.agent,
                                      "--tunnel", "db@tok=tcp://127.0.0.1:1"])
        self.assertEqual(proc.wait_exit(10), 2)
        self.assertIn("per-tunnel tokens protect HTTP tunnels only", proc.stderr())


@unittest.skipIf(not (REDIS and REDIS_CLI), "redis-server and redis-cli are not installed")
class RedisThroughTunnelTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.redis_port = harness.free_port()
        cls.redis = harness.start_proc(
            cls.workdir, "redis-server",
            [REDIS, "--port", str(cls.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", cls.workdir], cls.class_procs)
        cls.redis.wait_for_output("Ready to accept connections", harness.START_TIMEOUT)
        cls.gw = harness.start_gateway(cls.workdir, extra=["--tcp-ports", "%d-%d" % RANGE],
                                       registry=cls.class_procs)
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     ["redis=tcp://127.0.0.1:%d" % cls.redis_port],
                                     registry=cls.class_procs)
        cls.port = public_port(cls.gw.ports.admin, "redis", procs=[cls.gw, cls.ag])

    def cli(self, *args, input=None):
        out = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)] + list(args),
                             input=input, capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_set_get_and_a_large_value(self):
        self.assertEqual(self.cli("PING").strip(), b"PONG")
        self.assertEqual(self.cli("SET", "greeting", "hello through the tunnel").strip(), b"OK")
        self.assertEqual(self.cli("GET", "greeting").strip(), b"hello through the tunnel")
        big = os.urandom(1 << 20).hex().encode()  # 2 MiB of text
        self.assertEqual(self.cli("-x", "SET", "big", input=big).strip(), b"OK")
        self.assertEqual(self.cli("STRLEN", "big").strip(), str(len(big)).encode())
        self.assertEqual(self.cli("GET", "big").rstrip(b"\n"), big)

    @unittest.skipIf(not REDIS_BENCH, "redis-benchmark is not installed")
    def test_redis_benchmark_without_errors(self):
        out = subprocess.run([REDIS_BENCH, "-h", "127.0.0.1", "-p", str(self.port), "-n", "5000",
                              "-c", "20", "-t", "set,get", "-q"],
                             capture_output=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout.decode(errors="replace")
        self.assertIn("SET:", text)
        self.assertIn("GET:", text)


if __name__ == "__main__":
    unittest.main()
