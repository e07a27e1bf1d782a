"""A local HTTP/1.1 server limited to LIMIT requests a second (GCRA, burst BURST): 200 within
the limit, else 429 with a fractional ``Retry-After`` (the seconds until the next free slot).
``GET /reset`` clears the bucket and the counters; ``GET /stats`` returns ``ok rejected``.
Run as ``python _limited_server.py LIMIT BURST``; prints ``PORT <n>`` once listening."""

from __future__ import annotations

import asyncio
import socket
import sys
import time


def main(limit: float, burst: float) -> None:
    state = {"tat": 0.0, "ok": 0, "rejected": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path == b"/reset":
                    state.update(tat=0.0, ok=0, rejected=0)
                    status, extra, body = "200 OK", "", b"reset"
                elif path == b"/stats":
                    status, extra = "200 OK", ""
                    body = f"{state['ok']} {state['rejected']}".encode()
                else:
                    now = time.monotonic()
                    tat = max(state["tat"], now)
                    allow_at = tat - (burst - 1) / limit
                    if now < allow_at:
                        state["rejected"] += 1
                        status, body = "429 Too Many Requests", b"slow down"
                        extra = f"Retry-After: {allow_at - now:.3f}\r\n"
                    else:
                        state["tat"] = tat + 1 / limit
                        state["ok"] += 1
                        status, extra, body = "200 OK", "", b"ok"
                writer.write(
                    f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = await asyncio.start_server(handle, sock=sock)
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main(float(sys.argv[1]), float(sys.argv[2]))
