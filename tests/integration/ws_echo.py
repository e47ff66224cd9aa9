#!/usr/bin/env python3
"""A real WebSocket echo server (python3-websockets) for the integration tests.

    python3 ws_echo.py PORT        (PORT 0 picks a free port)

Prints "WS_READY <port>" once it listens on 127.0.0.1. Every message comes back unchanged (a
fragmented message is echoed whole); the text message "close-me" makes the server close with
code 4001 and reason "server says bye". Messages up to 16 MiB.
"""

import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            if msg == "close-me":
                await ws.close(code=4001, reason="server says bye")
                return
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, max_size=16 << 20,
                                ping_interval=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print("WS_READY %d" % bound, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
