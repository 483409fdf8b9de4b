"""The API-key middleware loaded into vLLM: an allow-list of open paths, rotation without restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from eks_llm_stack.charts.api_key_auth import OPEN_PATHS, ApiKeyMiddleware


class _App:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _request(mw: ApiKeyMiddleware, path: str, key: str | None = None, method: str = "POST", **scope: Any) -> int:
    headers = [(b"authorization", f"Bearer {key}".encode())] if key is not None else []
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    full = {"type": "http", "method": method, "path": path, "headers": headers, **scope}
    asyncio.run(mw(full, receive, send))
    return int(sent[0]["status"]) if sent[0]["type"] == "http.response.start" else 403


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    f = tmp_path / "api-key"
    f.write_text("s3cret-key-1\n")
    return f


def test_protected_paths_need_the_key(key_file: Path):
    app = _App()
    mw = ApiKeyMiddleware(app, key_file=str(key_file))
    for path in ("/v1/completions", "/v1/models", "/tokenize", "/pause", "/abort_requests", "/invocations", "/new"):
        assert _request(mw, path) == 401, path
        assert _request(mw, path, "wrong") == 401, path
        assert _request(mw, path, "s3cret-key-1") == 200, path
    assert app.calls == 7


def test_health_metrics_and_version_are_open(key_file: Path):
    mw = ApiKeyMiddleware(_App(), key_file=str(key_file))
    for path in sorted(OPEN_PATHS):
        assert _request(mw, path, method="GET") == 200
    # Only the exact paths: a prefix trick does not get through.
    assert _request(mw, "/metrics/../v1/completions") == 401
    assert _request(mw, "/healthz") == 401


def test_a_rotated_key_takes_effect_without_a_restart_and_lines_overlap(key_file: Path):
    mw = ApiKeyMiddleware(_App(), key_file=str(key_file))
    assert _request(mw, "/v1/completions", "s3cret-key-1") == 200
    # As the kubelet does for a Secret volume: a new file swapped in.
    new = key_file.with_name("next")
    new.write_text("s3cret-key-2\ns3cret-key-1\n")
    os.replace(new, key_file)
    assert _request(mw, "/v1/completions", "s3cret-key-2") == 200
    assert _request(mw, "/v1/completions", "s3cret-key-1") == 200
    new.write_text("s3cret-key-2\n")
    os.replace(new, key_file)
    assert _request(mw, "/v1/completions", "s3cret-key-1") == 401
    assert _request(mw, "/v1/completions", "s3cret-key-2") == 200


def test_no_key_file_or_an_empty_one_refuses_everything_protected(tmp_path: Path):
    mw = ApiKeyMiddleware(_App(), key_file=str(tmp_path / "missing"))
    assert _request(mw, "/v1/completions", "") == 401
    assert _request(mw, "/v1/completions", "anything") == 401
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert _request(ApiKeyMiddleware(_App(), key_file=str(empty)), "/v1/completions", "") == 401
    assert _request(mw, "/health", method="GET") == 200


def test_root_path_and_websockets(key_file: Path):
    mw = ApiKeyMiddleware(_App(), key_file=str(key_file))
    assert _request(mw, "/api/health", root_path="/api", method="GET") == 200
    assert _request(mw, "/api/v1/completions", root_path="/api") == 401
    closed: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        closed.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    asyncio.run(mw({"type": "websocket", "path": "/v1/realtime", "headers": []}, receive, send))
    assert closed == [{"type": "websocket.close", "code": 1008}]


def test_the_module_is_standard_library_only():
    """It runs inside the vLLM image, where this package is not installed."""
    import ast

    import eks_llm_stack.charts.api_key_auth as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "hmac", "json", "os", "typing"}
