"""``workers``: N worker processes, each with its own event loop, app and pool, and one supervisor.

The supervisor (the process ``ftscale serve`` started) binds the port and, by default
(``--worker-balance acceptor``), accepts every connection itself and hands it to the worker
with the fewest open connections: over a Unix socket pair per worker (SOCK_SEQPACKET, one
message per connection, the descriptor passed with SCM_RIGHTS). The worker rebuilds the socket
with ``socket.socket(fileno=fd)``, which reads family, type and protocol back from the kernel,
so asyncio sees IPPROTO_TCP and sets TCP_NODELAY (``socket.fromfd`` would report protocol 0
and leave Nagle on); the listener sets TCP_NODELAY too, which accepted sockets inherit. Each
worker reports every connection it closes, so the supervisor's counts stay true. It is the
``loops`` design with processes in place of threads; docs/servers-and-topologies.md has the
measurements that chose it over ``--worker-balance reuseport`` (one SO_REUSEPORT socket per worker, placed by
the kernel's address hash, kept so the difference can be shown).

Supervision: a worker that dies is replaced in its slot (its request counter carries on); a
worker that cannot start (exit status 3) stops the service. SIGTERM or SIGINT (Ctrl-C reaches
the whole process group; workers and pool children ignore SIGINT and wait for the supervisor)
stops accepting, hands over what the kernel had already accepted, tells every worker to stop
gracefully, waits for them (a second SIGINT makes them stop waiting for connections), and exits
0. Workers die with the supervisor: the kernel sends them SIGTERM when it dies
(``PR_SET_PDEATHSIG``), and their channel reads end-of-file; either makes them drain and exit.

Limits: balancing is per connection, not per request; the supervisor spends a few
microseconds and one ``sendmsg`` per connection (nothing per request on keep-alive
connections); a hung worker (alive, not serving) is not detected.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.sharedctypes
import os
import signal
import socket
import sys
import time
from collections.abc import MutableSequence
from dataclasses import dataclass
from typing import cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ftscale.server import accepting, grace, lifeline
from ftscale.server.apps import make_app
from ftscale.server.config import ServerConfig, WorkerBalance
from ftscale.server.counters import UnitCounts
from ftscale.server.topology import (
    GRACEFUL_S,
    HANDLED_SIGNALS,
    ServiceServer,
    bind_listener,
    uvicorn_config,
)
from ftscale.server.units import AppFactory

logger = logging.getLogger("ftscale.server")

STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = GRACEFUL_S + grace.STOP_MARGIN_S  # then the supervisor kills what is left
ACCEPT_BATCH = 64  # connections accepted per wake-up before the loop serves anything else
ACCEPT_BACKOFF_S = 1.0

# Messages on a worker's channel (SOCK_SEQPACKET keeps each one whole).
HELLO_FED = b"a"  # supervisor -> worker, first: connections will come over this channel
HELLO_LISTEN = b"l"  # supervisor -> worker, first, with one fd: accept on this SO_REUSEPORT socket
CONN = b"c"  # supervisor -> worker, with one fd: serve this connection
STOP = b"s"  # supervisor -> worker: stop gracefully
FORCE = b"f"  # supervisor -> worker: stop without waiting for connections
READY = b"r"  # worker -> supervisor: serving
CLOSED = b"-"  # worker -> supervisor: one connection has closed


def unit_labels(threads: int) -> list[str]:
    return [f"worker {i}" for i in range(threads)]


# -- the worker process ------------------------------------------------------------------------------


class WorkerServer(ServiceServer):
    """A worker's server: connections come over ``chan`` from the supervisor (or from its own
    SO_REUSEPORT listener), and so do the orders to stop."""

    def __init__(self, config: uvicorn.Config, service: ServerConfig, chan: socket.socket) -> None:
        super().__init__(config, service.effective_max_connections, service.header_timeout_s, limits=service)
        self.chan = chan
        self.guard.on_lost = self._report_closed

    def _report_closed(self) -> None:
        try:
            self.chan.send(CLOSED)
        except OSError:  # the supervisor is gone or not reading: its count no longer matters
            pass

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        loop = asyncio.get_running_loop()
        self.chan.setblocking(False)
        loop.add_reader(self.chan.fileno(), self._readable)
        try:
            self.chan.send(READY)
        except OSError:
            self.request_exit()

    def _readable(self) -> None:
        assert self.loop is not None
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(self.chan, 16, 4)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg and not fds:  # end of file: the supervisor has gone
                self.loop.remove_reader(self.chan.fileno())
                self.request_exit()
                return
            if msg == CONN:
                for fd in fds:
                    self.hand_over()
                    self.connect(socket.socket(fileno=fd))
                continue
            for fd in fds:  # nothing else carries a descriptor
                os.close(fd)
            if msg == STOP:
                self.request_exit()
            elif msg == FORCE:
                self.request_exit(force=True)


def worker_main(
    config: ServerConfig,
    slot: int,
    chan: socket.socket,
    counts: MutableSequence[int],
    parent_pid: int,
    factory: AppFactory = make_app,
    forked: bool = False,
) -> None:
    """A worker process's body (spawned or forked): serve until told to stop, or until the
    supervisor dies. A forked worker first closes the sockets it inherited (the supervisor's
    listener, its siblings' channels) but its own channel."""
    if forked:
        lifeline.close_inherited_sockets(keep={chan.fileno()})
    lifeline.die_with_parent(signal.SIGTERM, parent_pid)
    lifeline.ignore_sigint()  # Ctrl-C is the supervisor's to coordinate
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s: %(message)s")
    chan.settimeout(STARTUP_TIMEOUT_S)
    hello, fds, _, _ = socket.recv_fds(chan, 16, 1)
    listener = socket.socket(fileno=fds[0]) if hello == HELLO_LISTEN and fds else None
    units = UnitCounts(unit_labels(config.threads), counts)
    app = factory(config, units=units, unit=slot)
    server = WorkerServer(uvicorn_config(app, config), config, chan)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.request_exit())
    server.run(sockets=[listener] if listener is not None else None)
    sys.exit(0 if server.started else STARTUP_FAILURE)


