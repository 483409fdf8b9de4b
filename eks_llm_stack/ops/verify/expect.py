"""What a deployed platform must show, from the synthesized templates and the profile's plan.

* Helm releases: every ``Custom::AWSCDK-EKS-HelmChart`` of the synthesized stacks (release, namespace,
  chart, version) — the templates are the truth of what ``cdk deploy`` installs, so nothing here
  repeats which profile installs which chart.
* CRDs: for each release, the vendored CRDs of its chart (``third_party/crds``) at their storage
  version, the API version our manifests are written against.
* GPU nodes: each pool of the plan advertises ``nvidia.com/gpu`` (and ``vpc.amazonaws.com/efa`` for
  an EFA pool) on its nodes.
* DCGM exporter: with observability on, its DaemonSet is ready and its Service serves the GPU fields.
* Models: each model's Service answers ``/health`` and one completion, with the key of its API-key
  Secret when it has one; a model behind a load balancer is asked through it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ...conventions import EFA_RESOURCE, GPU_RESOURCE
from ...third_party import CRD_DIR

#: Which vendored CRD groups each chart installs (its own ``crds/``, or its ``-crds`` release).
CHART_CRD_GROUPS: Mapping[str, tuple[str, ...]] = {
    "karpenter": ("karpenter.sh", "karpenter.k8s.aws"),
    "lws": ("leaderworkerset.x-k8s.io",),
    "kube-prometheus-stack": ("monitoring.coreos.com",),
    "external-secrets": ("external-secrets.io",),
    "keda": ("keda.sh",),
    "aws-load-balancer-controller": ("elbv2.k8s.aws",),
}
#: The field whose presence on the exporter's /metrics shows it reads the GPUs.
DCGM_PROBE_FIELD = "DCGM_FI_DEV_GPU_UTIL"


@dataclass(frozen=True, kw_only=True)
class ExpectedRelease:
    name: str
    namespace: str
    chart: str
    version: str
    stack: str


@dataclass(frozen=True, kw_only=True)
class ExpectedCrd:
    name: str
    version: str
    release: str


@dataclass(frozen=True, kw_only=True)
class ExpectedPool:
    name: str
    resources: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ExpectedDcgm:
    namespace: str
    name: str
    port_name: str


@dataclass(frozen=True, kw_only=True)
class ExpectedModel:
    name: str
    namespace: str
    service: str
    port: int
    api_key_secret: str | None
    #: ``alb`` / ``nlb`` when the plan puts a load balancer in front, else None.
    ingress: str | None = None
    ingress_host: str | None = None
    #: The object holding the load balancer's address: an Ingress (alb) or a Service (nlb).
    ingress_object: str | None = None


@dataclass(frozen=True, kw_only=True)
class Expectations:
    profile: str
    releases: tuple[ExpectedRelease, ...]
    crds: tuple[ExpectedCrd, ...]
    pools: tuple[ExpectedPool, ...]
    dcgm: ExpectedDcgm | None
    models: tuple[ExpectedModel, ...]


def releases_of(templates: Mapping[str, Mapping[str, Any]], assembly_dir: Path | None) -> tuple[ExpectedRelease, ...]:
    """Every Helm release of synthesized templates (stack name -> template)."""
    from ...gates.helm_values import helm_releases

    return tuple(
        ExpectedRelease(name=r.release, namespace=r.namespace, chart=r.chart, version=r.version, stack=r.stack)
        for r in helm_releases(templates, assembly_dir)
    )


def assembly_templates(assembly_dir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template of a cloud assembly directory (``cdk.out``)."""
    return {
        p.name.removesuffix(".template.json"): json.loads(p.read_text())
        for p in sorted(assembly_dir.glob("*.template.json"))
    }


def synthesized_releases(profile: Any) -> tuple[ExpectedRelease, ...]:
    """Synthesize ``profile`` in-process (no credentials, no lookups) and return its Helm releases."""
    from aws_cdk import App

    from ...synth import build

    with tempfile.TemporaryDirectory(prefix="eks-llm-stack-verify-") as out:
        app = App(context={"nag": "false"}, outdir=out, builtin_cloud_formation_validation=False)
        build(profile, app=app)
        assembly = app.synth()
        return releases_of({s.stack_name: s.template for s in assembly.stacks}, Path(out))


@cache
def vendored_crds() -> tuple[tuple[str, str, str], ...]:
    """``(group, name, storage version)`` of every vendored CRD."""
    import yaml

    found = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        # libyaml: the CRD files are 4.8 MB, minutes for the pure-Python parser.
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            storage = next(v["name"] for v in doc["spec"]["versions"] if v.get("storage"))
            found.append((str(doc["spec"]["group"]), str(doc["metadata"]["name"]), str(storage)))
    return tuple(found)


def crds_of(releases: Iterable[ExpectedRelease]) -> tuple[ExpectedCrd, ...]:
    """The vendored CRDs of the charts these releases install, once each."""
    out: dict[str, ExpectedCrd] = {}
    for r in releases:
        groups = CHART_CRD_GROUPS.get(r.chart.removesuffix("-crds"), ())
        for group, name, version in vendored_crds():
            if group in groups and name not in out:
                out[name] = ExpectedCrd(name=name, version=version, release=r.name)
    return tuple(out.values())


def expectations(plan: Any, releases: tuple[ExpectedRelease, ...]) -> Expectations:
    """What the cluster of ``plan`` (a :class:`~eks_llm_stack.plan.PlatformPlan`) must show."""
    from ...charts.dcgm_exporter import DcgmExporterProps
    from ...charts.vllm import PORT
    from ...constructs.observability import NODE_AGENTS_NAMESPACE

    profile = plan.profile
    pools = tuple(
        ExpectedPool(name=p.name, resources=(GPU_RESOURCE, EFA_RESOURCE) if p.efa else (GPU_RESOURCE,))
        for p in plan.pools
    )
    dcgm = (
        # The Platform stack runs the exporter with its default name in the node agents' namespace.
        ExpectedDcgm(namespace=NODE_AGENTS_NAMESPACE, name=DcgmExporterProps().name, port_name="metrics")
        if profile.observability.enabled
        else None
    )
    models = []
    for d in plan.models:
        m = d.model
        ing = m.ingress
        models.append(
            ExpectedModel(
                name=m.name,
                namespace=m.namespace,
                service=m.name,
                port=PORT,
                api_key_secret=m.api_key_secret,
                ingress=ing.kind if ing is not None else None,
                ingress_host=ing.host if ing is not None else None,
                ingress_object=(m.name if ing.kind == "alb" else f"{m.name}-lb") if ing is not None else None,
            )
        )
    return Expectations(
        profile=profile.name,
        releases=releases,
        crds=crds_of(releases),
        pools=pools,
        dcgm=dcgm,
        models=tuple(models),
    )
