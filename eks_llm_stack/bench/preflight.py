"""One request before any load: a mistake in the URL, the model name or the key stops the run.

Without it a wrong model name or a missing API key shows up as a 100 % error rate after the
whole sweep, and a base URL ending in ``/v1`` as ``/v1/v1/completions`` 404s. The preflight
asks ``GET /v1/models`` (which names the served models) and sends one streaming request of two
tokens; every problem comes back as a :class:`~eks_llm_stack.errors.ConfigError` naming the
option, what the server said and the fix. The request is not part of any level's figures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..errors import ConfigError, Problem
from .harness import Target, build_body, send_request
from .records import RequestRecord

SUBJECT = "bench run (preflight)"
_TRANSIENT = ("http_5xx", "disconnect", "malformed_sse", "timeout", "incomplete")


@dataclass(frozen=True, kw_only=True)
class ServerInfo:
    """What the preflight learnt about the server (goes into summary.json's ``server``)."""

    models: tuple[str, ...]
    """Model ids of ``/v1/models`` (empty when the server has no such endpoint)."""
    max_model_len: int | None
    """``max_model_len`` of the served model, when the server says (vLLM does)."""
    server_header: str | None
    """The ``Server`` response header (e.g. ``uvicorn`` for vLLM, ``Python/3.x aiohttp`` for the simulator)."""
    version: str | None
    """The server's version from ``GET /version`` (vLLM), when exposed."""
    ttft_ms: float | None
    """TTFT of the preflight request, a first sign of the latency to expect."""


def _fail(field: str, message: str, fix: str, value: object = None) -> ConfigError:
    return ConfigError(SUBJECT, [Problem(field, message, fix, value)])


def check_url(url: str) -> None:
    """A base URL must not carry the API path the harness appends."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith(("/v1", "/v1/completions", "/v1/chat/completions")):
        base = url[: url.rstrip("/").rfind("/v1")] or url
        raise _fail(
            "--url",
            "ends in the API path; the harness appends /v1/completions or /v1/chat/completions itself",
            f"pass the base URL, e.g. --url {base}",
            url,
        )


async def preflight(target: Target, *, timeout_s: float = 30.0) -> ServerInfo:
    """Check that ``target`` serves ``target.model`` with streaming; raise a ConfigError if not."""
    check_url(target.url)
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    base = target.url.rstrip("/")
    auth_fix = "pass the server's key with --api-key-env VAR (a variable holding it)"
    models: tuple[str, ...] = ()
    max_len: int | None = None
    server_header: str | None = None
    version: str | None = None
    timeout = aiohttp.ClientTimeout(total=min(timeout_s, target.timeout_s))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.get(f"{base}/v1/models", headers=headers) as resp:
                server_header = resp.headers.get("Server")
                body = await resp.text()
                if resp.status in (401, 403):
                    raise _fail(
                        "--api-key-env",
                        f"the server refused the request (HTTP {resp.status}: {body[:200]})",
                        auth_fix if not target.api_key else "check the key: the server did not accept it",
                        "set" if target.api_key else "not set",
                    )
                if resp.status == 200:
                    try:
                        rows = json.loads(body).get("data") or []
                        models = tuple(str(r.get("id")) for r in rows if isinstance(r, dict))
                        max_len = next(
                            (
                                r.get("max_model_len")
                                for r in rows
                                if isinstance(r, dict) and r.get("id") == target.model
                            ),
                            None,
                        )
                    except (ValueError, AttributeError):
                        models = ()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _fail(
                "--url",
                f"the server cannot be reached ({type(exc).__name__}: {str(exc)[:200] or 'no detail'})",
                "check the host and port (is the server up? a port-forward running?)",
                target.url,
            ) from None
        if models and target.model not in models:
            raise _fail(
                "--model",
                f"is not served here; the server serves {', '.join(models)}",
                f"pass --model {models[0]}" if len(models) == 1 else "pass one of the served names",
                target.model,
            )
        try:
            async with session.get(f"{base}/version", headers=headers) as resp:
                if resp.status == 200:
                    version = str((await resp.json(content_type=None)).get("version")) or None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, AttributeError):
            version = None

    probe = Target(
        url=target.url,
        model=target.model,
        api=target.api,
        timeout_s=min(timeout_s, target.timeout_s),
        ignore_eos=target.ignore_eos,
        api_key=target.api_key,
    )
    # A server that fails now and then (a 5xx, a cut stream) is for the run to measure, not a
    # reason to refuse it: up to three tries, and only a failure of all of them stops the run.
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            record = RequestRecord(index=-1, level=-1, scheduled_ns=time.perf_counter_ns(), sent_ns=0)
            await send_request(session, probe, build_body(probe, "Say hello.", 2), record, content_types=True)
            if record.error not in _TRANSIENT:
                break
    detail = record.error_detail or ""
    if record.status in (401, 403):
        raise _fail(
            "--api-key-env",
            f"the server refused the request ({detail[:200]})",
            auth_fix if not target.api_key else "check the key: the server did not accept it",
            "set" if target.api_key else "not set",
        )
    if record.status == 404:
        fix = (
            "pass --api chat or --api completions, whichever the server offers"
            if "model" not in detail.lower()
            else "pass the served model name with --model (GET /v1/models lists them)"
        )
        raise _fail("--model / --api", f"the request was refused ({detail[:200]})", fix, target.model)
    if record.error == "not_streaming":
        raise _fail(
            "--url",
            f"the server did not stream its answer ({detail}); the harness measures streamed tokens",
            "point --url at an OpenAI-compatible server that supports stream=true (vLLM does)",
            target.url,
        )
    if record.error is not None:
        raise _fail(
            "--url",
            f"the preflight request failed: {record.error} ({detail[:200]})",
            "fix the server or the options, then run again (--no-preflight skips this check)",
            target.url,
        )
    if not record.chunk_ns:
        raise _fail(
            "--url",
            "the preflight request streamed no token",
            "check that the server generates for this model (max_tokens=2)",
            target.url,
        )
    return ServerInfo(
        models=models, max_model_len=max_len, server_header=server_header, version=version, ttft_ms=record.ttft_ms
    )


_PREFIX_NAMES = (
    ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"),
    ("vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_queries_total"),
)


def parse_prefix_cache(text: str) -> dict[str, float] | None:
    """Prefix-cache hits and queries (tokens, summed over label sets) from a Prometheus exposition."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        sums[name] = sums.get(name, 0.0) + value
    for hits, queries in _PREFIX_NAMES:
        if hits in sums and queries in sums:
            return {"hits": sums[hits], "queries": sums[queries]}
    return None


async def prefix_cache_counters(target: Target, timeout_s: float = 10.0) -> dict[str, float] | None:
    """The server's prefix-cache counters from ``/metrics``, or None when it exposes none."""
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(target.url.rstrip("/") + "/metrics", headers=headers) as resp,
        ):
            if resp.status != 200:
                return None
            return parse_prefix_cache(await resp.text())
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


def prefix_cache_report(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any]:
    """Counters before and after the run, and the hit rate of the run's own prompts."""
    rate = None
    if before and after and after["queries"] > before["queries"]:
        rate = (after["hits"] - before["hits"]) / (after["queries"] - before["queries"])
    return {"before": before, "after": after, "hit_rate_during_run": rate}
