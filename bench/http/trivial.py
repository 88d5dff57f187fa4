"""A server that costs almost nothing per request: what the load generator is calibrated against.

``python -m ftscale.bench.http.trivial --port P --processes N`` answers every HTTP/1.1 request
(any method, path and body) with a fixed 200 JSON response on keep-alive connections, from N
processes sharing the port with SO_REUSEPORT. Measuring the generator against it, on the CPUs
the server under test will use, gives the rate the generator itself can reach with the same
connections: a cell whose service throughput comes close to that ceiling was limited by the
generator, not the service. It is not the service under test, and it does not go through it.

Standard library only; each process parses just enough HTTP to find where a request ends.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import sys
import time

RESPONSE = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}'


class Trivial(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            assert self.transport is not None
            self.transport.write(RESPONSE)


def _serve(host: str, port: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the group with SIGTERM
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Trivial, sock=sock)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftscale.bench.http.trivial")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_serve, args=(args.host, args.port)) for _ in range(args.processes)]
    for child in children:
        child.start()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and all(c.is_alive() for c in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(5)
            if child.is_alive():
                child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
