"""Helm values contract: each vendored chart judges the values our templates hand it.

For every ``Custom::AWSCDK-EKS-HelmChart`` resource of a synthesized template:

1. its ``Values`` are taken as CloudFormation will pass them, with intrinsics (``Ref``,
   ``Fn::GetAtt``, ``Fn::ImportValue``...) replaced by ``${...}`` placeholder strings;
2. every key path of those values must be defined by the chart: present in its ``values.yaml``
   (subcharts' values under their alias), or in its ``values.schema.json``, or below a free-form
   map listed in :data:`FREE_FORM_KEYS` / :data:`FREE_FORM_PATHS` (with the reason);
3. the vendored chart (``third_party/charts/<chart>-<version>.tgz``) is rendered with the helm of
   the pinned kubectl layer (``helm template --kube-version 1.35.0 --namespace NS``); a render
   error (including the chart's own schema check) is a problem;
4. every rendered object must be valid against the Kubernetes 1.35 schemas and the vendored CRDs.

The rendered output is written to ``<out_dir>/<release>.yaml`` (``dist/helm/<profile>/``) for review.
Run it on a profile with ``python -m eks_llm_stack.gates.helm_values [PROFILE ...]``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .. import versions
from ..charts.render import placeholders
from ..third_party import CHARTS_DIR, NotVendoredError
from ..third_party import chart_archive as _chart_archive
from .helm import cache_dir, helm_binary
from .manifests import DEFAULT_CRD_DIR, validate_manifests

HELM_CHART_TYPE = "Custom::AWSCDK-EKS-HelmChart"
#: ``helm template --kube-version``: the cluster's minor with a patch, as helm wants a full version.
KUBE_VERSION = f"{versions.KUBERNETES_VERSION}.0"

#: Keys whose value is a free-form map or list in every chart: their content is a Kubernetes field
#: (checked by the manifest validator once rendered) or arbitrary user data, never chart settings.
FREE_FORM_KEYS: Mapping[str, str] = {
    "nodeSelector": "a Pod nodeSelector: label -> value",
    "tolerations": "a list of Pod tolerations",
    "affinity": "a Pod affinity, copied into the Pod spec",
    "resources": "container resource requests/limits (or, in KEDA, one such block per component)",
    "podAnnotations": "annotations copied onto Pods",
    "podLabels": "labels copied onto Pods",
    "annotations": "annotations copied onto an object",
    "labels": "labels copied onto an object",
    "securityContext": "a container securityContext",
    "podSecurityContext": "a Pod securityContext",
    "containerSecurityContext": "a container securityContext",
    "extraArgs": "extra command-line flags of a component",
}

#: Free-form maps in one chart (chart name -> dotted path -> reason).
FREE_FORM_PATHS: Mapping[str, Mapping[str, str]] = {
    "kube-prometheus-stack": {
        "prometheus.prometheusSpec.storageSpec": "the Prometheus CR's storage field, checked against its CRD",
        "alertmanager.alertmanagerSpec.storage": "the Alertmanager CR's storage field, checked against its CRD",
    },
    "nvidia-device-plugin": {
        "config.map": "config name -> device plugin config file (the file is checked by its own test)",
    },
}

#: Keys of :data:`FREE_FORM_KEYS` that one chart uses for a structure instead: the keys directly below
#: them must be defined by the chart; what is below those is free-form (chart -> dotted path -> reason).
STRUCTURED_PATHS: Mapping[str, Mapping[str, str]] = {
    "keda": {"resources": "one resources block per component: operator, metricServer, webhooks"},
}


class HelmGateError(RuntimeError):
    """A chart the templates install is not vendored, or helm itself cannot run."""


@dataclass(frozen=True, kw_only=True)
class HelmRelease:
    """One Helm release of a synthesized template, with its values as CloudFormation passes them."""

    stack: str
    logical_id: str
    release: str
    chart: str
    version: str
    namespace: str
    values: dict[str, Any]
    #: The chart directory of a chart asset (``ChartAssetURL``) in the cloud assembly; None for a repository chart.
    source: Path | None = None

    @property
    def where(self) -> str:
        return f"{self.stack}/{self.logical_id} (release {self.release}, chart {self.chart} {self.version})"


def _asset_chart(props: Mapping[str, Any], assembly_dir: Path | None) -> tuple[str, str, Path | None]:
    """(chart, version, directory) of a chart asset, read from its staged copy in the cloud assembly."""
    digest = re.search(r"([0-9a-f]{64})\.zip", json.dumps(props["ChartAssetURL"]))
    staged = sorted(assembly_dir.glob(f"asset.{digest.group(1)}*")) if assembly_dir and digest else []
    staged = [d for d in staged if (d / "Chart.yaml").is_file()]
    if not staged:
        return "(chart asset)", "(unknown)", None
    meta = yaml.safe_load((staged[0] / "Chart.yaml").read_text())
    return str(meta["name"]), str(meta["version"]), staged[0]


def helm_releases(templates: Mapping[str, Mapping[str, Any]], assembly_dir: Path | None = None) -> list[HelmRelease]:
    """Every Helm release of these templates (stack name -> template); chart assets are found in
    ``assembly_dir`` (the ``cdk.out`` directory)."""
    found: list[HelmRelease] = []
    for stack, template in sorted(templates.items()):
        for logical_id, resource in sorted((template.get("Resources") or {}).items()):
            if resource.get("Type") != HELM_CHART_TYPE:
                continue
            props = resource.get("Properties", {})
            raw = props.get("Values")
            text = raw if isinstance(raw, str) else placeholders(raw) if raw is not None else "{}"
            if "ChartAssetURL" in props:
                chart, version, source = _asset_chart(props, assembly_dir)
            else:
                chart, version, source = str(props["Chart"]), str(props["Version"]), None
            found.append(
                HelmRelease(
                    stack=stack,
                    logical_id=logical_id,
                    release=str(props.get("Release") or logical_id.lower()),
                    chart=chart,
                    version=version,
                    namespace=str(props.get("Namespace") or "default"),
                    values=json.loads(text),
                    source=source,
                )
            )
    return found


def chart_archive(chart: str, version: str, charts_dir: Path = CHARTS_DIR) -> Path:
    """The vendored ``<chart>-<version>.tgz`` (chart versions may carry a leading ``v`` or not)."""
    try:
        return _chart_archive(chart, version, charts_dir)
    except NotVendoredError as exc:
        raise HelmGateError(str(exc)) from None


@dataclass(frozen=True)
class ChartSpec:
    """What a chart defines: its default values (subcharts under their alias) and its values schema."""

    name: str
    defaults: dict[str, Any]
    schemas: dict[str, Any]  # dotted prefix ('' for the chart itself, 'grafana' for a subchart) -> schema


def _read_chart(files: Mapping[str, bytes], root: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(Chart.yaml, defaults, {prefix: schema}) of the chart at ``root/`` in ``files``."""
    meta = yaml.safe_load(files.get(f"{root}/Chart.yaml", b"{}")) or {}
    defaults = yaml.safe_load(files.get(f"{root}/values.yaml", b"{}")) or {}
    schemas: dict[str, Any] = {}
    if f"{root}/values.schema.json" in files:
        schemas[""] = json.loads(files[f"{root}/values.schema.json"])
    aliases = {d["name"]: d.get("alias") or d["name"] for d in meta.get("dependencies") or []}
    sub_roots = {p.split("/")[-2] for p in files if p.startswith(f"{root}/charts/") and p.endswith("/Chart.yaml")}
    subs: list[tuple[str, Mapping[str, bytes]]] = [(f"{root}/charts/{s}", files) for s in sorted(sub_roots)]
    for path in sorted(p for p in files if p.startswith(f"{root}/charts/") and p.count("/") == 2):
        if path.endswith(".tgz"):  # a dependency kept packaged
            inner = _tar_files(files[path])
            subs += [(r.split("/")[0], inner) for r in inner if r.count("/") == 1 and r.endswith("/Chart.yaml")]
    for sub_root, sub_files in subs:
        sub_meta, sub_defaults, sub_schemas = _read_chart(sub_files, sub_root)
        key = aliases.get(sub_meta.get("name", ""), sub_meta.get("name", sub_root.split("/")[-1]))
        mine = defaults.get(key)
        defaults[key] = _merge(sub_defaults, mine if isinstance(mine, dict) else {})
        schemas.update({(f"{key}.{k}" if k else key): v for k, v in sub_schemas.items()})
    return meta, defaults, schemas


