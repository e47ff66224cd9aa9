"""A TLS-intercepting middlebox, as corporate networks have: it terminates TLS (the agent trusts
its certificate with --ca), looks at what the client speaks, and lets through or blocks each kind
of agent traffic according to a policy file it rereads on every connection:

  tls   the tunnel protocol itself right after the TLS handshake (preface "PRXR")
  ws    an HTTP WebSocket upgrade
  poll  any other HTTP request (the long-poll carrier)

The policy file holds the blocked kinds, comma-separated ("" lets everything through). A blocked
raw connection is cut; a blocked HTTP request gets 403. Allowed traffic is relayed over a new
TLS connection to the upstream port. Usage:

  firewall.py UPSTREAM_PORT CERT KEY POLICY_FILE [LISTEN_PORT]   (prints "FW_READY <port>")

Two firewalls may share a LISTEN_PORT (SO_REUSEPORT), so one can replace the other without a
moment where the port refuses connections.
"""

import asyncio
import ssl
import sys

HEAD_LIMIT = 16384


def blocked_kinds(path):
    try:
        with open(path) as f:
            return {k.strip() for k in f.read().split(",") if k.strip()}
    except OSError:
        return set()


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def classify(reader):
    """Returns (kind, bytes read so far)."""
    buf = await asyncio.wait_for(reader.readexactly(4), 10)
    if buf == b"PRXR":
        return "tls", buf
    while b"\r\n\r\n" not in buf and len(buf) < HEAD_LIMIT:
        more = await asyncio.wait_for(reader.read(4096), 10)
        if not more:
            break
        buf += more
    head = buf.split(b"\r\n\r\n", 1)[0].lower()
    if b"\r\nupgrade: websocket" in head:
        return "ws", buf
    return "poll", buf


def main():
    upstream_port = int(sys.argv[1])
    cert, key, policy = sys.argv[2], sys.argv[3], sys.argv[4]
    listen_port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE

    async def handle(reader, writer):
        try:
            kind, first = await classify(reader)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.close()
            return
        if kind in blocked_kinds(policy):
            print("FW blocked %s" % kind, flush=True)
            if kind != "tls":
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    pass
            writer.close()
            return
        print("FW passed %s" % kind, flush=True)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", upstream_port, ssl=client_ctx, server_hostname="localhost")
        except OSError:
            writer.close()
            return
        up_writer.write(first)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port, ssl=server_ctx,
                                            reuse_port=True)
        print("FW_READY %d" % server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
