"""Gate 3: every metric we query or export is one vLLM 0.29.0 / the DCGM exporter really has."""

from __future__ import annotations

import copy
import json

import pytest

from eks_llm_stack.gates.metrics_contract import (
    CsvError,
    check_exposition,
    check_platform,
    go_csv_records,
    platform_queries,
    promql_selectors,
    read_dcgm_counters,
    upstream_dcgm_counters,
    vllm_exposition,
)
from eks_llm_stack.monitoring.metrics import DCGM_FIELDS, DcgmField, dcgm_counters_csv

# -- the judge ------------------------------------------------------------------------------------


def test_exposition_names_follow_prometheus_client() -> None:
    exposed = vllm_exposition()
    assert "vllm:prompt_tokens_total" in exposed and "vllm:prompt_tokens" not in exposed
    assert {"vllm:e2e_request_latency_seconds_bucket", "vllm:e2e_request_latency_seconds_count"} <= set(exposed)
    assert "vllm:e2e_request_latency_seconds" not in exposed
    assert "vllm:kv_cache_usage_perc" in exposed
    # A counter already named *_total is not suffixed twice.
    assert "vllm:websocket_connections_total" in exposed and "vllm:websocket_connections_total_total" not in exposed
    # Older releases' names are not exported by 0.29.0.
    assert not {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds_bucket"} & set(exposed)


# -- PromQL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (namespace, model_name) (vllm:num_requests_waiting) > 10", {"vllm:num_requests_waiting"}),
        (
            "histogram_quantile(0.95, sum by (le) (rate(vllm:a_bucket[5m])) or sum by (le) (rate(vllm:b_bucket[5m])))",
            {"vllm:a_bucket", "vllm:b_bucket"},
        ),
        ('up{eks_llm_stack_component!=""} == 0', {"up"}),
        ('{__name__="vllm:x", job="j"} offset 5m', {"vllm:x"}),
        ("a / on (gpu) group_left (node) b unless c", {"a", "b", "c"}),
        (
            "sum by (p) (sum_over_time((count by (p) (DCGM_FI_DEV_GPU_TEMP))[$__range:1m])) / 60",
            {"DCGM_FI_DEV_GPU_TEMP"},
        ),
        ('label_values(vllm:num_requests_running{namespace=~"$namespace"}, model_name)', {"vllm:num_requests_running"}),
        ('max(x{a="by (y)"}) by (z) > bool 1e3', {"x"}),
    ],
)
def test_promql_selectors_finds_every_metric_and_nothing_else(expr: str, names: set[str]) -> None:
    assert promql_selectors(expr) == names


# -- the platform ---------------------------------------------------------------------------------


def test_every_metric_every_profile_uses_is_exported(any_synth) -> None:
    assert [p.render() for p in check_platform(any_synth.manifests, subject=f"{any_synth.profile.name}: ")] == []


def test_the_gate_reads_rules_dashboards_and_keda_triggers(production_synth) -> None:
    wheres = " ".join(q.where for q in platform_queries(production_synth.manifests))
    assert "PrometheusRule" in wheres and "ScaledObject" in wheres and "vllm-serving.json" in wheres


def _with(manifests: dict, kind: str, edit, where=lambda doc: True) -> dict:
    """A copy of ``manifests`` with ``edit`` applied to the first ``kind`` object ``where`` accepts."""
    bad = copy.deepcopy(manifests)
    for docs in bad.values():
        for doc in docs:
            if doc.get("kind") == kind and where(doc):
                edit(doc)
                return bad
    raise AssertionError(f"no {kind}")


def test_an_older_name_in_an_or_fallback_of_a_rule_fails(production_synth) -> None:
    def edit(doc):
        rule = doc["spec"]["groups"][0]["rules"][0]
        rule["expr"] = "max(vllm:kv_cache_usage_perc) or max(vllm:gpu_cache_usage_perc) > 0.9"

    problems = check_platform(_with(production_synth.manifests, "PrometheusRule", edit))
    assert any(
        p.field.endswith("vllm:gpu_cache_usage_perc") and "not exported by vLLM 0.29.0" in p.message for p in problems
    )
    assert all("metrics.json" in p.fix for p in problems if "vllm:" in p.field)


def test_a_counter_without_total_in_a_keda_trigger_fails(production_synth) -> None:
    def edit(doc):
        doc["spec"]["triggers"][0]["metadata"]["query"] = "sum(rate(vllm:prompt_tokens[1m]))"

    problems = check_platform(_with(production_synth.manifests, "ScaledObject", edit))
    assert [p.field.rsplit(": ", 1)[-1] for p in problems] == ["vllm:prompt_tokens"]
    assert "vllm:prompt_tokens_total" in problems[0].message


def test_a_dashboard_panel_with_an_unknown_dcgm_field_fails(production_synth) -> None:
    def gpu_dashboard(doc) -> bool:
        # A Grafana dashboard ConfigMap other than the vLLM one (not, e.g., the DCGM counters file),
        # whatever order the manifests come in.
        labels = doc.get("metadata", {}).get("labels", {})
        return labels.get("grafana_dashboard") == "1" and "vllm-serving.json" not in doc.get("data", {})

    def edit(doc):
        name, body = next(iter(doc["data"].items()))
        dash = json.loads(body)
        dash["panels"].append({"title": "t", "targets": [{"expr": "DCGM_FI_DEV_NOT_IN_FILE"}]})
        doc["data"][name] = json.dumps(dash)

    problems = check_platform(_with(production_synth.manifests, "ConfigMap", edit, where=gpu_dashboard))
    assert any("DCGM_FI_DEV_NOT_IN_FILE" in p.field for p in problems)


