"""Render cdk8s charts to YAML files, without going through CloudFormation.

GitOps users apply ``dist/manifests/*.yaml`` directly. Values that only CloudFormation knows
(a file system's DNS name, a role ARN) are CDK tokens inside the charts; here they become
``${LogicalId.Attribute}`` placeholders that name the stack resource to read them from, so
the YAML stays valid and says exactly what to substitute.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cdk8s
import yaml


def placeholders(value: Any) -> Any:
    """Replace CloudFormation intrinsics in a resolved structure by readable placeholders."""
    if isinstance(value, list):
        return [placeholders(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return "${" + str(arg) + "}"
        if key == "Fn::GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return "${" + f"{parts[0]}.{parts[1]}" + "}"
        if key == "Fn::ImportValue":
            inner = placeholders(arg)
            return "${import:" + str(inner) + "}"
        if key == "Fn::Join":
            sep, items = arg
            return str(sep).join(str(placeholders(i)) for i in items)
        if key == "Fn::Select":
            idx, items = arg
            return "${select:" + f"{idx}:{placeholders(items)}" + "}"
        if key == "Fn::Sub":
            return placeholders(arg if isinstance(arg, str) else arg[0])
    return {k: placeholders(v) for k, v in value.items()}


def dump_documents(docs: list[dict[str, Any]]) -> str:
    """``docs`` as a multi-document YAML stream, keys in their order, block style."""
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def chart_documents(chart: cdk8s.Chart, resolver: Any | None = None) -> list[dict[str, Any]]:
    """The manifests of ``chart``; with ``resolver`` (a CDK ``Stack``), tokens become placeholders."""
    docs: list[dict[str, Any]] = list(chart.to_json())
    if resolver is not None:
        # One resolve for the whole chart: each call is a round trip to the jsii runtime.
        docs = placeholders(resolver.resolve(docs))
    return docs


def write_manifests(
    charts: Iterable[tuple[str, cdk8s.Chart]], out_dir: Path, resolver: Any | None = None
) -> list[Path]:
    """Write one ``<name>.yaml`` per chart into ``out_dir`` (emptied first); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.yaml"):
        old.unlink()
    written: list[Path] = []
    for name, chart in charts:
        path = out_dir / f"{name}.yaml"
        docs = chart_documents(chart, resolver)
        path.write_text(dump_documents(docs))
        written.append(path)
    return written
