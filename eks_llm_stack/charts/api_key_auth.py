"""API-key check for vLLM's HTTP server, loaded with ``vllm serve --middleware``.

This file is shipped *as is* into the model pods (a ConfigMap mounted on ``PYTHONPATH``, see
:mod:`eks_llm_stack.charts.vllm`), so it depends on the standard library only and is a plain
ASGI middleware: vLLM adds it with ``app.add_middleware(ApiKeyMiddleware)``.

Why not ``--api-key``: vLLM reads that key once, at start (a rotation would need a restart of
every replica, minutes of model load each), it puts the key on the command line, and it guards
only the ``/v1``-style prefixes — ``/tokenize``, ``/pause``, ``/abort_requests``,
``/invocations`` and more stay open (vLLM's security guide says so). This middleware instead:

* refuses every path but :data:`OPEN_PATHS` (health, Prometheus metrics, version) without
  ``Authorization: Bearer <key>`` — an allow-list, so a new vLLM endpoint is closed by default;
* reads the keys from the file named by ``$LLM_API_KEY_FILE`` (the Kubernetes Secret that
  External Secrets keeps in sync, mounted as a volume) and re-reads it whenever the file
  changes, so a rotated key is in force within External Secrets' refresh interval plus the
  kubelet's volume sync (about a minute), with no restart;
* accepts every non-empty line of that file as a key, so a rotation can overlap: put
  ``new\\nold``, move the clients, then put ``new`` alone;
* fails closed: no file, or an empty one, refuses every protected request.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

#: Environment variable with the path of the key file.
KEY_FILE_ENV = "LLM_API_KEY_FILE"
#: Where the key file is mounted when the variable is unset.
DEFAULT_KEY_FILE = "/etc/eks-llm-stack/api-key/api-key"
#: Paths served without a key: kubelet probes, the load balancer health check, Prometheus, the preStop drain.
OPEN_PATHS = frozenset({"/health", "/ping", "/metrics", "/version"})


class ApiKeyMiddleware:
    """ASGI middleware: ``Authorization: Bearer <key>`` on every path but :data:`OPEN_PATHS`."""

    def __init__(self, app: Any, key_file: str | None = None) -> None:
        self.app = app
        self.key_file = key_file or os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE
        self._stamp: tuple[int, int, int] | None = None
        self._keys: tuple[bytes, ...] = ()

    def keys(self) -> tuple[bytes, ...]:
        """The keys in force: the file's non-empty lines, re-read when the file changed."""
        try:
            st = os.stat(self.key_file)  # follows the Secret volume's ..data symlink swap
        except OSError:
            self._stamp, self._keys = None, ()
            return ()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                with open(self.key_file, "rb") as f:
                    text = f.read()
            except OSError:
                return ()
            self._keys = tuple(k.strip() for k in text.splitlines() if k.strip())
            self._stamp = stamp
        return self._keys

    def allowed(self, scope: dict[str, Any]) -> bool:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path in OPEN_PATHS or (scope["type"] == "http" and scope.get("method") == "OPTIONS"):
            return True
        header = b""
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                header = value
                break
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        token = token.strip()
        # Compare against every key, in constant time per key.
        return any(hmac.compare_digest(token, key) for key in self.keys())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(
            {"error": {"message": "missing or invalid API key", "type": "invalid_request_error", "code": 401}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