def _tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and (m.name.endswith((".yaml", ".json", ".tgz")))
        }


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _dir_files(root: Path) -> dict[str, bytes]:
    return {
        f"{root.name}/{p.relative_to(root)}": p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith((".yaml", ".json", ".tgz"))
    }


@cache
def chart_spec(archive: Path) -> ChartSpec:
    """What the chart (a ``.tgz`` or a chart directory) defines."""
    files = _dir_files(archive) if archive.is_dir() else _tar_files(archive.read_bytes())
    root = next(p.split("/")[0] for p in files if p.count("/") == 1 and p.endswith("/Chart.yaml"))
    meta, defaults, schemas = _read_chart(files, root)
    return ChartSpec(name=str(meta.get("name", root)), defaults=defaults, schemas=schemas)


def _schema_at(spec: ChartSpec, path: tuple[str, ...]) -> tuple[Any, bool]:
    """(schema node for ``path`` or None, True when a schema declares ``path`` free-form)."""
    for prefix, schema in sorted(spec.schemas.items(), key=lambda kv: -len(kv[0])):
        head = tuple(prefix.split(".")) if prefix else ()
        if path[: len(head)] != head:
            continue
        node = schema
        for key in path[len(head) :]:
            if not isinstance(node, dict):
                return None, False
            props = node.get("properties") or {}
            if key in props:
                node = props[key]
            elif (
                isinstance(node.get("additionalProperties"), dict)
                or node.get("additionalProperties") is True
                or node.get("patternProperties")
            ):
                return None, True
            else:
                return None, False
        return node, False
    return None, False


