"""Gate: every metric we query is one the pinned exporters really export.

Two judges, both vendored from upstream:

* ``third_party/vllm-0.29.0/metrics.json`` — every ``vllm:*`` metric the 0.29.0 server defines, with
  its type. :func:`vllm_exposition` turns it into the names Prometheus stores: a counter ``X`` is
  exposed as ``X_total`` (prometheus_client adds the suffix, and does not double one the name already
  has), a histogram as ``X_bucket``, ``X_sum`` and ``X_count``, a gauge as ``X``.
* the DCGM exporter's counters file format (``third_party/dcgm-exporter-4.4.2-4.7.1/*.csv``): the
  exporter reads it with Go's ``encoding/csv`` (``Comment = '#'``, every other setting default) and
  refuses any record without exactly 3 fields. :func:`read_dcgm_counters` is a faithful reader of
  that format (see its docstring), so the file we ship is parsed as the exporter parses it, and
  every ``DCGM_FI_*`` a rule or a panel selects must be one of its fields.

What is checked is read from the synthesized manifests — what the cluster gets: alert and recording
rules (``PrometheusRule``), dashboards (the Grafana ConfigMaps), KEDA triggers (``ScaledObject``),
the preStop drain of the vLLM pods, and the counters ConfigMap. PromQL is tokenized
(:func:`promql_selectors`) so every metric selector is found, in every branch of ``or``, in
subqueries, and in ``{__name__="..."}`` form; function names, label names, ``by (...)`` lists,
durations and strings are not mistaken for metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import Problem

THIRD_PARTY = Path(__file__).resolve().parents[1] / "third_party"
VLLM_METRICS_JSON = THIRD_PARTY / "vllm-0.29.0" / "metrics.json"
DCGM_UPSTREAM_DIR = THIRD_PARTY / "dcgm-exporter-4.4.2-4.7.1"

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# -- vLLM -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposedSeries:
    """A series name Prometheus stores, and the metric (name, type) of metrics.json it comes from."""

    series: str
    metric: str
    type: str


@cache
def vllm_exposition(path: Path = VLLM_METRICS_JSON) -> Mapping[str, ExposedSeries]:
    """``series name -> ExposedSeries`` for every metric of the pinned vLLM release."""
    data = json.loads(path.read_text())
    out: dict[str, ExposedSeries] = {}
    for m in data["metrics"]:
        name, kind = m["name"], m["type"]
        if kind == "counter":
            base = name.removesuffix("_total")
            out[base + "_total"] = ExposedSeries(base + "_total", base, kind)
        elif kind == "histogram":
            for suffix in _HISTOGRAM_SUFFIXES:
                out[name + suffix] = ExposedSeries(name + suffix, name, kind)
        else:
            out[name] = ExposedSeries(name, name, kind)
    return out


def vllm_version(path: Path = VLLM_METRICS_JSON) -> str:
    return str(json.loads(path.read_text())["vllm_version"])


def check_vllm_names(names: Iterable[str], *, where: str, families_too: bool = False) -> list[Problem]:
    """A problem for each ``vllm:*`` name the pinned release does not export (with ``families_too``,
    a metric's own name such as ``vllm:inter_token_latency_seconds`` is accepted: prose names it)."""
    exposed = vllm_exposition()
    families = {s.metric for s in exposed.values()} if families_too else set()
    problems = []
    for name in sorted(set(names)):
        if not name.startswith("vllm:") or name in exposed or name in families:
            continue
        base = re.sub(r"(_total|_bucket|_sum|_count)$", "", name)
        near = sorted(s for s in exposed if s.startswith(base))[:3]
        hint = f"; the release exports {', '.join(near)}" if near else ""
        problems.append(
            Problem(
                f"{where}: {name}",
                f"is not exported by vLLM {vllm_version()}{hint}",
                "use a series of third_party/vllm-0.29.0/metrics.json (counters with _total, histograms with "
                "_bucket/_sum/_count); an older release's name stays empty, also as an `or` fallback",
            )
        )
    return problems


# -- PromQL ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,@{}\[\]()])
    """,
    re.X,
)
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end"})
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
    | {"limitk", "limit_ratio"}
)


class PromQLSyntaxError(ValueError):
    pass


def _tokens(expr: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise PromQLSyntaxError(f"unexpected character {expr[pos]!r} at {pos} in {expr!r}")
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append((kind, m.group()))
        pos = m.end()
    return out


def promql_selectors(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (Grafana ``$variables`` allowed).

    A name is an identifier that is not followed by ``(`` (a function or aggregation), not a
    keyword, not inside a ``by/without/on/ignoring/group_*`` label list, not a label name of a
    ``{...}`` matcher, and not a duration. ``{__name__="x"}`` selects ``x``. Grafana's
    ``label_values(metric, label)`` selects ``metric``.
    """
    toks = _tokens(_GRAFANA_VAR.sub("1", expr))
    names: set[str] = set()
    i = 0
    depth_brace = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if text == "[":
            # A range or subquery window ([5m], [$__range:1m]): durations only.
            while i < len(toks) and toks[i][1] != "]":
                i += 1
        elif text == "{":
            depth_brace += 1
        elif text == "}":
            depth_brace -= 1
        elif depth_brace:
            # Inside a matcher: label op "value"; only __name__ names a metric.
            if kind == "ident" and text == "__name__" and nxt in ("=",) and i + 2 < len(toks):
                names.add(json.loads(toks[i + 2][1]) if toks[i + 2][1].startswith('"') else toks[i + 2][1][1:-1])
            i += 3 if kind == "ident" else 1
            continue
        elif kind == "ident":
            lower = text.lower()
            if lower in _LABEL_LIST_KEYWORDS and nxt == "(":
                # Skip the label list.
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    j += 1
                i = j + 1
                continue
            if text == "label_values" and nxt == "(":
                # label_values(metric{...}, label) or label_values(label): the last argument is a label.
                j, depth, args = i + 2, 1, [[]]  # type: ignore[var-annotated]
                while j < len(toks) and depth:
                    t = toks[j][1]
                    depth += t in "({[" and len(t) == 1
                    depth -= t in ")}]" and len(t) == 1
                    if t == "," and depth == 1:
                        args.append([])
                    elif depth:
                        args[-1].append(toks[j])
                    j += 1
                if len(args) == 2:
                    names |= promql_selectors(" ".join(t for _, t in args[0]))
                i = j
                continue
            if nxt == "(" or lower in _KEYWORDS or (lower in _AGGREGATIONS and nxt.lower() in ("by", "without")):
                pass
            else:
                names.add(text)
        i += 1
    if depth_brace:
        raise PromQLSyntaxError(f"unbalanced braces in {expr!r}")
    return names


# -- DCGM counters file ---------------------------------------------------------------------------


class CsvError(ValueError):
    """What Go's encoding/csv would return, with the line it stopped at."""


def go_csv_records(text: str, *, comment: str = "#") -> list[tuple[int, list[str]]]:
    """``(line, fields)`` for each record, read as Go's ``csv.Reader`` with ``Comment = comment``.

    Why not Python's ``csv`` module: it has no comment character, accepts a record of any length,
    and is lenient with stray quotes (``a "b" c`` is one field to it, ``ErrBareQuote`` to Go). The
    rules implemented, from Go's ``encoding/csv`` documentation: a line whose first character is the
    comment character is skipped, as is an empty line; fields are separated by ``,``; leading spaces
    are kept (``TrimLeadingSpace`` is false); a field that begins with ``"`` is quoted — ``""`` is a
    literal quote, it may span lines, and the closing quote must be followed by ``,`` or the end of
    the line (else ``extraneous or missing " in quoted-field``); a ``"`` inside an unquoted field is
    ``bare " in non-quoted-field``; with ``FieldsPerRecord = 0`` every record must have as many
    fields as the first (else ``wrong number of fields``). ``\\r\\n`` is read as ``\\n``.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    records: list[tuple[int, list[str]]] = []
    expected: int | None = None
    n = 0
    while n < len(lines):
        line = lines[n]
        start = n + 1
        n += 1
        if line == "" or line.startswith(comment):
            continue
        fields: list[str] = []
        pos = 0
        while True:
            if line[pos : pos + 1] == '"':
                value = ""
                pos += 1
                while True:
                    q = line.find('"', pos)
                    if q < 0:
                        value += line[pos:]
                        if n >= len(lines):
                            raise CsvError(f'line {start}: extraneous or missing " in quoted-field')
                        value += "\n"
                        line, pos = lines[n], 0
                        n += 1
                        continue
                    value += line[pos:q]
                    if line[q + 1 : q + 2] == '"':
                        value += '"'
                        pos = q + 2
                        continue
                    pos = q + 1
                    break
                fields.append(value)
                if pos == len(line):
                    break
                if line[pos] != ",":
                    raise CsvError(f'line {start}: extraneous or missing " in quoted-field')
                pos += 1
            else:
                comma = line.find(",", pos)
                value = line[pos:] if comma < 0 else line[pos:comma]
                if '"' in value:
                    raise CsvError(f'line {start}: bare " in non-quoted-field')
                fields.append(value)
                if comma < 0:
                    break
                pos = comma + 1
        if expected is None:
            expected = len(fields)
        elif len(fields) != expected:
            raise CsvError(f"line {start}: wrong number of fields ({len(fields)}, the first record has {expected})")
        records.append((start, fields))
    return records


@dataclass(frozen=True)
class DcgmCounter:
    field: str
    type: str
    help: str


_DCGM_TYPES = ("gauge", "counter", "label")


def read_dcgm_counters(text: str, *, where: str = "counters.csv") -> tuple[list[DcgmCounter], list[Problem]]:
    """The counters of a file as dcgm-exporter reads it, and why the exporter would refuse it.

    The exporter's rule after the CSV read: exactly 3 fields per record (field, type, help), the
    first two trimmed of spaces, the type one of gauge, counter or label.
    """
    fix = "write `DCGM_FI_NAME, gauge|counter, help` with no comma or double quote inside the help text"
    try:
        records = go_csv_records(text)
    except CsvError as err:
        return [], [Problem(where, f"is not readable by the exporter's CSV reader: {err}", fix)]
    counters: list[DcgmCounter] = []
    problems: list[Problem] = []
    for line, fields in records:
        if len(fields) != 3:
            problems.append(
                Problem(f"{where}: line {line}", f"has {len(fields)} fields, the exporter needs exactly 3", fix, fields)
            )
            continue
        name, kind, help_ = fields[0].strip(), fields[1].strip(), fields[2].strip()
        if kind not in _DCGM_TYPES:
            problems.append(
                Problem(f"{where}: line {line}", "has an unknown metric type", "use gauge or counter", kind)
            )
        if not name.startswith("DCGM_FI_"):
            problems.append(Problem(f"{where}: line {line}", "is not a DCGM field name", "use DCGM_FI_*", name))
        counters.append(DcgmCounter(name, kind, help_))
    return counters, problems


def upstream_dcgm_counters() -> dict[str, DcgmCounter]:
    """The fields of dcgm-exporter's own counters files (what our file follows), by name."""
    out: dict[str, DcgmCounter] = {}
    for path in sorted(DCGM_UPSTREAM_DIR.glob("*.csv")):
        counters, problems = read_dcgm_counters(path.read_text(), where=path.name)
        if problems:
            raise AssertionError(f"the reader refuses upstream's own {path.name}: {problems}")
        out.update({c.field: c for c in counters})
    return out


# -- what the platform deploys --------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One PromQL expression found in a manifest, with where it is."""

    where: str
    expr: str


def platform_queries(manifests: Mapping[str, list[dict[str, Any]]]) -> list[Query]:
    """Every PromQL expression of the manifests: rules, dashboard panels and variables, KEDA triggers."""
    out: list[Query] = []
    for chart, docs in manifests.items():
        for doc in docs:
            kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
            if kind == "PrometheusRule":
                for group in doc["spec"]["groups"]:
                    for rule in group["rules"]:
                        label = rule.get("alert") or rule.get("record")
                        out.append(Query(f"{chart}/PrometheusRule {name}: {label}", rule["expr"]))
            elif kind == "ScaledObject":
                for t in doc["spec"].get("triggers", []):
                    if t.get("type") == "prometheus":
                        out.append(Query(f"{chart}/ScaledObject {name}: {t.get('name')}", t["metadata"]["query"]))
            elif kind == "ConfigMap":
                for key, value in (doc.get("data") or {}).items():
                    if key.endswith(".json"):
                        for where, expr in dashboard_queries(json.loads(value)):
                            out.append(Query(f"{chart}/ConfigMap {name}/{key}: {where}", expr))
    return out


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(panel title, expr)`` for every target of every panel (rows included) and every query variable."""

    def walk(panels: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield str(panel.get("title", "")), str(target["expr"])
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            expr = q.get("query") if isinstance(q, dict) else q
            if expr:
                yield f"variable {var.get('name')}", str(expr)


# Not an image reference (".../vllm:0.29-gpu..."): a metric name starts with a letter or underscore.
_VLLM_TOKEN = re.compile(r"(?<![/\w.-])vllm:[A-Za-z_][A-Za-z0-9_:]*")


def vllm_tokens(manifests: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """``(where, token)`` for every ``vllm:...`` string anywhere in the manifests (scripts included).

    The catch-all behind the structured checks: a name in a preStop script, an annotation or an
    argument is read as well. A regular expression such as ``vllm:num_requests_(?:a|b)`` yields its
    literal prefix, which matches nothing and is reported: name series one by one.
    """
    out: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            out.extend((where, t) for t in _VLLM_TOKEN.findall(value))
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v, where)
        elif isinstance(value, list):
            for v in value:
                walk(v, where)

    for chart, docs in manifests.items():
        for doc in docs:
            walk(doc, f"{chart}/{doc.get('kind')} {doc.get('metadata', {}).get('name')}")
    return out


def check_platform(manifests: Mapping[str, list[dict[str, Any]]], *, subject: str = "") -> list[Problem]:
    """The metric contract over one profile's manifests (every problem, none when it holds)."""
    problems: list[Problem] = []
    counters_text = [
        (f"{chart}/ConfigMap {doc['metadata']['name']}", doc["data"]["counters.csv"])
        for chart, docs in manifests.items()
        for doc in docs
        if doc.get("kind") == "ConfigMap" and "counters.csv" in (doc.get("data") or {})
    ]
    dcgm_fields: set[str] = set()
    for where, text in counters_text:
        counters, found = read_dcgm_counters(text, where=subject + where)
        problems += found
        dcgm_fields |= {c.field for c in counters}
    for q in platform_queries(manifests):
        try:
            names = promql_selectors(q.expr)
        except PromQLSyntaxError as err:
            problems.append(Problem(subject + q.where, str(err), "fix the expression"))
            continue
        problems += check_vllm_names(names, where=subject + q.where)
        for name in sorted(n for n in names if n.startswith("DCGM_FI_") and n not in dcgm_fields):
            problems.append(
                Problem(
                    f"{subject}{q.where}: {name}",
                    "is not a field of the DCGM exporter's counters file we ship, so the series never exists",
                    "add the field to the counters ConfigMap (eks_llm_stack metrics DCGM_FIELDS) or query another",
                )
            )
    seen: set[tuple[str, str]] = set()
    for where, token in vllm_tokens(manifests):
        if (where, token) in seen:
            continue
        seen.add((where, token))
        problems += check_vllm_names([token], where=subject + where, families_too=True)
    return problems


# -- an exposition (the simulator's, or any /metrics text) -----------------------------------------


@dataclass(frozen=True)
class ExposedFamily:
    name: str
    type: str
    samples: tuple[tuple[str, frozenset[str]], ...]  # (sample name, label names)


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?\s+\S+")
_LABEL_NAME = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"')


def parse_exposition(text: str) -> dict[str, ExposedFamily]:
    """Metric families of a Prometheus text exposition: ``# TYPE`` name, type, samples with label names."""
    types: dict[str, str] = {}
    samples: dict[str, list[tuple[str, frozenset[str]]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name], current = kind, name
            samples.setdefault(name, [])
        elif line.startswith("#") or not line.strip():
            continue
        else:
            m = _SAMPLE.match(line)
            if m is None:
                raise ValueError(f"not an exposition line: {line!r}")
            family = current if current is not None and m.group(1).startswith(current) else m.group(1)
            labels = frozenset(_LABEL_NAME.findall(m.group(3) or ""))
            samples.setdefault(family, []).append((m.group(1), labels))
    return {n: ExposedFamily(n, types.get(n, "untyped"), tuple(s)) for n, s in samples.items()}


def check_exposition(
    text: str, *, where: str, required_labels: Iterable[str] = ("model_name", "engine")
) -> list[Problem]:
    """A vLLM-like exposition against metrics.json: family names and types as vLLM 0.29.0 writes them
    (prometheus_client: ``# TYPE vllm:prompt_tokens counter`` with samples ``vllm:prompt_tokens_total``;
    histograms ``_bucket`` with ``le``, ``_sum``, ``_count``), and vLLM's labels on every sample."""
    metrics = {
        m["name"].removesuffix("_total") if m["type"] == "counter" else m["name"]: m["type"]
        for m in json.loads(VLLM_METRICS_JSON.read_text())["metrics"]
    }
    problems: list[Problem] = []
    fix = "expose the family as vLLM 0.29.0 does (third_party/vllm-0.29.0/metrics.json)"
    for name, fam in parse_exposition(text).items():
        if not name.startswith("vllm:"):
            continue
        if name not in metrics:
            problems.append(Problem(f"{where}: {name}", "is not a metric family of vLLM 0.29.0", fix))
            continue
        if fam.type != metrics[name]:
            problems.append(Problem(f"{where}: {name}", f"is a {fam.type}, vLLM's is a {metrics[name]}", fix))
        allowed = {
            "counter": {name + "_total"},
            "gauge": {name},
            "histogram": {name + s for s in _HISTOGRAM_SUFFIXES},
        }.get(metrics[name], {name})
        for sample, labels in fam.samples:
            if sample not in allowed:
                problems.append(
                    Problem(f"{where}: {sample}", f"is not a sample name of the {metrics[name]} {name}", fix)
                )
            missing = set(required_labels) - labels
            if missing:
                problems.append(
                    Problem(f"{where}: {sample}", f"lacks vLLM's label(s) {', '.join(sorted(missing))}", fix, labels)
                )
            if sample.endswith("_bucket") and "le" not in labels:
                problems.append(Problem(f"{where}: {sample}", "is a bucket without `le`", fix))
    return problems