def test_a_vllm_name_in_a_prestop_script_is_checked(production_synth) -> None:
    def edit(doc):
        c = doc["spec"]["template"]["spec"]["containers"][0]
        c["lifecycle"]["preStop"]["exec"]["command"][-1] += "\n# reads vllm:num_requests_swapped\n"

    problems = check_platform(_with(production_synth.manifests, "Deployment", edit))
    assert [p.field.rsplit(": ", 1)[-1] for p in problems] == ["vllm:num_requests_swapped"]


# -- DCGM counters file ---------------------------------------------------------------------------


def test_go_csv_reader_follows_encoding_csv() -> None:
    # Comment lines (commas and all) and empty lines are skipped; spaces are kept.
    assert go_csv_records("# c, d, e\n\na, b ,c\r\n") == [(3, ["a", " b ", "c"])]
    # A quote inside an unquoted field (leading space kept: TrimLeadingSpace is false) is an error.
    with pytest.raises(CsvError, match='bare "'):
        go_csv_records('a, "b, c", d\n')
    assert go_csv_records('"x ""y""",z,w\n"multi\nline",b,c\n') == [
        (1, ['x "y"', "z", "w"]),
        (2, ["multi\nline", "b", "c"]),
    ]
    with pytest.raises(CsvError, match="extraneous"):
        go_csv_records('"x" y,z,w\n')
    with pytest.raises(CsvError, match="line 3: wrong number of fields"):
        go_csv_records("# comment, with, commas\na,b,c\nd,e,f,g\n")


def test_the_reader_accepts_dcgm_exporters_own_files() -> None:
    upstream = upstream_dcgm_counters()
    assert {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_PROF_PCIE_TX_BYTES"} <= set(upstream)


def test_the_shipped_counters_file_parses_as_the_exporter_reads_it() -> None:
    for profiling in (True, False):
        counters, problems = read_dcgm_counters(dcgm_counters_csv(profiling=profiling))
        assert problems == []
        assert len(counters) == len([f for f in DCGM_FIELDS if profiling or not f.profiling])


def test_a_comma_in_a_help_text_is_what_stopped_the_exporter() -> None:
    # The shipped file had four help texts like this one: 4 fields in a record, the exporter exits.
    bad = dcgm_counters_csv() + "DCGM_FI_PROF_PCIE_TX_BYTES, gauge, The rate over PCIe, in bytes per second.\n"
    _, problems = read_dcgm_counters(bad, where="counters.csv")
    assert problems and "wrong number of fields" in problems[0].message
    assert "no comma" in problems[0].fix
    with pytest.raises(ValueError, match="comma"):
        DcgmField(name="DCGM_FI_X", type="gauge", help="a, b")


def test_a_record_with_two_fields_is_refused() -> None:
    _, problems = read_dcgm_counters("DCGM_FI_DEV_GPU_TEMP, gauge\n")
    assert problems[0].message == "has 2 fields, the exporter needs exactly 3"


def test_our_fields_have_the_type_upstream_gives_them() -> None:
    upstream = upstream_dcgm_counters()
    mismatched = {
        f.name: (f.type, upstream[f.name].type)
        for f in DCGM_FIELDS
        if f.name in upstream and f.type != upstream[f.name].type
    }
    assert mismatched == {}


# -- the simulator --------------------------------------------------------------------------------


def test_an_exposition_with_an_old_name_a_wrong_type_or_missing_labels_fails() -> None:
    text = "\n".join(
        [
            "# TYPE vllm:gpu_cache_usage_perc gauge",
            'vllm:gpu_cache_usage_perc{model_name="m",engine="0"} 0.5',
            "# TYPE vllm:num_requests_waiting counter",
            'vllm:num_requests_waiting_total{model_name="m",engine="0"} 1',
            "# TYPE vllm:prompt_tokens_total counter",
            'vllm:prompt_tokens_total{model_name="m"} 3',
        ]
    )
    messages = [f"{p.field}: {p.message}" for p in check_exposition(text, where="x")]
    assert "x: vllm:gpu_cache_usage_perc: is not a metric family of vLLM 0.29.0" in messages
    assert "x: vllm:num_requests_waiting: is a counter, vLLM's is a gauge" in messages
    # prometheus_client names the family without _total.
    assert "x: vllm:prompt_tokens_total: is not a metric family of vLLM 0.29.0" in messages


def test_the_prestop_drain_counts_busy_requests_in_a_vllm_0_29_0_exposition() -> None:
    # Run the drain program against the simulator's exposition (vLLM's names and labels): it
    # must see 2 running + 3 waiting requests and keep waiting, then stop once both are 0.
    import ast
    import re

    from eks_llm_stack.bench.simulator import Simulator, SimulatorConfig
    from eks_llm_stack.charts.vllm import drain_script

    script = drain_script(budget=10)
    line = next(x for x in script.splitlines() if x.strip().startswith("pattern = "))
    pattern = ast.literal_eval(line.split("=", 1)[1].strip())
    sim = Simulator(SimulatorConfig(model="m", max_concurrency=4))
    sim.stats.running, sim.stats.waiting = 2, 3
    busy = sum(float(v) for v in re.findall(pattern, sim.render_metrics(), re.M))
    assert busy == 5
    sim.stats.running = sim.stats.waiting = 0
    assert sum(float(v) for v in re.findall(pattern, sim.render_metrics(), re.M)) == 0
    assert len(re.findall(pattern, sim.render_metrics(), re.M)) == 2