def undefined_value_paths(values: Mapping[str, Any], spec: ChartSpec) -> list[str]:
    """Dotted key paths of ``values`` that the chart defines nowhere."""
    chart_free = FREE_FORM_PATHS.get(spec.name, {})
    structured = STRUCTURED_PATHS.get(spec.name, {})
    undefined: list[str] = []

    def walk(node: Mapping[str, Any], default: Any, path: tuple[str, ...]) -> None:
        for key, value in node.items():
            here = (*path, str(key))
            dotted = ".".join(here)
            if dotted in structured:
                known = default.get(key) if isinstance(default, dict) else None
                known = known if isinstance(known, dict) else {}
                undefined.extend(f"{dotted}.{k}" for k in (value if isinstance(value, dict) else {}) if k not in known)
                continue
            if key in FREE_FORM_KEYS or dotted in chart_free:
                continue
            has_default = isinstance(default, dict) and key in default
            schema_node, schema_free = _schema_at(spec, here)
            if schema_free:
                continue
            if not has_default and schema_node is None:
                undefined.append(dotted)
                continue
            if isinstance(value, dict) and value:
                walk(value, default.get(key) if has_default else None, here)

    walk(values, spec.defaults, ())
    return undefined


@cache
def _crd_api_versions(crd_dir: Path) -> tuple[str, ...]:
    """``group/version`` of every vendored CRD: the cluster serves them, so charts may render for them."""
    found: set[str] = set()
    for path in crd_dir.glob("*.yaml"):
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                found.update(f"{doc['spec']['group']}/{v['name']}" for v in doc["spec"]["versions"])
    return tuple(sorted(found))


def _helm_env() -> dict[str, str]:
    # Keep helm's own config, cache and data out of the user's home and the system temp dir.
    base = cache_dir() / "helm-home"
    return {
        **os.environ,
        "HELM_CONFIG_HOME": str(base / "config"),
        "HELM_CACHE_HOME": str(base / "cache"),
        "HELM_DATA_HOME": str(base / "data"),
    }


