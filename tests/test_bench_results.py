"""Results on disk, plots, and the bench/simulate commands end to end against a live simulator."""

from __future__ import annotations

import asyncio
import csv
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from eks_llm_stack.bench import plots
from eks_llm_stack.bench.metrics import Slo, find_knee, summarize_level
from eks_llm_stack.bench.records import RequestRecord
from eks_llm_stack.bench.simulator import SimulatorConfig, running
from eks_llm_stack.cli import main
from eks_llm_stack.cli.bench import upload_results

MODEL = "simulated-model"
LEVEL_KEYS = {
    "concurrency", "rate", "ttft_ms", "itl_ms", "e2e_ms", "output_tokens_per_s", "requests_per_s", "completed",
    "errors", "cost_per_1m_tokens_usd",
}  # fmt: skip
STATS = {"p50", "p90", "p95", "p99", "mean", "stdev"}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """A simulator on its own event loop in a thread, so the CLI's asyncio.run can talk to it."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    url: list[str] = []
    stop = asyncio.Event()

    async def serve() -> None:
        async with running(SimulatorConfig(ttft_ms=10, itl_ms=1, max_concurrency=4)) as (_, u):
            url.append(u)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield url[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


@pytest.fixture(scope="module")
def run_dir(sim_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    code = main([
        "bench", "run", "--url", sim_url, "--model", MODEL, "--concurrency", "1,2,4,8", "--requests", "8",
        "--output-tokens", "8", "--prompt-tokens", "uniform:4:16", "--hourly-usd", "1.21", "--out", str(out),
        "--no-progress",
    ])  # fmt: skip
    assert code == 0
    return out


def test_summary_has_one_entry_per_level_with_the_documented_keys(run_dir: Path) -> None:
    doc = json.loads((run_dir / "summary.json").read_text())
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 2, 4, 8]
    assert all(set(lv) >= LEVEL_KEYS for lv in doc["levels"])


def test_summary_latencies_carry_every_statistic(run_dir: Path) -> None:
    lv = json.loads((run_dir / "summary.json").read_text())["levels"][0]
    assert all(set(lv[k]) >= STATS for k in ("ttft_ms", "itl_ms", "e2e_ms"))


def test_summary_defines_every_level_metric_with_a_unit(run_dir: Path) -> None:
    doc = json.loads((run_dir / "summary.json").read_text())
    assert all({"unit", "definition"} <= set(doc["definitions"][k]) for k in LEVEL_KEYS - {"concurrency", "rate"})


def test_summary_costs_tokens_at_the_given_price(run_dir: Path) -> None:
    lv = json.loads((run_dir / "summary.json").read_text())["levels"][0]
    assert lv["cost_per_1m_tokens_usd"] == pytest.approx(1.21 / (lv["output_tokens_per_s"] * 3600) * 1e6)


def test_requests_jsonl_has_every_request_with_timestamps(run_dir: Path) -> None:
    rows = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(rows) == 32
    assert all(r["output_tokens"] == 8 and len(r["chunk_ms"]) == 8 and r["status"] == 200 for r in rows)


def test_requests_jsonl_rebuilds_the_same_ttft(run_dir: Path) -> None:
    row = json.loads((run_dir / "requests.jsonl").read_text().splitlines()[0])
    assert RequestRecord.from_json(row).ttft_ms == pytest.approx(row["ttft_ms"], abs=1e-6)


def test_summary_csv_has_a_row_per_level(run_dir: Path) -> None:
    rows = list(csv.DictReader((run_dir / "summary.csv").open()))
    assert [r["concurrency"] for r in rows] == ["1", "2", "4", "8"]
    assert float(rows[0]["ttft_ms_p50"]) >= 10.0


def test_run_writes_the_five_plots_and_the_report(run_dir: Path) -> None:
    assert {p.name for p in run_dir.glob("*.png")} == {
        plots.THROUGHPUT, plots.PERCENTILES, plots.LATENCY_THROUGHPUT, plots.GOODPUT, plots.COST,
    }  # fmt: skip
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 5


def test_report_compares_two_runs(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "report", str(run_dir), str(run_dir), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "comparison" in out and "+0.0%" in out
    assert (tmp_path / plots.THROUGHPUT).exists()


def test_report_on_a_directory_without_results_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "report", str(tmp_path)]) == 2
    assert "has no summary.json" in capsys.readouterr().err


def test_bad_run_options_are_reported_together(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "run", "--url", "ftp://x", "--model", "m", "--concurrency", "0,a", "--output-tokens",
                 "uniform:9:3", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "--url: must be an http" in err and "--concurrency: must be positive" in err
    assert "--output-tokens: needs positive integers" in err and "fix:" in err


def test_open_loop_needs_a_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", "--rate", "5"]) == 2
    assert "--rate: an open loop needs a bound" in capsys.readouterr().err


def test_instance_price_comes_from_the_catalog(sim_url: str, tmp_path: Path) -> None:
    catalog = pytest.importorskip("eks_llm_stack.catalog", reason="the instance catalog is not installed")
    code = main(["bench", "run", "--url", sim_url, "--model", MODEL, "--concurrency", "1", "--requests", "2",
                 "--output-tokens", "4", "--instance", "g5.2xlarge", "--out", str(tmp_path), "--no-progress",
                 "--no-plots"])  # fmt: skip
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert code == 0
    assert doc["price"]["hourly_usd"] == catalog.get_instance("g5.2xlarge").on_demand_usd


def test_unknown_instance_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("eks_llm_stack.catalog", reason="the instance catalog is not installed")
    code = main(["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m", "--concurrency", "1",
                 "--instance", "g5.huge"])  # fmt: skip
    assert code == 2 and "--instance" in capsys.readouterr().err


def test_chat_dataset_run_uses_the_datasets_output_lengths(sim_url: str, tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('"hello there"\n{"prompt": "write a poem", "output_tokens": 5}\n')
    code = main(["bench", "run", "--url", sim_url, "--model", MODEL, "--api", "chat", "--concurrency", "1",
                 "--requests", "2", "--output-tokens", "3", "--dataset", str(data), "--out", str(tmp_path / "o"),
                 "--no-progress", "--no-plots"])  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "o" / "requests.jsonl").read_text().splitlines()]
    assert code == 0
    assert [r["output_tokens"] for r in rows] == [3, 5]


def test_sharegpt_dataset_takes_the_first_human_turn(tmp_path: Path) -> None:
    from eks_llm_stack.bench.workload import load_dataset

    data = tmp_path / "sg.json"
    data.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "why?"}, {"from": "gpt", "value": "one two three"}]},
        {"conversations": [{"from": "gpt", "value": "no question"}]},
    ]))  # fmt: skip
    (p,) = load_dataset(data)
    assert (p.text, p.output_tokens) == ("why?", 4)


@mock_aws
def test_results_upload_to_s3(tmp_path: Path) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="bench")
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "summary.csv").write_text("")
    keys = upload_results(tmp_path, "s3://bench/runs/r1/")
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="bench")["Contents"]
    assert sorted(keys) == sorted(o["Key"] for o in listed) == ["runs/r1/summary.csv", "runs/r1/summary.json"]


# -- plots from a fixed result set --------------------------------------------------------------------


def fixed_summary(priced: bool) -> dict[str, Any]:
    """Five closed-loop levels of a server that saturates at 8 requests in flight."""
    levels = []
    for i, c in enumerate((1, 2, 4, 8, 16)):
        e2e_ms = 1000.0 if c <= 8 else 2000.0
        recs = []
        for j in range(c):
            r = RequestRecord(index=j, level=i, scheduled_ns=0, sent_ns=0, done_ns=int(e2e_ms * 1e6))
            r.chunk_ns = [int(100e6 + k * 9e6) for k in range(100)]
            r.chunk_tokens = [1] * 100
            r.token_source = "usage"
            recs.append(r)
        levels.append(
            summarize_level(recs, level=i, load={"concurrency": c}, slo=Slo(), hourly_usd=1.21 if priced else None)
        )
    return {"levels": levels, "knee": find_knee(levels), "price": {"hourly_usd": 1.21} if priced else None}


def panels(path: Path) -> list[str]:
    with Image.open(path) as img:
        img.verify()  # raises on a corrupt PNG
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] >= 600 and len(img.convert("L").getcolors(1 << 16) or ()) > 2
        return img.text["Panels"].split("; ")


def test_plots_are_valid_pngs_with_the_expected_panels(tmp_path: Path) -> None:
    written = plots.render_plots([("run", fixed_summary(priced=True))], tmp_path)
    assert {p.name: panels(p) for p in written} == {
        plots.THROUGHPUT: ["Output tokens/s vs load", "Requests/s vs load"],
        plots.PERCENTILES: ["TTFT percentiles vs load", "ITL percentiles vs load"],
        plots.LATENCY_THROUGHPUT: ["Latency vs throughput (knee = max throughput / latency)"],
        plots.GOODPUT: ["SLO attainment vs load"],
        plots.COST: ["Cost per 1M output tokens vs load"],
    }


def test_value_axes_start_at_zero_and_concurrency_sweeps_use_log_x() -> None:
    figures = plots.build_figures([("run", fixed_summary(priced=True))])
    for name, fig in figures.items():
        for ax in fig.axes:
            assert ax.get_ylim()[0] == 0, (name, ax.get_title())
            if name != plots.LATENCY_THROUGHPUT:
                assert ax.get_xscale() == "log", (name, ax.get_title())  # concurrency 1..16
            else:
                assert ax.get_xlim()[0] == 0


def test_the_configured_slo_is_drawn_and_every_series_has_its_own_colour() -> None:
    doc = {**fixed_summary(priced=True), "slo": {"ttft_ms": 300.0, "itl_ms": 40.0, "e2e_ms": None}}
    fig = plots.build_figures([("run", doc)])[plots.PERCENTILES]
    for ax, limit in zip(fig.axes, (300.0, 40.0), strict=True):
        slo = [line for line in ax.get_lines() if line.get_label().startswith("SLO")]
        assert len(slo) == 1 and list(slo[0].get_ydata()) == [limit, limit]
        series = [line for line in ax.get_lines() if not line.get_label().startswith("SLO")]
        assert len({line.get_color() for line in series}) == len(series) == 3
        assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"p50", "p90", "p99", f"SLO {limit:g} ms"}


def test_cost_axis_reads_as_plain_dollars() -> None:
    fig = plots.build_figures([("run", fixed_summary(priced=True))])[plots.COST]
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(t.startswith("$") and "×" not in t and "10" not in t.split(".")[0][1:3] for t in labels)


def test_an_all_failed_run_draws_no_empty_plot(tmp_path: Path) -> None:
    doc = fixed_summary(priced=True)
    for lv in doc["levels"]:
        lv["completed"] = 0
    assert plots.render_plots([("run", doc)], tmp_path) == []


def test_fixed_result_set_has_its_knee_at_saturation() -> None:
    assert fixed_summary(priced=False)["knee"]["concurrency"] == 8


def test_no_cost_plot_without_a_price(tmp_path: Path) -> None:
    written = plots.render_plots([("run", fixed_summary(priced=False))], tmp_path)
    assert plots.COST not in {p.name for p in written}


def test_ctrl_c_writes_what_was_measured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from eks_llm_stack.bench import harness

    async def interrupted_run(target: Any, levels: Any, *, state: harness.RunState, **kw: Any) -> None:
        state.levels_started = 1
        r = RequestRecord(index=0, level=0, scheduled_ns=0, sent_ns=0, done_ns=50_000_000, token_source="usage")
        r.chunk_ns, r.chunk_tokens = [10_000_000, 20_000_000], [1, 1]
        state.records.append(r)
        raise KeyboardInterrupt

    monkeypatch.setattr(harness, "run_levels", interrupted_run)
    code = main(["bench", "run", "--url", "http://127.0.0.1:1", "--model", MODEL, "--concurrency", "1",
                 "--out", str(tmp_path), "--no-progress", "--no-plots", "--no-preflight"])  # fmt: skip
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert code == 130
    assert (doc["interrupted"], doc["levels"][0]["completed"]) == (True, 1)


def test_live_progress_shows_each_level_and_its_errors() -> None:
    import io

    from rich.console import Console

    from eks_llm_stack.bench.progress import LiveProgress
    from eks_llm_stack.bench.workload import LevelSpec

    out = io.StringIO()
    with LiveProgress(Console(file=out, width=120, force_terminal=True)) as live:
        live.start_level(LevelSpec(concurrency=2, requests=2))
        live.on_done(RequestRecord(index=0, level=0, scheduled_ns=0, sent_ns=0, error="timeout"))
        live.on_done(RequestRecord(index=1, level=0, scheduled_ns=0, sent_ns=0))
    text = out.getvalue()
    assert "concurrency 2" in text and "2/2" in text and "errors 1" in text
