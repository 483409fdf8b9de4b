"""``CrdChart``: a chart's CRDs installed as their own Helm release, so a version bump upgrades them.

Helm installs a chart's ``crds/`` folder once and never upgrades it (``helm upgrade`` skips it by
design), so bumping Karpenter or LeaderWorkerSet in :mod:`eks_llm_stack.versions` would leave
the cluster on the old CRD schemas. This construct builds, at synth time, a small chart whose
*templates* are the CRD files of the vendored chart (``third_party/charts/<chart>-<version>.tgz``,
``crds/``), and installs it as a chart asset: templates are upgraded like any other object, and
helm 4 (the kubectl layer's) applies them server-side, so even the 1.3 MB LeaderWorkerSet CRD fits
(it would not fit a CloudFormation template, limited to 1 MB, nor a client-side-apply annotation).
The main chart is then installed with ``skip_crds``.

Clusters whose CRDs were first created by the main chart's ``crds/`` folder carry no Helm ownership
metadata: adopt them once before the first deploy with this construct (see docs/conformance.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import yaml
from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from .. import versions
from ..gates.helm import cache_dir
from ..gates.nag import acknowledge
from ..third_party import CHARTS_DIR, chart_archive

#: The one template of a CRD chart: every file under files/ verbatim (``.Files.Get`` does not parse
#: templates, and CRD descriptions may contain ``{{``).
_TEMPLATE = '{{- range $path, $_ := .Files.Glob "files/*.yaml" }}\n---\n{{ $.Files.Get $path }}\n{{- end }}\n'


def crd_files(pin: versions.HelmChartPin, charts_dir: Path = CHARTS_DIR) -> dict[str, bytes]:
    """File name -> content of every CRD in the vendored chart's ``crds/`` folder."""
    archive = chart_archive(pin.chart, pin.version, charts_dir)
    with tarfile.open(archive) as tar:
        found = {
            Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile() and m.name.split("/")[1:2] == ["crds"] and m.name.endswith((".yaml", ".yml"))
        }
    if not found:
        raise ValueError(f"{archive.name} has no crds/ folder: nothing to install as a CRD chart")
    return dict(sorted(found.items()))


def crd_chart_name(pin: versions.HelmChartPin) -> str:
    return f"{pin.chart}-crds"


def build_crd_chart(pin: versions.HelmChartPin, charts_dir: Path = CHARTS_DIR) -> Path:
    """The CRD chart's directory (built once per pin in the cache directory, identical on every synth)."""
    files = crd_files(pin, charts_dir)
    digest = hashlib.sha256(b"".join(n.encode() + c for n, c in files.items()) + _TEMPLATE.encode()).hexdigest()
    # No dots in the name: the asset staging directory keeps anything after a dot as an "extension".
    target = cache_dir() / "crd-charts" / f"{crd_chart_name(pin)}-{digest[:16]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    chart = {
        "apiVersion": "v2",
        "name": crd_chart_name(pin),
        "version": pin.version.removeprefix("v"),
        "appVersion": pin.version,
        "description": f"The CRDs of {pin.chart} {pin.version} (its crds/ folder) as templates, so upgrades apply them",
    }
    (tmp / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
    (tmp / "templates").mkdir()
    (tmp / "templates" / "crds.yaml").write_text(_TEMPLATE)
    (tmp / "files").mkdir()
    for name, content in files.items():
        (tmp / "files" / name).write_bytes(content)
    try:
        os.replace(tmp, target)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class CrdChart(Construct):
    """The CRDs of ``pin``'s vendored chart as a Helm release of their own (``<chart>-crds``).

    Attribute: ``chart`` (the ``HelmChart``; make the main chart depend on it and install it with
    ``skip_crds=True``).
    """

    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, pin: versions.HelmChartPin) -> None:
        super().__init__(scope, id)
        self.pin = pin
        self.asset = s3_assets.Asset(self, "Asset", path=str(build_crd_chart(pin)))
        self.chart = eks.HelmChart(
            self,
            "Chart",
            cluster=cluster,
            chart_asset=self.asset,
            release=crd_chart_name(pin),
            # CRDs are cluster-scoped; the release record lives in kube-system.
            namespace="kube-system",
            create_namespace=False,
            wait=True,
            timeout=Duration.minutes(5),
        )
        _acknowledge_asset_read(cluster)


def _acknowledge_asset_read(cluster: eks.ICluster) -> None:
    """The kubectl handler downloads chart assets: aws-cdk-lib grants it ``Asset.grant_read`` on the
    bootstrap assets bucket (wildcard actions ``s3:GetObject*``/``GetBucket*``/``List*`` and objects)."""
    provider = cluster.node.try_find_child("KubectlProvider")
    handler = provider.node.try_find_child("Handler") if provider is not None else None
    role = handler.node.try_find_child("ServiceRole") if handler is not None else None
    policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
    if policy is None or policy.node.default_child is None:
        return  # an imported cluster: its provider's role is not ours to annotate
    stack = Stack.of(cluster)

    def shown(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    qualifier = stack.node.try_get_context("@aws-cdk/core:bootstrapQualifier") or "hnb659fds"
    bucket = (
        f"arn:{shown(stack.partition, 'Partition')}:s3:::cdk-{qualifier}-assets-"
        f"{shown(stack.account, 'AccountId')}-{shown(stack.region, 'Region')}/*"
    )
    reason = (
        "Read-only access of the kubectl handler to the CDK bootstrap assets bucket, granted by aws-cdk-lib "
        "(Asset.grantRead) so it can download the CRD chart assets it installs."
    )
    for finding in ("Action::s3:GetBucket*", "Action::s3:GetObject*", "Action::s3:List*", f"Resource::{bucket}"):
        acknowledge(policy.node.default_child, f"AwsSolutions-IAM5[{finding}]", reason)


def crd_names(pin: versions.HelmChartPin) -> list[str]:
    """``metadata.name`` of every CRD the chart installs (for adoption commands and tests)."""
    names: list[str] = []
    for content in crd_files(pin).values():
        for doc in yaml.load_all(io.BytesIO(content), Loader=yaml.CSafeLoader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
    return names
