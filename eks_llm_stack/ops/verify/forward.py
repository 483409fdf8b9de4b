"""A local connection to a model's Service: ``kubectl port-forward``.

Through the kubelet, like ``kubectl port-forward`` always does, rather than the API server's service
proxy: the serving namespace is default-deny, and the model pods admit Prometheus, labelled API
clients and their load balancer only — not the API server's addresses.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .checks import EndpointError

_FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+)")


@dataclass(frozen=True, kw_only=True)
class KubectlForwarder:
    """``kubectl port-forward service/NAME :PORT``; the local port is the one kubectl picks."""

    kubeconfig: Path | None = None
    context: str | None = None
    timeout: float = 30.0

    @contextmanager
    def __call__(self, namespace: str, service: str, port: int) -> Iterator[str]:
        argv = ["kubectl"]
        if self.kubeconfig is not None:
            argv += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            argv += ["--context", self.context]
        argv += ["port-forward", "--namespace", namespace, f"service/{service}", f":{port}"]
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise EndpointError("kubectl is not installed or not on PATH (install it to reach the model)") from None
        try:
            yield f"http://127.0.0.1:{self._local_port(proc)}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _local_port(self, proc: subprocess.Popen[bytes]) -> int:
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + self.timeout
        seen = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=0.2):
                    line = proc.stdout.readline()
                    seen += line
                    if match := _FORWARDING.search(line):
                        return int(match.group(1))
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace").strip()
                    raise EndpointError(f"kubectl port-forward exited {proc.returncode}: {err[:300]}")
        raise EndpointError(
            f"kubectl port-forward did not start in {self.timeout:.0f}s ({seen.decode(errors='replace')[:200]})"
        )
