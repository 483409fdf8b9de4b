"""``dist/manifests`` for GitOps: complete, and applicable in its documented order.

What ``cdk deploy`` applies to the cluster is read from the synthesized templates, never from a list
kept by hand: every object of every ``Custom::AWSCDK-EKS-KubernetesResource`` and every
``Custom::AWSCDK-EKS-HelmChart`` release. Two checks judge the written directories against it:

* :func:`missing_objects` — every applied ``(apiVersion, kind, namespace, name)`` is in
  ``dist/manifests``; the CRDs of a CRD chart (a chart asset) are written as CRDs; every other Helm
  release is in ``dist/helm-releases/releases.json`` with its chart, version and namespace.
* :func:`order_problems` — walking the steps in their documented order (``00-namespaces``,
  ``10-crds``, the Helm releases, ``30-platform``, ``40-serving``; files in lexical order, as
  ``kubectl apply -f DIR`` takes them), every object's namespace and the CRD of its kind exist before it.
  A release installs the CRDs its vendored chart carries (its ``crds/`` folders unless ``--skip-crds``,
  CRD templates, subcharts'), per :func:`release_crds`.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .. import versions
from ..charts.render import (
    APPLY_STEPS,
    CONTROLLERS_STEP,
    placeholders,
)
from ..third_party import CHARTS_DIR, NotVendoredError, chart_archive
from .manifests import DEFAULT_CRD_DIR, _core_validator

KUBERNETES_RESOURCE_TYPE = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_CHART_TYPE = "Custom::AWSCDK-EKS-HelmChart"
#: Index of the Helm releases in ``dist/helm-releases``.
RELEASES_INDEX = "releases.json"
#: Namespaces every cluster has before anything is applied.
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
#: CRDs a chart installs that its vendored package does not carry (chart -> vendored CRD files, and why).
VENDORED_CRDS_OF_CHART: Mapping[str, tuple[str, str]] = {
    "external-secrets": (
        "external-secrets.io_*.yaml",
        "the published chart renders its CRDs from templates/crds/ (installCRDs: true), generated at release "
        "time and absent from the vendored package; third_party/crds/ holds the same CRDs at v2.9.0",
    ),
}

ObjectKey = tuple[str, str, str | None, str]


def object_key(doc: Mapping[str, Any]) -> ObjectKey:
    """``(apiVersion, kind, namespace, name)`` of a manifest."""
    meta = doc.get("metadata") or {}
    return (str(doc.get("apiVersion")), str(doc.get("kind")), meta.get("namespace"), str(meta.get("name")))


@dataclass(frozen=True, kw_only=True)
class HelmReleaseRecord:
    """One ``Custom::AWSCDK-EKS-HelmChart`` of a template, as ``helm upgrade --install`` needs it."""

    stack: str
    logical_id: str
    release: str
    namespace: str
    #: Chart name and version; ``None`` for a chart asset (a chart built at synth time, e.g. CRDs).
    chart: str | None
    version: str | None
    #: ``https://`` repository, or the full ``oci://`` chart reference.
    repository: str | None
    values: dict[str, Any] = field(default_factory=dict)
    skip_crds: bool = False
    create_namespace: bool = False
    wait: bool = False
    timeout: str | None = None
    #: The ``s3://`` URL of a chart asset (its digest names the staged directory in the cloud assembly).
    asset_url: str | None = None

    @property
    def is_asset(self) -> bool:
        return self.asset_url is not None

    def helm_command(self, values_file: str) -> list[str]:
        """The ``helm upgrade --install`` that installs this release as the kubectl handler does."""
        assert self.chart is not None and self.version is not None and self.repository is not None
        oci = self.repository.startswith("oci://")
        cmd = ["helm", "upgrade", "--install", self.release]
        cmd += [self.repository] if oci else [self.chart, "--repo", self.repository]
        cmd += ["--version", self.version, "--namespace", self.namespace]
        if self.create_namespace:
            cmd.append("--create-namespace")
        if self.skip_crds:
            cmd.append("--skip-crds")
        if self.wait:
            cmd.append("--wait")
        if self.timeout:
            cmd += ["--timeout", self.timeout]
        return [*cmd, "--values", values_file]

    def index_entry(self, values_file: str) -> dict[str, Any]:
        return {
            "release": self.release,
            "namespace": self.namespace,
            "chart": self.chart,
            "version": self.version,
            "repository": self.repository,
            "skip_crds": self.skip_crds,
            "create_namespace": self.create_namespace,
            "values": values_file,
            "command": self.helm_command(values_file),
        }


def _resolved(value: Any) -> Any:
    return placeholders(value) if isinstance(value, dict | list) else value


def helm_release_records(templates: Mapping[str, Mapping[str, Any]]) -> list[HelmReleaseRecord]:
    """Every Helm release of ``templates`` (stack name -> template), in deployment and template order."""
    found: list[HelmReleaseRecord] = []
    for stack, template in templates.items():
        for logical_id, resource in (template.get("Resources") or {}).items():
            if resource.get("Type") != HELM_CHART_TYPE:
                continue
            props = resource.get("Properties", {})
            raw = props.get("Values")
            values = json.loads(raw if isinstance(raw, str) else placeholders(raw)) if raw is not None else {}
            asset = props.get("ChartAssetURL")
            found.append(
                HelmReleaseRecord(
                    stack=stack,
                    logical_id=logical_id,
                    release=str(props.get("Release") or logical_id.lower()),
                    namespace=str(props.get("Namespace") or "default"),
                    chart=None if asset else str(props["Chart"]),
                    version=None if asset else str(props["Version"]),
                    repository=None if asset else str(_resolved(props["Repository"])),
                    values=values,
                    skip_crds=bool(props.get("SkipCrds")),
                    create_namespace=bool(props.get("CreateNamespace")),
                    wait=bool(props.get("Wait")),
                    timeout=props.get("Timeout"),
                    asset_url=json.dumps(_resolved(asset)) if asset else None,
                )
            )
    return found


def applied_objects(templates: Mapping[str, Mapping[str, Any]]) -> dict[ObjectKey, str]:
    """``object key -> where`` for every object the templates apply through a ``KubernetesManifest``."""
    found: dict[ObjectKey, str] = {}
    for stack, template in templates.items():
        for logical_id, resource in (template.get("Resources") or {}).items():
            if resource.get("Type") != KUBERNETES_RESOURCE_TYPE:
                continue
            raw = resource.get("Properties", {}).get("Manifest")
            for doc in json.loads(raw if isinstance(raw, str) else placeholders(raw)):
                found[object_key(doc)] = f"{stack}/{logical_id}"
    return found


def asset_chart_dir(record: HelmReleaseRecord, assembly_dir: Path) -> Path | None:
    """The staged directory of a chart asset in the cloud assembly (``cdk.out``)."""
    digest = re.search(r"([0-9a-f]{64})\.zip", record.asset_url or "")
    if digest is None:
        return None
    staged = [d for d in sorted(assembly_dir.glob(f"asset.{digest.group(1)}*")) if (d / "Chart.yaml").is_file()]
    return staged[0] if staged else None


def _load_all(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d]


def read_manifest_dir(manifests_dir: Path) -> dict[Path, list[dict[str, Any]]]:
    """``file -> documents`` for every YAML file under ``manifests_dir``, as ``kubectl apply -R`` walks it."""
    return {p: _load_all(p.read_text()) for p in sorted(manifests_dir.rglob("*.yaml"))}


def read_releases(releases_dir: Path) -> list[dict[str, Any]]:
    index = releases_dir / RELEASES_INDEX
    return json.loads(index.read_text()) if index.is_file() else []


def asset_objects(
    templates: Mapping[str, Mapping[str, Any]], assembly_dir: Path
) -> tuple[dict[ObjectKey, str], list[str]]:
    """``(object key -> where, problems)`` for the objects of every chart asset (a CRD chart) of the templates,
    read from its staged copy in the cloud assembly ``assembly_dir``."""
    found: dict[ObjectKey, str] = {}
    problems: list[str] = []
    for record in helm_release_records(templates):
        if not record.is_asset:
            continue
        where = f"{record.stack}/{record.logical_id} (release {record.release})"
        staged = asset_chart_dir(record, assembly_dir)
        if staged is None:
            problems.append(f"{where}: its chart asset is not in {assembly_dir} -- fix: pass the synthesized cdk.out")
            continue
        for path in sorted((staged / "files").glob("*.yaml")):
            for doc in _load_all(path.read_text()):
                found[object_key(doc)] = where
    return found, problems


def missing_objects(
    templates: Mapping[str, Mapping[str, Any]],
    manifests_dir: Path,
    releases_dir: Path,
    *,
    assembly_dir: Path,
) -> list[str]:
    """What the templates apply that ``manifests_dir`` / ``releases_dir`` lack (empty: complete).

    ``assembly_dir``: the cloud assembly the templates come from (chart assets are staged there).
    """
    written = {object_key(d) for docs in read_manifest_dir(manifests_dir).values() for d in docs}
    assets, problems = asset_objects(templates, assembly_dir)
    applied = {**applied_objects(templates), **assets}
    problems += [
        f"{where}: {kind} {ns + '/' if ns else ''}{name} ({api}) is applied by the templates but not in "
        f"{manifests_dir} -- fix: write it through the chart registry, constructs.applied.add_manifest, or "
        "(a CRD chart) synth.write_chart_manifests"
        for (api, kind, ns, name), where in applied.items()
        if (api, kind, ns, name) not in written
    ]
    releases = {(r["release"], r["namespace"], r["chart"], r["version"]) for r in read_releases(releases_dir)}
    problems += [
        f"{r.stack}/{r.logical_id}: Helm release {r.release} (chart {r.chart} {r.version}, namespace {r.namespace}) "
        f"is installed by the templates but not listed in {releases_dir / RELEASES_INDEX} -- fix: write it "
        "(synth.write_helm_releases)"
        for r in helm_release_records(templates)
        if not r.is_asset and (r.release, r.namespace, r.chart, r.version) not in releases
    ]
    return problems


# -- apply order ------------------------------------------------------------------------------------
def _crd_kinds(text: str) -> set[tuple[str, str]]:
    """``(group, kind)`` of every CRD in a (possibly templated) YAML text."""
    found: set[tuple[str, str]] = set()
    for doc in re.split(r"^---\s*$", text, flags=re.M):
        if not re.search(r"^kind:\s*CustomResourceDefinition\s*$", doc, re.M):
            continue
        group = re.search(r"^\s+group:\s*['\"]?([\w.-]+)", doc, re.M)
        kind = re.search(r"^\s+names:\s*\n(?:\s+.*\n)*?\s+kind:\s*['\"]?(\w+)", doc, re.M)
        if group and kind:
            found.add((group.group(1), kind.group(1)))
    return found


@cache
def release_crds(
    chart: str, version: str, skip_crds: bool, charts_dir: Path = CHARTS_DIR
) -> frozenset[tuple[str, str]]:
    """``(group, kind)`` of the CRDs a release of the vendored ``chart`` ``version`` installs."""
    found: set[tuple[str, str]] = set()
    try:
        archive = chart_archive(chart, version, charts_dir)
    except NotVendoredError:
        archive = None
    if archive is not None:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.isfile() or not member.name.endswith((".yaml", ".yml")):
                    continue
                in_crds_folder = "/crds/" in member.name and "/templates/" not in member.name
                if in_crds_folder and skip_crds:
                    continue  # --skip-crds: Helm leaves every crds/ folder alone
                text = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
                if "CustomResourceDefinition" in text:
                    found |= _crd_kinds(text)
    extra = VENDORED_CRDS_OF_CHART.get(chart)
    if extra is not None:
        for path in sorted(DEFAULT_CRD_DIR.glob(extra[0])):
            found |= _crd_kinds(path.read_text())
    return frozenset(found)


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


@dataclass(frozen=True)
class _Walk:
    namespaces: set[str] = field(default_factory=lambda: set(BUILTIN_NAMESPACES))
    crds: set[tuple[str, str]] = field(default_factory=set)


def _object_problem(doc: Mapping[str, Any], where: str, seen: _Walk, kubernetes_version: str) -> Iterator[str]:
    api, kind, ns, name = object_key(doc)
    what = f"{where}: {kind} {ns + '/' if ns else ''}{name}"
    if ns is not None and ns not in seen.namespaces:
        yield f"{what}: its namespace '{ns}' is not created before it -- fix: put the Namespace in an earlier step"
    builtin = _core_validator(kubernetes_version, api, kind) is not None
    if not builtin and (_group(api), kind) not in seen.crds:
        yield (
            f"{what}: the CRD of {kind} ({_group(api)}) is not installed before it (by an earlier CRD file or Helm "
            "release) -- fix: move it to a step after the release that installs the CRD"
        )
    if kind == "Namespace":
        seen.namespaces.add(name)
    if kind == "CustomResourceDefinition":
        spec = doc.get("spec") or {}
        seen.crds.add((str(spec.get("group")), str((spec.get("names") or {}).get("kind"))))


def order_problems(
    manifests_dir: Path,
    releases: Sequence[Mapping[str, Any]],
    *,
    steps: Sequence[str] = APPLY_STEPS,
    charts_dir: Path = CHARTS_DIR,
    kubernetes_version: str = versions.KUBERNETES_VERSION,
) -> list[str]:
    """Every object (and release) whose namespace or CRD comes later than it in the documented order.

    ``steps``: directory names under ``manifests_dir``, in order; ``CONTROLLERS_STEP`` stands for the Helm
    releases (``releases``, entries of ``releases.json``, in order). A YAML file outside every step is a
    problem too: nobody would apply it.
    """
    seen = _Walk()
    problems: list[str] = []
    files = read_manifest_dir(manifests_dir)
    placed: set[Path] = set()
    for step in steps:
        if step == CONTROLLERS_STEP:
            for r in releases:
                where = f"helm release {r['release']}"
                if r["namespace"] not in seen.namespaces and not r.get("create_namespace"):
                    problems.append(
                        f"{where}: its namespace '{r['namespace']}' is not created before it -- fix: put the "
                        "Namespace in 00-namespaces"
                    )
                seen.crds.update(release_crds(r["chart"], r["version"], bool(r.get("skip_crds")), charts_dir))
            continue
        for path, docs in files.items():
            if path.parent != manifests_dir / step:
                continue
            placed.add(path)
            for doc in docs:
                problems += _object_problem(doc, f"{step}/{path.name}", seen, kubernetes_version)
    problems += [
        f"{p.relative_to(manifests_dir)}: not in any step directory ({', '.join(s for s in steps if s != CONTROLLERS_STEP)})"
        " -- fix: write it into one"
        for p in files
        if p not in placed
    ]
    return problems


__all__ = [
    "HelmReleaseRecord",
    "applied_objects",
    "asset_objects",
    "helm_release_records",
    "missing_objects",
    "object_key",
    "order_problems",
    "read_manifest_dir",
    "read_releases",
    "release_crds",
]
