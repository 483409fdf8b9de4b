"""Gate 5: a real Prometheus scrapes the simulator and evaluates the rules the charts deploy.

Debian's ``prometheus`` binary (``make test`` installs it) runs on loopback with a temporary config
and data directory. It scrapes one simulator per model of the shipped KEDA triggers (calm: light
load) and one more model pushed past the alert thresholds (hot: more requests than its slots), with
the labels our PodMonitor gives vLLM targets. The rules are the PrometheusRule the monitoring chart
deploys, with one rewrite so the test takes seconds: every ``for:`` becomes 1 s and rules are
evaluated every second. DCGM panels are not queried: there is no GPU here (docs/conformance.md).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import profile_names, synthesized

from eks_llm_stack.gates.metrics_contract import dashboard_queries

pytestmark = pytest.mark.slow

NAMESPACE = "llm-serving"
HOT = "hot-model"
HOT_SLOTS = 2
HOT_REQUESTS = 16  # 2 running (KV cache 100 %), 14 waiting (> 10)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _wait(predicate, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _keda_queries() -> list[tuple[str, str]]:
    out = []
    for profile in profile_names():
        for chart, docs in synthesized(profile).manifests.items():
            for d in docs:
                if d.get("kind") == "ScaledObject":
                    out += [(f"{profile}/{chart}/{t['name']}", t["metadata"]["query"]) for t in d["spec"]["triggers"]]
    return out


def _deployed(kind: str, name: str) -> dict[str, Any]:
    docs = synthesized("production.example").manifests
    return next(d for ds in docs.values() for d in ds if d.get("kind") == kind and d["metadata"]["name"] == name)


def _fast_rules(spec: dict[str, Any]) -> dict[str, Any]:
    """The deployed groups with every ``for:`` at 1 s and a 1-second evaluation interval."""
    groups = json.loads(json.dumps(spec["groups"]))
    for g in groups:
        g["interval"] = "1s"
        for r in g["rules"]:
            if "alert" in r:
                r["for"] = "1s"
    return {"groups": groups}


def _models_of(queries: list[tuple[str, str]]) -> set[str]:
    import re

    return {m for _, q in queries for m in re.findall(r'model_name="([^"]+)"', q)}


class _Load:
    """Streams requests at a simulator from background threads until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _one(self, url: str, model: str, max_tokens: int) -> None:
        body = json.dumps({"model": model, "prompt": "hello world", "max_tokens": max_tokens, "stream": True}).encode()
        req = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            while not self.stop.is_set() and r.read(256):
                pass

    def loop(self, url: str, model: str, max_tokens: int, n: int = 1) -> None:
        def run() -> None:
            while not self.stop.is_set():
                try:
                    self._one(url, model, max_tokens)
                except Exception:  # the simulator went away at the end of the module, or a reset
                    time.sleep(0.1)

        for _ in range(n):
            t = threading.Thread(target=run, daemon=True)
            t.start()
            self.threads.append(t)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[dict[str, Any]]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("the prometheus binary is missing: `make test` installs Debian's prometheus package")
    cli = shutil.which("eks-llm-stack", path=str(Path(sys.executable).parent)) or shutil.which("eks-llm-stack")
    assert cli, "the eks-llm-stack command is not installed"
    keda = _keda_queries()
    calm = sorted(_models_of(keda))
    work = Path(tempfile.mkdtemp(prefix="prom-gate-"))
    procs: list[subprocess.Popen[bytes]] = []
    load = _Load()
    try:
        sims: dict[str, str] = {}
        for model, slots in [*((m, 8) for m in calm), (HOT, HOT_SLOTS)]:
            port = _port()
            procs.append(
                subprocess.Popen(
                    [
                        *(cli, "simulate", "--host", "127.0.0.1", "--port", str(port), "--model", model),
                        *("--max-concurrency", str(slots), "--ttft-ms", "20", "--itl-ms", "20"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            sims[model] = f"http://127.0.0.1:{port}"
        rules = _deployed("PrometheusRule", "eks-llm-stack-alerts")["spec"]
        (work / "rules.yml").write_text(yaml.safe_dump(_fast_rules(rules), sort_keys=False))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(work / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": "vllm",
                    "static_configs": [
                        # The labels the vLLM PodMonitor puts on a target.
                        {
                            "targets": [url.removeprefix("http://")],
                            "labels": {"namespace": NAMESPACE, "pod": f"{m}-0", "eks_llm_stack_component": "vllm"},
                        }
                        for m, url in sims.items()
                    ],
                }
            ],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = _port()
        procs.append(
            subprocess.Popen(
                [
                    *(binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}"),
                    *(f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(work / "prometheus.log").open("wb"),
            )
        )
        api = f"http://127.0.0.1:{port}/api/v1"
        for url in sims.values():
            _wait(lambda url=url: urllib.request.urlopen(url + "/health", timeout=1).status == 200, 20, url)
        _wait(lambda: _get(api + "/status/runtimeinfo")["status"] == "success", 20, "prometheus")
        # Calm: one short request at a time (histograms and counters move, nothing queues).
        for m in calm:
            load.loop(sims[m], m, max_tokens=8)
        # Hot: more long requests than slots, so the KV cache is full and the queue long.
        load.loop(sims[HOT], HOT, max_tokens=100_000, n=HOT_REQUESTS)
        yield {"api": api, "calm": calm, "keda": keda, "work": work}
    finally:
        load.stop.set()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def _query(api: str, expr: str) -> list[dict[str, Any]]:
    out = _get(api + "/query?" + urllib.parse.urlencode({"query": expr}))
    assert out["status"] == "success", out
    return list(out["data"]["result"])


def _alerts(api: str) -> list[dict[str, Any]]:
    return list(_get(api + "/alerts")["data"]["alerts"])


def _firing(api: str, model: str) -> set[str]:
    return {
        a["labels"]["alertname"]
        for a in _alerts(api)
        if a["state"] == "firing" and a["labels"].get("model_name") == model
    }


def test_queue_and_kv_cache_alerts_fire_for_the_pushed_model(prometheus) -> None:
    api = prometheus["api"]
    fired = _wait(lambda: {"VllmKvCacheFull", "VllmRequestsQueued"} <= _firing(api, HOT), 45, "the hot model's alerts")
    assert fired


def test_the_lightly_loaded_models_stay_quiet(prometheus) -> None:
    api = prometheus["api"]
    _wait(lambda: _firing(api, HOT), 45, "the rules to be evaluated")
    time.sleep(3)  # several evaluations with data for the calm models too
    noisy = [
        (a["labels"]["alertname"], a["labels"].get("model_name"), a["state"])
        for a in _alerts(api)
        if a["labels"].get("model_name") in prometheus["calm"]
    ]
    assert noisy == []
    assert {a["labels"]["alertname"] for a in _alerts(api)} <= {
        "VllmKvCacheFull",
        "VllmRequestsQueued",
        "VllmTimeToFirstTokenHigh",  # the hot model's queued requests wait for their first token
    }


def test_every_keda_query_returns_data(prometheus) -> None:
    api = prometheus["api"]
    assert prometheus["keda"]
    _wait(lambda: all(_query(api, q) for _, q in prometheus["keda"]), 30, "every KEDA query")
    for where, q in prometheus["keda"]:
        assert _query(api, q), where


def _dashboard_exprs() -> list[tuple[str, str]]:
    cm = _deployed("ConfigMap", "dashboard-vllm-serving")
    dashboard = json.loads(next(iter(cm["data"].values())))
    out = []
    for where, expr in dashboard_queries(dashboard):
        expr = expr.replace("$namespace", NAMESPACE).replace("$model", ".*")
        expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1m")
        if expr.startswith("label_values("):  # a Grafana variable: its selector must return data
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        out.append((where, expr))
    return out


def test_every_vllm_dashboard_panel_returns_data(prometheus) -> None:
    api = prometheus["api"]
    exprs = _dashboard_exprs()
    assert len(exprs) >= 10
    _wait(lambda: all(_query(api, e) for _, e in exprs), 30, "every vLLM panel")
    assert [where for where, e in exprs if not _query(api, e)] == []
