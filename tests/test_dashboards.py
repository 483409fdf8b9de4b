"""Dashboards as code: every query names only metrics DCGM or vLLM export, and parses as PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from eks_llm_stack.monitoring import dashboards, metrics

DASHBOARDS = dashboards.all_dashboards()


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_names_only_exported_metrics(name):
    assert dashboards.unknown_metrics(DASHBOARDS[name]) == []


def test_a_query_naming_an_unknown_metric_is_reported():
    dash = dashboards.gpu_fleet_dashboard()
    dash["panels"].append(dashboards.timeseries("typo", ("rate(DCGM_FI_DEV_GPU_UTILL[5m])", "x")))
    assert dashboards.unknown_metrics(dash) == [
        "GPU fleet: panel 'typo' (A): 'DCGM_FI_DEV_GPU_UTILL' is exported by neither DCGM nor vLLM"
    ]


def test_a_variable_query_naming_an_unknown_metric_is_reported():
    dash = dashboards.vllm_dashboard()
    dash["templating"]["list"].append(dashboards._query_var("x", "X", "label_values(vllm:num_requests, model_name)"))
    assert any("'vllm:num_requests'" in p for p in dashboards.unknown_metrics(dash))


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (namespace, le) (rate(vllm:ttft_bucket{model_name=~"$model"}[5m]))', {"vllm:ttft_bucket"}),
        ("a / on (gpu) group_left(pod) b > 0.5 and c offset 1h", {"a", "b", "c"}),
        ('label_values(DCGM_FI_DEV_GPU_TEMP{pool=~"$pool"}, node)', {"DCGM_FI_DEV_GPU_TEMP"}),
        ("sum_over_time((count by (pool) (x))[$__range:1m]) / 60 * 1e6", {"x"}),
    ],
)
def test_metric_names_are_found_in_promql(expr, names):
    assert metrics.promql_metric_names(expr) == names


def test_required_gpu_panels_are_present():
    titles = {p["title"] for p in DASHBOARDS["gpu-fleet.json"]["panels"]}
    for wanted in (
        "Utilisation",
        "Framebuffer memory used",
        "Temperature",
        "Power draw and limit",
        "SM clock (share of maximum)",
        "XID errors (last code)",
    ):
        assert wanted in titles


def test_required_vllm_panels_are_present():
    titles = {p["title"] for p in DASHBOARDS["vllm-serving.json"]["panels"]}
    for wanted in (
        "Requests per second",
        "Time to first token",
        "Inter-token latency",
        "Tokens per second",
        "KV cache usage",
        "Queue depth and running requests",
        "Preemptions per second",
    ):
        assert wanted in titles


def test_cost_dashboard_groups_gpu_hours_by_pool_and_capacity_type():
    panel = next(
        p for p in DASHBOARDS["gpu-cost.json"]["panels"] if p["title"] == "GPU-hours by pool and capacity type"
    )
    expr = panel["targets"][0]["expr"]
    assert expr.startswith(f"sum by ({metrics.POOL_LABEL}, {metrics.CAPACITY_TYPE_LABEL})")
    assert "[$__range:1m]" in expr and expr.endswith("/ 60")


def test_kv_cache_panel_reads_the_pinned_releases_metric_only():
    panel = next(p for p in DASHBOARDS["vllm-serving.json"]["panels"] if p["title"] == "KV cache usage")
    expr = panel["targets"][0]["expr"]
    assert "vllm:kv_cache_usage_perc" in expr and " or " not in expr


def test_panels_do_not_overlap():
    for name, dash in DASHBOARDS.items():
        cells: dict[tuple[int, int], str] = {}
        for p in dash["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, (name, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: '{p['title']}' overlaps '{cells[(x, y)]}'"
                    cells[(x, y)] = p["title"]


def test_panel_ids_and_uids_are_unique():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    for dash in DASHBOARDS.values():
        ids = [p["id"] for p in dash["panels"]]
        assert len(set(ids)) == len(ids)


def test_write_dashboards_writes_importable_json(tmp_path):
    paths = dashboards.write_dashboards(tmp_path / "dist" / "dashboards")
    assert sorted(p.name for p in paths) == sorted(DASHBOARDS)
    loaded = json.loads(paths[0].read_text())
    assert loaded == json.loads(json.dumps(DASHBOARDS[paths[0].name]))
    assert loaded["schemaVersion"] == dashboards.SCHEMA_VERSION


def _as_promql(expr: str) -> str:
    """Grafana variables replaced by values PromQL accepts."""
    expr = expr.replace("$__range", "1h")
    return re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", expr)


def test_every_panel_query_parses_with_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install -y prometheus (or run the make target that does)")
    rules = []
    for dash in DASHBOARDS.values():
        for where, expr in dashboards.dashboard_queries(dash):
            if where.startswith("variable"):
                continue  # label_values() is Grafana's, not PromQL
            rules.append({"record": f"dashboard:query:{len(rules)}", "expr": _as_promql(expr)})
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", "queries.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_every_dashboard_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "observability.md").read_text()
    assert [n for n, d in DASHBOARDS.items() if f"**{d['title']}** (`{n}`)" not in doc] == []
