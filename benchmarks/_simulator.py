"""The simulator as its own process for the benchmark scripts: one way to start it, pin it and wait for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def simulator_process(args: list[str], *, core: int, start_timeout_s: float = 30) -> Iterator[str]:
    """``eks-llm-stack simulate ARGS`` on a free port, pinned to ``core`` on a machine with two or more
    cores; yields its URL once ``/health`` answers, and stops it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "eks_llm_stack.cli", "simulate", "--port", str(port), *args]
    pin = (lambda: os.sched_setaffinity(0, {core})) if (os.cpu_count() or 1) >= 2 else None
    proc = subprocess.Popen(cmd, cwd=ROOT, preexec_fn=pin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("simulator did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