@cache
def _render(archive: Path, release: str, namespace: str, values_json: str, crd_dir: Path) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of ``helm template`` (cached: profiles often share a release's values)."""
    cmd = [
        str(helm_binary()),
        "template",
        release,
        str(archive),
        "--kube-version",
        KUBE_VERSION,
        "--namespace",
        namespace,
        # Tests are run by `helm test`, never installed with the release.
        "--skip-tests",
        "--values",
        "-",
    ]
    for api in _crd_api_versions(crd_dir):
        cmd += ["--api-versions", api]
    out = subprocess.run(cmd, input=values_json, capture_output=True, text=True, env=_helm_env(), check=False)
    return out.stdout, out.stderr, out.returncode


def check_release(
    release: HelmRelease,
    *,
    out_dir: Path | None = None,
    charts_dir: Path = CHARTS_DIR,
    crd_dir: Path = DEFAULT_CRD_DIR,
) -> list[str]:
    """Every problem of one release: undefined keys, render errors, invalid rendered objects."""
    if release.source is not None:
        archive = release.source
    elif release.chart == "(chart asset)":
        return [f"{release.where}: the chart asset was not found -- fix: pass the cloud assembly directory (cdk.out)"]
    else:
        try:
            archive = chart_archive(release.chart, release.version, charts_dir)
        except HelmGateError as exc:
            return [f"{release.where}: {exc}"]
    spec = chart_spec(archive)
    problems = [
        f"{release.where}: values key '{path}' is not defined by the chart (not in its values.yaml nor "
        f"values.schema.json) -- fix: correct the key (see {archive.name}/values.yaml), or list it in "
        "FREE_FORM_PATHS with the reason if it is a free-form map"
        for path in undefined_value_paths(release.values, spec)
    ]
    values_json = json.dumps(release.values, sort_keys=True)
    stdout, stderr, code = _render(archive, release.release, release.namespace, values_json, crd_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{release.release}.values.json").write_text(json.dumps(release.values, indent=2) + "\n")
        (out_dir / f"{release.release}.yaml").write_text(
            stdout if code == 0 else f"# helm template failed:\n# {stderr}"
        )
    if code != 0:
        return [*problems, f"{release.where}: helm template failed: {stderr.strip()}"]
    docs = [d for d in yaml.load_all(stdout, Loader=yaml.CSafeLoader) if d]
    problems += [f"{release.where}: rendered {p}" for p in validate_manifests(docs, crd_dir=crd_dir)]
    return problems


def check_templates(
    templates: Mapping[str, Mapping[str, Any]],
    *,
    out_dir: Path | None = None,
    crd_dir: Path = DEFAULT_CRD_DIR,
    assembly_dir: Path | None = None,
) -> list[str]:
    """Every problem of every Helm release of these templates; rendered output under ``out_dir``."""
    problems: list[str] = []
    for release in helm_releases(templates, assembly_dir):
        problems += check_release(release, out_dir=out_dir, crd_dir=crd_dir)
    return problems


#: ``synthesize(profile, outdir)`` -> (profile name, ``{stack name: template}``, cloud assembly directory).
Synthesize = Callable[[str, Path], tuple[str, Mapping[str, Mapping[str, Any]], Path]]


def check_profiles(profiles: Iterable[str], synthesize: Synthesize) -> int:
    """Check every Helm release of each profile, as ``synthesize`` builds it; 1 if any has a problem.

    The caller synthesizes (gates sit below the stacks, so this module never imports them).
    """
    failed = 0
    for profile in profiles:
        cache_dir().mkdir(parents=True, exist_ok=True)
        # The cloud assembly is only needed while rendering (chart assets): not left in the system temp dir.
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="helm-gate-") as tmp:
            name, templates, assembly_dir = synthesize(profile, Path(tmp))
            out = Path("dist") / "helm" / profile
            problems = check_templates(templates, out_dir=out, assembly_dir=assembly_dir)
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{name}: {len(problems)} problem(s); rendered releases in {out}/")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover - the command-line entry point
    # Run as a script only: the one place here that synthesizes, so importing this module never loads
    # the stacks (``python -m eks_llm_stack.gates.helm_values [PROFILE ...]``).
    from aws_cdk import App

    from ..config import list_profiles
    from ..synth import build

    def _synthesize(profile: str, outdir: Path) -> tuple[str, Mapping[str, Mapping[str, Any]], Path]:
        app = App(context={"nag": "false"}, outdir=str(outdir))
        built = build(profile, app=app)
        assembly = app.synth()
        return built.profile.name, {s.stack_name: s.template for s in assembly.stacks}, Path(assembly.directory)

    sys.exit(check_profiles(sys.argv[1:] or list_profiles(), _synthesize))
