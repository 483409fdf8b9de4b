"""Render cdk8s charts to YAML files, without going through CloudFormation.

GitOps users apply ``dist/manifests/<step>/*.yaml`` directly (docs/gitops.md). Values that only CloudFormation knows
(a file system's DNS name, a role ARN) are CDK tokens inside the charts; here they become
``${LogicalId.Attribute}`` placeholders that name the stack resource to read them from, so
the YAML stays valid and says exactly what to substitute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import cdk8s
import yaml

from .yaml_writer import dump_block_documents


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


class _Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that analyses each distinct string once.

    The analysis (which styles a scalar allows) depends on the string alone, and the same strings (labels,
    images, scripts, acknowledgment reasons) recur in every model's chart: remembering it takes about a
    third off writing ``dist/manifests``, with the same bytes. (libyaml's emitter would be faster still but
    folds long quoted strings differently, which would rewrite every manifest once.)
    """

    _analyses: ClassVar[dict[tuple[str, bool], Any]] = {}

    def analyze_scalar(self, scalar: str) -> Any:
        key = (scalar, bool(self.allow_unicode))
        found = self._analyses.get(key)
        if found is None:
            found = self._analyses[key] = super().analyze_scalar(scalar)
        return found


def dump_documents(docs: list[dict[str, Any]]) -> str:
    """``docs`` as a multi-document YAML stream, keys in their order, block style: the bytes of
    ``yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)``.

    Plain JSON-like documents (all that charts produce) go through :mod:`.yaml_writer`, several times
    faster; anything it does not reproduce exactly is written by PyYAML itself.
    """
    text = dump_block_documents(docs)
    if text is None:
        text = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return text


def chart_documents(chart: cdk8s.Chart, resolver: Any | None = None) -> list[dict[str, Any]]:
    """The manifests of ``chart``; with ``resolver`` (a CDK ``Stack``), tokens become placeholders."""
    docs: list[dict[str, Any]] = list(chart.to_json())
    return docs if resolver is None else resolve_documents(docs, resolver)


def resolve_documents(docs: list[dict[str, Any]], resolver: Any) -> list[dict[str, Any]]:
    """``docs`` with their tokens resolved by ``resolver`` (a CDK ``Stack``) and made placeholders."""
    if all(_plain(d) for d in docs):
        # Nothing for the stack to resolve, and nothing its round trip would change (see _plain): most
        # charts, every model's among them.
        same: list[dict[str, Any]] = placeholders(docs)
        return same
    # One resolve for all of them: each call is a round trip to the jsii runtime.
    resolved: list[dict[str, Any]] = placeholders(resolver.resolve(docs))
    return resolved


#: What marks a CDK string or list token (``${Token[...]}``, ``#{Token[...]}``).
_TOKEN_MARK = "{Token["
#: Integers JavaScript holds exactly.
_SAFE_INTEGER = 2**53
#: Property names JavaScript orders first, numerically ("array index" keys).
_INDEX_KEY = re.compile(r"0|[1-9][0-9]{0,9}")


def _plain(value: Any) -> bool:
    """Whether ``value`` comes back from ``Stack.resolve`` exactly as it went in.

    True for JSON made of strings without a token mark, safe integers, booleans, lists and objects whose
    keys are neither tokens nor array indexes. Anything else takes the round trip: a token (string,
    list or number: CDK number tokens are doubles below -1e288, so every float does), ``None`` (the
    jsii runtime passes it as ``undefined``, which resolving drops), a float (``1.0`` comes back ``1``),
    an index key (JavaScript moves it first), or an object of any other type.
    """
    if isinstance(value, str):
        return _TOKEN_MARK not in value
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_SAFE_INTEGER < value < _SAFE_INTEGER
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and _TOKEN_MARK not in k and not _INDEX_KEY.fullmatch(k) and _plain(v)
            for k, v in value.items()
        )
    return False


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


# -- the apply order of dist/manifests -------------------------------------------------------------
#: Step directories of ``dist/manifests``, applied in this order (docs/gitops.md). Between the CRDs and the
#: platform objects come the Helm releases of the controllers (``dist/helm-releases/install.sh``).
NAMESPACES_STEP = "00-namespaces"
CRDS_STEP = "10-crds"
CONTROLLERS_STEP = "20-controllers"
PLATFORM_STEP = "30-platform"
SERVING_STEP = "40-serving"
#: Every step, in order; ``CONTROLLERS_STEP`` is the Helm step (no directory under dist/manifests).
APPLY_STEPS = (NAMESPACES_STEP, CRDS_STEP, CONTROLLERS_STEP, PLATFORM_STEP, SERVING_STEP)


def manifest_layout(
    sources: Iterable[tuple[str, list[dict[str, Any]], bool]],
) -> dict[str, list[dict[str, Any]]]:
    """``"<step>/<file>.yaml" -> documents`` for ``(name, documents, serving)`` sources.

    Namespaces go first (``00-namespaces``), CRDs next (``10-crds``), everything else after the
    controllers: the Serving stack's objects in ``40-serving``, the rest in ``30-platform``. A source
    keeps one file, ``<name>.yaml``, unless its objects span steps: then its namespaces are
    ``<name>-namespaces.yaml`` and its CRDs ``<name>-crds.yaml``. File names are unique over all steps.
    """
    layout: dict[str, list[dict[str, Any]]] = {}
    stems: dict[str, str] = {}
    for name, docs, serving in sources:
        parts = {
            NAMESPACES_STEP: [d for d in docs if d.get("kind") == "Namespace"],
            CRDS_STEP: [d for d in docs if d.get("kind") == "CustomResourceDefinition"],
            SERVING_STEP if serving else PLATFORM_STEP: [
                d for d in docs if d.get("kind") not in ("Namespace", "CustomResourceDefinition")
            ],
        }
        used = {step: part for step, part in parts.items() if part}
        for step, part in used.items():
            stem = name
            if len(used) > 1 and step == NAMESPACES_STEP:
                stem = f"{name}-namespaces"
            elif len(used) > 1 and step == CRDS_STEP:
                stem = f"{name}-crds"
            if stem in stems:
                raise ValueError(f"two manifest sources write '{stem}.yaml' ({stems[stem]}/ and {step}/): rename one")
            stems[stem] = step
            layout[f"{step}/{stem}.yaml"] = part
    return layout
