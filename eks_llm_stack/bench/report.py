"""``report.html``: one self-contained page per run (plots embedded, tables, errors, metadata),
for CI artifacts - it opens from a download without any other file."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .progress import error_lines, knee_line
from .sessions import session_lines

REPORT = "report.html"

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("load", "load"),
    ("completed", "ok"),
    ("errors", "errors"),
    ("requests_per_s", "req/s"),
    ("output_tokens_per_s", "output tok/s"),
    ("ttft_ms.p50", "TTFT p50 ms"),
    ("ttft_ms.p99", "TTFT p99 ms"),
    ("itl_ms.p50", "ITL p50 ms"),
    ("itl_ms.p99", "ITL p99 ms"),
    ("e2e_ms.p50", "E2E p50 ms"),
    ("goodput_fraction", "SLO attainment"),
    ("goodput_requests_per_s", "request goodput /s"),
    ("goodput_output_tokens_per_s", "token goodput /s"),
)


def _get(lv: dict[str, Any], key: str) -> Any:
    if key == "load":
        if lv.get("concurrency") is not None:
            return f"concurrency {lv['concurrency']}"
        return f"{lv.get('arrival', '')} {lv.get('rate'):g} req/s"
    value: Any = lv
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "-"
    if key == "goodput_fraction":
        return f"{value * 100:.1f} %"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return html.escape(str(value))


def render_report(summary: dict[str, Any], plots: Sequence[Path]) -> str:
    levels = summary["levels"]
    prices = summary.get("prices_usd_per_hour") or {}
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in _COLUMNS)
    head += "".join(f"<th>$ per 1M tokens ({html.escape(k.replace('_', ' '))})</th>" for k in prices)
    rows = []
    for lv in levels:
        cells = "".join(f"<td>{_cell(_get(lv, k), k)}</td>" for k, _ in _COLUMNS)
        by_price = lv.get("cost_per_1m_tokens_usd_by_price") or {}
        cells += "".join(f"<td>{'-' if by_price.get(k) is None else f'${by_price[k]:,.2f}'}</td>" for k in prices)
        rows.append(f"<tr>{cells}</tr>")
    images = []
    for path in plots:
        data = base64.b64encode(path.read_bytes()).decode()
        images.append(f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"></figure>')
    slo = summary.get("slo") or {}
    slo_text = ", ".join(f"{k.replace('_ms', '')} &lt; {v:g} ms" for k, v in slo.items() if v is not None)
    errors = "\n".join(error_lines(summary)) or "no errors"
    sessions = session_lines(summary)
    sessions_html = f"<h2>Chat sessions</h2><pre>{html.escape(chr(10).join(sessions))}</pre>" if sessions else ""
    meta = json.dumps(summary.get("metadata") or {}, indent=2)
    target = summary.get("target") or {}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>benchmark {html.escape(str(target.get("model")))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f4f4f4; }} img {{ max-width: 100%; }} pre {{ background: #f8f8f8; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>Benchmark: {html.escape(str(target.get("model")))} at {html.escape(str(target.get("url")))}</h1>
<p>SLOs: {slo_text}. {html.escape(knee_line(summary))}{" Interrupted: partial results." if summary.get("interrupted") else ""}</p>
<h2>Levels</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{"".join(rows)}
</tbody></table>
<h2>Errors</h2><pre>{html.escape(errors)}</pre>
{sessions_html}
<h2>Plots</h2>
{"".join(images)}
<h2>Run</h2><pre>{html.escape(meta)}</pre>
</body></html>
"""


def write_report(out_dir: Path, summary: dict[str, Any], plots: Sequence[Path]) -> Path:
    path = out_dir / REPORT
    path.write_text(render_report(summary, plots), encoding="utf-8")
    return path
