"""A start barrier for several harness processes sharing one load (``bench run --shard I/N --barrier
HOST:PORT``): every level starts at the same wall-clock instant in every process.

Harness 0 is the coordinator: it listens on PORT; the others connect to HOST:PORT (in the
benchmark Job, ``<job>-0.<service>``, the stable name of pod 0 of the Indexed Job) and say
``ready <level>``. When all N are ready the coordinator answers ``go <unix ns>``, a moment
``lead_s`` ahead, and every process sleeps until then on its own wall clock (NTP-synced nodes
agree to about a millisecond; the merged report lines runs up by that clock too).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time

from ..errors import ConfigError, Problem


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise ConfigError(
            "bench run", [Problem("--barrier", "is not HOST:PORT", "e.g. --barrier bench-0.bench:7000", address)]
        ) from None


def _bind_host(host: str) -> str:
    # An address literal is bound as is (127.0.0.1 in tests); a name is pod 0's own DNS name in
    # the cluster, where it listens on every interface.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "0.0.0.0"
    return host


class Barrier:
    """One barrier per run; :meth:`before_level` is awaited before every level."""

    def __init__(self, address: str, *, index: int, count: int, timeout_s: float = 300.0, lead_s: float = 0.5):
        self.host, self.port = _split(address)
        self.index, self.count = index, count
        self.timeout_s, self.lead_s = timeout_s, lead_s
        self._server: asyncio.Server | None = None
        self._peers: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._joined = asyncio.Event()
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        #: Wall-clock start (unix ns) of every level, as agreed.
        self.starts: list[int] = []

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._peers.append((reader, writer))
        if len(self._peers) >= self.count - 1:
            self._joined.set()

    async def _coordinate(self, level: int) -> int:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, _bind_host(self.host), self.port)
        if self.count > 1:
            await self._joined.wait()
        for reader, _ in self._peers:
            line = (await reader.readline()).decode().split()
            if line != ["ready", str(level)]:
                raise RuntimeError(f"barrier: a harness said {line!r} for level {level}")
        start = time.time_ns() + int(self.lead_s * 1e9)
        for _, writer in self._peers:
            writer.write(f"go {start}\n".encode())
            await writer.drain()
        return start

    async def _follow(self, level: int) -> int:
        deadline = time.monotonic() + self.timeout_s
        while self._conn is None:
            try:
                self._conn = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        reader, writer = self._conn
        writer.write(f"ready {level}\n".encode())
        await writer.drain()
        line = (await reader.readline()).decode().split()
        if len(line) != 2 or line[0] != "go":
            raise RuntimeError(f"barrier: the coordinator said {line!r}")
        return int(line[1])

    async def before_level(self, level: int) -> None:
        """Wait until every harness is ready for ``level``, then until the agreed start."""
        try:
            start = await asyncio.wait_for(
                self._coordinate(level) if self.index == 0 else self._follow(level), self.timeout_s
            )
        except (TimeoutError, OSError) as exc:
            raise ConfigError(
                "bench run",
                [
                    Problem(
                        "--barrier",
                        f"harness {self.index} of {self.count} did not meet the others within {self.timeout_s:g} s "
                        f"({type(exc).__name__})",
                        "start all N harnesses (the Indexed Job does) and check that harness 0 is reachable",
                        f"{self.host}:{self.port}",
                    )
                ],
            ) from None
        self.starts.append(start)
        delay = (start - time.time_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)

    async def close(self) -> None:
        for _, writer in self._peers:
            writer.close()
        if self._conn is not None:
            self._conn[1].close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
