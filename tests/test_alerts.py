"""The alert table through promtool: the rule file is valid, and every alert fires when it
should and stays quiet when it should not (``promtool test rules`` on synthetic series)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from eks_llm_stack.config.observability import AlertThresholds
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.monitoring import alerts, metrics

PROMTOOL = shutil.which("promtool")


def _promtool() -> str:
    if PROMTOOL is None:
        pytest.fail(
            "promtool is not installed: the alert gates need it. Install Debian's 'prometheus' package "
            "(apt-get install -y prometheus) or run the make target that does."
        )
    return PROMTOOL


@dataclass(frozen=True)
class Scenario:
    """Synthetic series, a time to evaluate at, and the alerts expected then (empty: quiet)."""

    what: str
    series: tuple[tuple[str, str], ...]
    eval_time: str
    fires: tuple[dict[str, str], ...] = ()


GPU = {"gpu": "0", "UUID": "GPU-0a1b", "modelName": "NVIDIA A10G", "node": "ip-10-0-1-10", "pool": "inference"}
MODEL = {"namespace": "serving", "model_name": "llama-3-8b"}


def sel(name: str, labels: dict[str, str], **extra: str) -> str:
    merged = {**labels, **extra}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in merged.items()) + "}"


def hist(name: str, fast: str, slow: str, *, le_fast: str, le_slow: str, labels: dict[str, str] = MODEL):
    """A histogram whose requests land in bucket ``le_fast`` (``fast`` values) or later ones."""
    return (
        (sel(f"{name}_bucket", labels, pod="p0", le=le_fast), fast),
        (sel(f"{name}_bucket", labels, pod="p0", le=le_slow), slow),
        (sel(f"{name}_bucket", labels, pod="p0", le="+Inf"), slow),
    )


CASES: dict[str, tuple[Scenario, ...]] = {
    "GpuTemperatureHigh": (
        Scenario("85 °C for 10 minutes", ((sel("DCGM_FI_DEV_GPU_TEMP", GPU), "85x15"),), "10m", (GPU,)),
        Scenario("75 °C", ((sel("DCGM_FI_DEV_GPU_TEMP", GPU), "75x15"),), "10m"),
        Scenario("85 °C for only 3 minutes", ((sel("DCGM_FI_DEV_GPU_TEMP", GPU), "70x7 85x5"),), "10m"),
    ),
    "GpuTemperatureCritical": (
        Scenario("95 °C", ((sel("DCGM_FI_DEV_GPU_TEMP", GPU), "95x10"),), "5m", (GPU,)),
        Scenario("85 °C is only a warning", ((sel("DCGM_FI_DEV_GPU_TEMP", GPU), "85x10"),), "5m"),
    ),
    "GpuUtilizationSaturated": (
        Scenario("99 % for 40 minutes", ((sel("DCGM_FI_DEV_GPU_UTIL", GPU), "99x45"),), "40m", (GPU,)),
        Scenario("99 % with a dip to 60 %", ((sel("DCGM_FI_DEV_GPU_UTIL", GPU), "99x20 60 99x24"),), "40m"),
        Scenario("90 %", ((sel("DCGM_FI_DEV_GPU_UTIL", GPU), "90x45"),), "40m"),
    ),
    "GpuFramebufferFull": (
        Scenario(
            "23 of 23.5 GiB used",
            ((sel("DCGM_FI_DEV_FB_USED", GPU), "23552x20"), (sel("DCGM_FI_DEV_FB_FREE", GPU), "500x20")),
            "15m",
            (GPU,),
        ),
        Scenario(
            "vLLM's usual 90 %",
            ((sel("DCGM_FI_DEV_FB_USED", GPU), "21600x20"), (sel("DCGM_FI_DEV_FB_FREE", GPU), "2400x20")),
            "15m",
        ),
    ),
    "GpuClockThrottled": (
        Scenario(
            "900 of 1710 MHz at 98 % busy",
            (
                (sel("DCGM_FI_DEV_SM_CLOCK", GPU), "900x20"),
                (sel("DCGM_FI_DEV_MAX_SM_CLOCK", GPU), "1710x20"),
                (sel("DCGM_FI_DEV_GPU_UTIL", GPU), "98x20"),
            ),
            "15m",
            (GPU,),
        ),
        Scenario(
            "900 MHz while idle (clocks drop when idle)",
            (
                (sel("DCGM_FI_DEV_SM_CLOCK", GPU), "900x20"),
                (sel("DCGM_FI_DEV_MAX_SM_CLOCK", GPU), "1710x20"),
                (sel("DCGM_FI_DEV_GPU_UTIL", GPU), "5x20"),
            ),
            "15m",
        ),
        Scenario(
            "1600 MHz at 98 % busy",
            (
                (sel("DCGM_FI_DEV_SM_CLOCK", GPU), "1600x20"),
                (sel("DCGM_FI_DEV_MAX_SM_CLOCK", GPU), "1710x20"),
                (sel("DCGM_FI_DEV_GPU_UTIL", GPU), "98x20"),
            ),
            "15m",
        ),
    ),
    "GpuPowerNearLimit": (
        Scenario(
            "298 of 300 W",
            ((sel("DCGM_FI_DEV_POWER_USAGE", GPU), "298x25"), (sel("DCGM_FI_DEV_POWER_MGMT_LIMIT", GPU), "300x25")),
            "20m",
            (GPU,),
        ),
        Scenario(
            "200 of 300 W",
            ((sel("DCGM_FI_DEV_POWER_USAGE", GPU), "200x25"), (sel("DCGM_FI_DEV_POWER_MGMT_LIMIT", GPU), "300x25")),
            "20m",
        ),
    ),
    "GpuXidError": (
        Scenario("XID 79 appears", ((sel("DCGM_FI_DEV_XID_ERRORS", GPU), "0x5 79x5"),), "7m", (GPU,)),
        Scenario("no XID", ((sel("DCGM_FI_DEV_XID_ERRORS", GPU), "0x10"),), "7m"),
        Scenario("an old XID, unchanged for 20 minutes", ((sel("DCGM_FI_DEV_XID_ERRORS", GPU), "79x30"),), "25m"),
    ),
    "VllmKvCacheFull": (
        Scenario(
            "kv_cache_usage_perc 0.97", ((sel("vllm:kv_cache_usage_perc", MODEL, pod="p0"), "0.97x10"),), "8m", (MODEL,)
        ),
        Scenario("kv_cache_usage_perc 0.5", ((sel("vllm:kv_cache_usage_perc", MODEL, pod="p0"), "0.5x10"),), "8m"),
        Scenario(
            "an older release's name is not read (vLLM 0.29.0 does not export it)",
            (
                (sel("vllm:kv_cache_usage_perc", MODEL, pod="p0"), "0.5x10"),
                (sel("vllm:gpu_cache_usage_perc", MODEL, pod="p0"), "0.97x10"),
            ),
            "8m",
        ),
    ),
    "VllmRequestsQueued": (
        Scenario(
            "two replicas with 8 waiting each",
            (
                (sel("vllm:num_requests_waiting", MODEL, pod="p0"), "8x10"),
                (sel("vllm:num_requests_waiting", MODEL, pod="p1"), "8x10"),
            ),
            "8m",
            (MODEL,),
        ),
        Scenario("3 waiting", ((sel("vllm:num_requests_waiting", MODEL, pod="p0"), "3x10"),), "8m"),
    ),
    "VllmTimeToFirstTokenHigh": (
        Scenario(
            "every request between 0.5 and 1 s",
            hist("vllm:time_to_first_token_seconds", "0x20", "0+10x20", le_fast="0.5", le_slow="1"),
            "15m",
            (MODEL,),
        ),
        Scenario(
            "every request under 250 ms",
            hist("vllm:time_to_first_token_seconds", "0+10x20", "0+10x20", le_fast="0.25", le_slow="1"),
            "15m",
        ),
    ),
    "VllmInterTokenLatencyHigh": (
        Scenario(
            "tokens 50-100 ms apart",
            hist("vllm:inter_token_latency_seconds", "0x20", "0+100x20", le_fast="0.05", le_slow="0.1"),
            "15m",
            (MODEL,),
        ),
        Scenario(
            "tokens under 25 ms apart",
            hist("vllm:inter_token_latency_seconds", "0+100x20", "0+100x20", le_fast="0.025", le_slow="0.1"),
            "15m",
        ),
    ),
    "VllmPreemptions": (
        Scenario(
            "a preemption a minute", ((sel("vllm:num_preemptions_total", MODEL, pod="p0"), "0+1x20"),), "15m", (MODEL,)
        ),
        Scenario("no preemptions", ((sel("vllm:num_preemptions_total", MODEL, pod="p0"), "4x20"),), "15m"),
    ),
    "ScrapeTargetDown": (
        Scenario(
            "a DCGM exporter down",
            (
                (
                    sel("up", {metrics.COMPONENT_LABEL: "dcgm-exporter", "namespace": "monitoring", "pod": "dcgm-x"}),
                    "0x10",
                ),
            ),
            "8m",
            ({metrics.COMPONENT_LABEL: "dcgm-exporter", "namespace": "monitoring", "pod": "dcgm-x"},),
        ),
        Scenario(
            "our target up, someone else's down",
            (
                (sel("up", {metrics.COMPONENT_LABEL: "vllm", "namespace": "serving", "pod": "p0"}), "1x10"),
                (sel("up", {"job": "other", "namespace": "default", "pod": "x"}), "0x10"),
            ),
            "8m",
        ),
    ),
}

RULES = {r.name: r for r in alerts.alert_rules()}
_LABEL_REF = re.compile(r"\{\{ \$labels\.([A-Za-z_][A-Za-z0-9_]*) \}\}")


def expected_annotations(rule: alerts.AlertRule, labels: dict[str, str]) -> dict[str, str]:
    """The annotations Prometheus renders: ``{{ $labels.x }}`` replaced (missing labels are empty)."""
    out = {}
    for key, text in rule.to_rule()["annotations"].items():
        out[key] = _LABEL_REF.sub(lambda mt: labels.get(mt.group(1), ""), text)
    return out


def promtool_tests(rule: alerts.AlertRule, scenarios: tuple[Scenario, ...]) -> dict:
    tests = []
    for sc in scenarios:
        exp = [
            {
                "exp_labels": {**labels, "severity": rule.severity},
                "exp_annotations": expected_annotations(rule, labels),
            }
            for labels in sc.fires
        ]
        tests.append(
            {
                "name": f"{rule.name}: {sc.what}",
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in sc.series],
                "alert_rule_test": [{"eval_time": sc.eval_time, "alertname": rule.name, "exp_alerts": exp}],
            }
        )
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}


def run_promtool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def write_rules(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(alerts.rule_file() if text is None else text)
    return path


def test_promtool_check_rules_passes(tmp_path):
    write_rules(tmp_path)
    result = run_promtool(tmp_path, "check", "rules", "rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in result.stdout


def test_promtool_check_rules_rejects_a_broken_expression(tmp_path):
    broken = alerts.AlertRule(
        name="Broken",
        group="gpu",
        expr="rate(DCGM_FI_DEV_GPU_TEMP[5m]",
        for_="1m",
        severity="info",
        summary="s",
        description="d",
        runbook="r",
    )
    write_rules(tmp_path, alerts.rule_file([broken]))
    result = run_promtool(tmp_path, "check", "rules", "rules.yaml")
    assert result.returncode != 0


def test_every_alert_has_a_firing_and_a_quiet_case():
    missing = {
        name: [
            kind
            for kind, ok in (
                ("firing", any(s.fires for s in CASES.get(name, ()))),
                ("quiet", any(not s.fires for s in CASES.get(name, ()))),
            )
            if not ok
        ]
        for name in RULES
    }
    assert {k: v for k, v in missing.items() if v} == {}
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_promtool_unit_tests(tmp_path, name):
    write_rules(tmp_path)
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(promtool_tests(RULES[name], CASES[name]), sort_keys=False))
    result = run_promtool(tmp_path, "test", "rules", "tests.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_test_fails_on_a_wrong_expectation(tmp_path):
    """The harness can fail: expecting GpuTemperatureHigh at 75 °C is reported by promtool."""
    wrong = (
        Scenario("75 °C, wrongly expected to fire", ((sel("DCGM_FI_DEV_GPU_TEMP", GPU), "75x15"),), "10m", (GPU,)),
    )
    write_rules(tmp_path)
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(promtool_tests(RULES["GpuTemperatureHigh"], wrong)))
    result = run_promtool(tmp_path, "test", "rules", "tests.yaml")
    assert result.returncode != 0


def test_every_rule_has_for_severity_summary_and_runbook():
    for group in alerts.rule_groups():
        for rule in group["rules"]:
            assert rule["for"] and rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]


def test_rules_only_name_exported_metrics():
    known = metrics.known_series(include_prometheus=True)
    unknown = {name: names - known for name, names in alerts.rule_metric_names().items() if names - known}
    assert unknown == {}


def test_kv_cache_runbook_lists_the_remedies():
    runbook = RULES["VllmKvCacheFull"].runbook
    for remedy in ("--max-num-seqs", "--max-model-len", "chunked prefill", "replicas", "more memory"):
        assert remedy in runbook


def test_thresholds_come_from_the_profile():
    rules = {r.name: r for r in alerts.alert_rules(AlertThresholds(ttft_p95_seconds=0.8, requests_waiting=25))}
    assert rules["VllmTimeToFirstTokenHigh"].expr.endswith("> 0.8")
    assert "800 ms" in rules["VllmTimeToFirstTokenHigh"].summary
    assert rules["VllmRequestsQueued"].expr.endswith("> 25")


def test_warning_temperature_must_be_below_critical():
    from eks_llm_stack.config import validate_model

    with pytest.raises(
        ConfigError,
        match=r"(?s)warning temperature \(95\.0\) must be below the critical one \(90\.0\).*"
        r"fix: lower alerts\.gpu_temperature_warning_celsius",
    ):
        validate_model(AlertThresholds, {"gpu_temperature_warning_celsius": 95}, "alerts")


def test_every_alert_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "observability.md").read_text()
    assert [name for name in RULES if f"`{name}`" not in doc] == []
