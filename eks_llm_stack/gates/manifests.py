"""Validate Kubernetes manifests against the schemas the API server enforces.

Core kinds are checked against the Kubernetes JSON schemas of the cluster's version
(``kubernetes-validate``, strict: unknown fields are errors); custom kinds against the
``openAPIV3Schema`` of their CustomResourceDefinition. A kind with no schema at all is an
error too, so a typo in ``apiVersion`` cannot slip through as "unknown, skipped".

CEL rules (``x-kubernetes-validations``) are not evaluated: a plain JSON-schema validator
cannot run them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .. import versions

#: Upstream CRDs at the pinned releases, vendored with the package (``third_party/README.md``).
DEFAULT_CRD_DIR = Path(__file__).resolve().parent.parent / "third_party" / "crds"


def _structural_to_jsonschema(node: Any) -> Any:
    """Translate the Kubernetes OpenAPI extensions a plain validator does not know."""
    if isinstance(node, list):
        return [_structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
    out.pop("nullable", None)
    # The API server rejects unknown fields under `kubectl apply --validate=strict`; mirror that.
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _crd_schemas(crd_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> JSON schema`` for every served version of every CRD in ``crd_dir``."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for ver in crd["spec"]["versions"]:
                if not ver.get("served", True):
                    continue
                raw = ver.get("schema", {}).get("openAPIV3Schema")
                if raw is None:
                    continue
                schema = _structural_to_jsonschema(copy.deepcopy(raw))
                # Top level: apiVersion/kind/metadata are always allowed.
                schema.setdefault("properties", {}).update(
                    apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"}
                )
                schemas[(f"{group}/{ver['name']}", kind)] = schema
    return schemas


@cache
def _core_validator(kubernetes_version: str, api_version: str, kind: str) -> jsonschema.Validator | None:
    """A strict validator for a core kind, from the schemas shipped in ``kubernetes-validate``.

    Built here rather than through ``kubernetes_validate.validate`` so that every error of a
    manifest is reported, not only the first.
    """
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    wanted = utils.major_minor(kubernetes_version)
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", kubernetes_version)
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", kubernetes_version)
    registry: Registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _describe(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{doc.get('kind', '?')} {ns}{meta.get('name', '?')} ({doc.get('apiVersion', '?')})"


def validate_manifest(
    doc: Mapping[str, Any],
    *,
    crd_dir: Path | None = DEFAULT_CRD_DIR,
    kubernetes_version: str = versions.KUBERNETES_VERSION,
) -> list[str]:
    """Every schema violation of one manifest, as readable strings (empty: valid)."""
    what = _describe(doc)
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{what}: apiVersion and kind are required strings"]
    crds = _crd_schemas(crd_dir) if crd_dir is not None else {}
    schema = crds.get((api_version, kind))
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{what}: {'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
            for err in sorted(validator.iter_errors(dict(doc)), key=lambda e: list(map(str, e.absolute_path)))
        ]
    validator = _core_validator(kubernetes_version, api_version, kind)
    if validator is None:
        return [f"{what}: no schema for this kind in Kubernetes {kubernetes_version} nor in the CRDs of {crd_dir}"]
    return [
        f"{what}: {'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(dict(doc)), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate_manifests(
    docs: Iterable[Mapping[str, Any]],
    *,
    crd_dir: Path | None = DEFAULT_CRD_DIR,
    kubernetes_version: str = versions.KUBERNETES_VERSION,
) -> list[str]:
    """Every schema violation of every manifest (``List`` kinds are expanded)."""
    problems: list[str] = []
    for doc in docs:
        if not doc:
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            problems += validate_manifests(doc["items"], crd_dir=crd_dir, kubernetes_version=kubernetes_version)
            continue
        problems += validate_manifest(doc, crd_dir=crd_dir, kubernetes_version=kubernetes_version)
    return problems
