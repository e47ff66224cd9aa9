"""WebSocket through a tunnel: a real client (python3-websockets) against a real echo server
behind the agent. After the 101 the gateway and the agent only pipe bytes, so everything the
WebSocket protocol does end to end must survive: messages of any size, fragmentation, control
frames and the close handshake; and an idle upgraded connection is closed after the timeout."""

import asyncio
import os
import sys
import time
import unittest

import harness

try:
    import websockets
except ImportError:  # pragma: no cover - the install script provides python3-websockets
    websockets = None

WS_ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ws_echo.py")


def start_ws_echo(workdir, registry):
    proc = harness.start_proc(workdir, "ws-echo", [sys.executable, "-u", WS_ECHO, "0"], registry)
    text = proc.wait_for_output("WS_READY", harness.START_TIMEOUT, stream="stdout")
    proc.port = int(text.split("WS_READY")[1].split()[0])
    return proc


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@unittest.skipIf(websockets is None, "python3-websockets is not installed")
class WebSocketTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.ws = start_ws_echo(cls.workdir, cls.class_procs)
        conf = os.path.join(cls.workdir, "gateway.toml")
        with open(conf, "w") as f:
            f.write('[timeouts]\nidle = "1500ms"\n')
        cls.gw = harness.start_gateway(cls.workdir, extra=["--config", conf],
                                       registry=cls.class_procs)
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("ws", cls.ws.port),
                                      harness.tunnel_spec("wsauth", cls.ws.port, "tok")],
                                     registry=cls.class_procs)
        for name in ("ws", "wsauth"):
            harness.wait_tunnel(cls.gw.ports.admin, name, procs=[cls.gw, cls.ag])

    def url(self, path="/t/ws/chat"):
        return "ws://127.0.0.1:%d%s" % (self.gw.ports.listen, path)

    def connect(self, path="/t/ws/chat", **kw):
        return websockets.connect(self.url(path), max_size=16 << 20, ping_interval=None, **kw)

    def test_small_text_and_binary_messages_echo(self):
        async def go():
            async with self.connect() as ws:
                for msg in ["hello", "héllo wörld ✓", b"\x00\x01\x02binary", ""]:
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
        run(go())

    def test_by_host_subdomain_too(self):
        async def go():
            # The URI names ws.localhost (the Host header); the socket goes to 127.0.0.1.
            uri = "ws://ws.localhost:%d/chat" % self.gw.ports.listen
            async with websockets.connect(uri, host="127.0.0.1", port=self.gw.ports.listen,
                                          ping_interval=None) as ws:
                await ws.send("via host")
                self.assertEqual(await ws.recv(), "via host")
        run(go())

    def test_large_messages_both_ways(self):
        big = os.urandom(3 << 20)  # 3 MiB binary, several flow-control windows
        text = "x" * (1 << 20) + "end"

        async def go():
            async with self.connect() as ws:
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                await ws.send(text)
                self.assertEqual(await ws.recv(), text)
        run(go())

    def test_fragmented_message_is_reassembled(self):
        parts = [os.urandom(n) for n in (1, 1000, 70000, 5, 300000)]

        async def go():
            async with self.connect() as ws:
                await ws.send(iter(parts))  # one message, sent as continuation frames
                self.assertEqual(await ws.recv(), b"".join(parts))
                await ws.send(iter(["frag", "men", "ted"]))
                self.assertEqual(await ws.recv(), "fragmented")
        run(go())

    def test_ping_gets_pong(self):
        async def go():
            async with self.connect() as ws:
                for i in range(3):
                    pong = await ws.ping(b"ping-%d" % i)
                    await asyncio.wait_for(pong, 5)
        run(go())

    def test_many_messages_interleaved_on_concurrent_connections(self):
        async def one(i):
            async with self.connect() as ws:
                for j in range(50):
                    msg = "conn %d msg %d" % (i, j)
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)

        async def go():
            await asyncio.gather(*(one(i) for i in range(20)))
        run(go())

    def test_client_close_handshake(self):
        async def go():
            ws = await self.connect()
            await ws.send("before close")
            self.assertEqual(await ws.recv(), "before close")
            await ws.close(code=4000, reason="client says bye")
            self.assertEqual(ws.close_code, 4000)
            self.assertEqual(ws.close_reason, "client says bye")
        run(go())

    def test_server_close_handshake(self):
        async def go():
            async with self.connect() as ws:
                await ws.send("close-me")
                with self.assertRaises(websockets.ConnectionClosed):
                    await ws.recv()
                self.assertEqual(ws.close_code, 4001)
                self.assertEqual(ws.close_reason, "server says bye")
        run(go())

    def test_idle_upgraded_connection_is_closed_after_the_timeout(self):
        async def go():
            async with self.connect() as ws:
                await ws.send("still here")
                self.assertEqual(await ws.recv(), "still here")
                start = time.monotonic()
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                return time.monotonic() - start
        waited = run(go())
        self.assertGreaterEqual(waited, 1.0)
        self.assertLess(waited, 6.0)

    def test_activity_keeps_it_open_past_the_timeout(self):
        async def go():
            async with self.connect() as ws:
                for i in range(6):  # 3 s of traffic, twice the idle timeout
                    await asyncio.sleep(0.5)
                    await ws.send("tick %d" % i)
                    self.assertEqual(await ws.recv(), "tick %d" % i)
        run(go())

    def test_tunnel_token_applies_to_upgrades(self):
        async def go():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                async with self.connect("/t/wsauth/chat"):
                    pass
            self.assertEqual(cm.exception.status_code, 401)
            async with self.connect("/t/wsauth/chat",
                                    extra_headers={"Authorization": "Bearer tok"}) as ws:
                await ws.send("authorised")
                self.assertEqual(await ws.recv(), "authorised")
        run(go())


if __name__ == "__main__":
    unittest.main()