# -- the supervisor --------------------------------------------------------------------------------


@dataclass
class Worker:
    slot: int
    process: multiprocessing.process.BaseProcess
    chan: socket.socket  # the supervisor's end
    ready: bool = False
    load: int = 0  # connections handed over and not yet reported closed


class Supervisor:
    """Starts the workers, feeds them connections (acceptor) and replaces those that die."""

    def __init__(self, config: ServerConfig, factory: AppFactory = make_app) -> None:
        self.config = config
        self.factory = factory  # module level: it reaches the spawned workers pickled
        self.balance = config.worker_balance
        if self.balance is WorkerBalance.REUSEPORT:
            # The workers' sockets join the port; this one holds it while they come and go.
            self.listener = _reserve_port(config.host, config.port)
        else:
            self.listener = bind_listener(config.host, config.port)
        self.port = self.listener.getsockname()[1]
        self.listener.setblocking(False)
        shared = multiprocessing.sharedctypes.RawArray(ctypes.c_int64, config.threads)
        self.counts = cast(MutableSequence[int], shared)
        self.workers: list[Worker | None] = [None] * config.threads
        self.stopping = False
        self.status = 0
        self.all_exited = asyncio.Event()
        self.ready = asyncio.Event()
        self._accepting = False
        self._turn = itertools.count()
        self._held: socket.socket | None = None  # accepted, waiting for room in a channel
        self._watching: set[int] = set()  # slots whose channel is watched for room

    # -- workers ---------------------------------------------------------------------------------

    def spawn(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        context = lifeline.start_context(self.config.start_method)
        forked = context.get_start_method() == "fork"
        process = context.Process(
            target=worker_main,
            args=(self.config, slot, theirs, self.counts, os.getpid(), self.factory, forked),
            name=f"ftscale-worker-{slot}",
        )
        try:
            with lifeline.sigint_blocked():  # the worker ignores SIGINT before it unblocks it
                process.start()
        finally:
            theirs.close()
        if self.balance is WorkerBalance.REUSEPORT:
            own = bind_listener(self.config.host, self.port, reuse_port=True)
            try:
                socket.send_fds(mine, [HELLO_LISTEN], [own.fileno()])
            finally:
                own.close()  # the worker holds it now
        else:
            mine.send(HELLO_FED)
        mine.setblocking(False)
        worker = Worker(slot, process, mine)
        self.workers[slot] = worker
        loop.add_reader(mine.fileno(), self._from_worker, worker)
        loop.add_reader(process.sentinel, self._exited, worker)

    def _from_worker(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg = worker.chan.recv(16)
            except BlockingIOError:
                return
            except OSError:
                msg = b""
            if not msg:  # the worker is gone; _exited replaces it
                loop.remove_reader(worker.chan.fileno())
                worker.ready = False
                return
            if msg == CLOSED:
                worker.load = max(0, worker.load - 1)
            elif msg == READY:
                worker.ready = True
                if all(w is not None and w.ready for w in self.workers):
                    self.ready.set()
                self._resume_accepting()

    def _exited(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        loop.remove_reader(worker.chan.fileno())
        if worker.slot in self._watching:
            loop.remove_writer(worker.chan.fileno())
            self._watching.discard(worker.slot)
        worker.process.join()
        worker.chan.close()
        worker.ready = False
        code = worker.process.exitcode
        if self.stopping:
            if all(w is None or not w.process.is_alive() for w in self.workers):
                self.all_exited.set()
            return
        if code == STARTUP_FAILURE:
            logger.error("worker %d (pid %s) failed to start; stopping", worker.slot, worker.process.pid)
            self.status = STARTUP_FAILURE
            self.stop()
            return
        logger.error(
            "worker %d (pid %s) died (exit status %s); starting another",
            worker.slot,
            worker.process.pid,
            code,
        )
        self.spawn(worker.slot)

    # -- accepting ---------------------------------------------------------------------------------

    def _resume_accepting(self) -> None:
        if self.balance is not WorkerBalance.ACCEPTOR or self._accepting or self.stopping:
            return
        if not (self.ready.is_set() and any(w is not None and w.ready for w in self.workers)):
            return
        if self._held is not None:  # a connection no worker could take yet goes first
            if not self._hand(self._held):
                self._wait_for_room()
                return
            self._held = None
        asyncio.get_running_loop().add_reader(self.listener.fileno(), self._accept_ready)
        self._accepting = True

    def _pause_accepting(self) -> None:
        if self._accepting:
            asyncio.get_running_loop().remove_reader(self.listener.fileno())
            self._accepting = False

    def _accept_ready(self, most: int = ACCEPT_BATCH) -> None:
        for _ in range(most):
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. out of descriptors: back off, as asyncio's servers do
                accepting.report(exc)
                self._pause_accepting()
                asyncio.get_running_loop().call_later(ACCEPT_BACKOFF_S, self._resume_accepting)
                return
            if not self._hand(conn):
                # Every worker's channel is full (or none is ready): hold this one, leave the
                # rest in the kernel's backlog, and go on when a channel has room.
                self._held = conn
                self._pause_accepting()
                self._wait_for_room()
                return

    def _wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            if worker is not None and worker.ready and worker.slot not in self._watching:
                loop.add_writer(worker.chan.fileno(), self._room, worker)
                self._watching.add(worker.slot)

    def _room(self, worker: Worker) -> None:
        asyncio.get_running_loop().remove_writer(worker.chan.fileno())
        self._watching.discard(worker.slot)
        self._resume_accepting()

    def _hand(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to the ready worker with the fewest connections (ties: round robin).

        False if no worker could take it now; the caller still owns ``conn`` then.
        """
        ready = [w for w in self.workers if w is not None and w.ready]
        if not ready:
            return False
        start = next(self._turn) % len(ready)
        for worker in sorted(ready[start:] + ready[:start], key=lambda w: w.load):
            try:
                socket.send_fds(worker.chan, [CONN], [conn.fileno()])
            except OSError:  # its channel is full or gone: try the next
                continue
            worker.load += 1
            conn.close()  # the message in flight holds its own reference
            return True
        return False

    # -- stopping ------------------------------------------------------------------------------------

    def stop(self, force: bool = False) -> None:
        """Stop accepting, hand over the backlog, and tell every worker to stop."""
        first = not self.stopping
        self.stopping = True
        if first:
            self._pause_accepting()
            if self.balance is WorkerBalance.ACCEPTOR:
                if self._held is not None and self._hand(self._held):
                    self._held = None
                if self._held is None:
                    self._accept_ready(most=1000)  # closing the listener would reset these
            if self._held is not None:
                self._held.close()
                self._held = None
            self.listener.close()
        for worker in self.workers:
            if worker is not None and worker.process.is_alive():
                try:
                    worker.chan.send(FORCE if force else STOP)
                except OSError:
                    pass
        if all(w is None or not w.process.is_alive() for w in self.workers):
            self.all_exited.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals_seen: list[int] = []

        def on_signal(signum: int) -> None:
            self.stop(force=signum == signal.SIGINT and signal.SIGINT in signals_seen)
            signals_seen.append(signum)

        for signum in HANDLED_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            for slot in range(self.config.threads):
                self.spawn(slot)
            try:
                await asyncio.wait_for(self.ready.wait(), STARTUP_TIMEOUT_S)
            except TimeoutError:
                if not self.stopping:
                    logger.error("workers did not start within %d s", STARTUP_TIMEOUT_S)
                    self.status = STARTUP_FAILURE
                    self.stop()
            self._resume_accepting()
            await self.all_exited.wait()
        finally:
            await self._reap()
            for signum in HANDLED_SIGNALS:
                loop.remove_signal_handler(signum)
        counts = UnitCounts(unit_labels(self.config.threads), self.counts).snapshot()
        logger.info(
            "work requests computed per worker: %s", ", ".join(f"{k}: {v}" for k, v in counts.items())
        )
        return self.status

    async def _reap(self) -> None:
        """Wait for the workers to exit (bounded), then kill what is left."""
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self.workers:
            if worker is None:
                continue
            left = max(0.0, deadline - time.monotonic())
            await asyncio.to_thread(worker.process.join, left)
            if worker.process.is_alive():
                logger.error("worker %d did not stop in time; killing it", worker.slot)
                worker.process.kill()
                await asyncio.to_thread(worker.process.join)
                self.status = self.status or 1


def _reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket: holds ``port`` (0: any) while workers come
    and go, without taking a share of the connections as a listening one would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def run_workers(config: ServerConfig, factory: AppFactory = make_app) -> int:
    """``threads`` worker processes behind one supervisor (the ``workers`` topology)."""
    supervisor = Supervisor(config, factory)
    how = "one acceptor" if config.worker_balance is WorkerBalance.ACCEPTOR else "SO_REUSEPORT"
    logger.info("serving on http://%s:%d (%d workers, %s)", config.host, supervisor.port, config.threads, how)
    return asyncio.run(supervisor.run())
