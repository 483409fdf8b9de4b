"""Build and synthesize the platform for a profile: CloudFormation to ``cdk.out``, manifests to YAML.

``app.py`` (run by the CDK CLI, or directly by ``make synth``) and the test suite both go through
:func:`build`, so the tests exercise exactly what ``cdk synth`` produces.

``make synth`` runs ``app.py`` itself (:func:`synthesize_direct`): the app writes the cloud assembly
with the context the CDK CLI would pass, prints the CLI's warnings and the summary in the same
process. That saves the CLI's own start-up (Node.js, the toolkit) and a second Python process for the
summary; ``cdk synth``/``diff``/``deploy`` still run the same app from ``cdk.json``.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import App

from .charts.render import APPLY_STEPS, CRDS_STEP, dump_documents, manifest_layout, resolve_documents
from .config import Profile, load_profile, validate_profile
from .config.ephemeral import context_problems
from .config.profile import read_profile_data
from .errors import ConfigError, EksLlmStackError
from .stacks import LlmPlatform, build_platform

#: Context keys read by the app (``cdk synth -c key=value``).
CONTEXT_PROFILE = "profile"
CONTEXT_NAME = "name"
CONTEXT_EXPIRES_AT = "expires_at"
CONTEXT_DEPLOYMENT_ID = "deployment_id"
#: Comma-separated IAM ARNs added to ``cluster.admins`` (``ephemeral up --admin-arn``: the CI role).
CONTEXT_ADMIN_ARNS = "admin_arns"
CONTEXT_MANIFESTS_DIR = "manifests_dir"
CONTEXT_NAG = "nag"
#: Comma-separated CIDRs of CI runners, merged into ``cluster.endpoint.runner_cidrs``.
CONTEXT_RUNNER_CIDRS = "runner_cidrs"
DEFAULT_PROFILE = "default"
#: Where ``make synth`` writes the manifests (``-c manifests_dir=dist/manifests``).
DEFAULT_MANIFESTS_DIR = "dist/manifests"
#: Beside the manifests directory: the controllers' Helm releases (:func:`write_helm_releases`).
HELM_RELEASES_DIR = "helm-releases"
#: What the CDK CLI adds to the context of every app it runs (``aws-cdk`` ``exec.ts``, defaults of
#: ``--path-metadata``, ``--asset-metadata``, ``--version-reporting``): resource path metadata, the
#: ``CDKMetadata`` resource, every stack bundled. A direct run passes the same, so the templates match.
CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
}
#: ``cdk.json`` settings that turn the keys above off, as the CLI reads them.
_CLI_SETTINGS = {
    "pathMetadata": "aws:cdk:enable-path-metadata",
    "assetMetadata": "aws:cdk:enable-asset-metadata",
    "versionReporting": "aws:cdk:version-reporting",
}


@dataclass(frozen=True)
class Built:
    app: App
    profile: Profile
    platform: LlmPlatform


def resolve_profile(
    name_or_path: str,
    *,
    name_override: str | None = None,
    runner_cidrs: str | None = None,
    admin_arns: str | None = None,
) -> Profile:
    """Load a profile; ``name_override`` (an ephemeral environment's name) replaces its prefix, and
    ``runner_cidrs`` (comma-separated, the CI runner's egress) is added to ``cluster.endpoint.runner_cidrs``,
    and ``admin_arns`` (comma-separated, the CI role of ``ephemeral up --admin-arn``) to ``cluster.admins``.

    The overrides are applied to the file's own data before validation, so every rule sees
    the final values (and the cluster is named after the override too).
    """
    if not name_override and not runner_cidrs and not admin_arns:
        return load_profile(name_or_path)
    data, subject = read_profile_data(name_or_path)
    if name_override:
        data["prefix"] = name_override
        cluster = data.get("cluster")
        if isinstance(cluster, dict):
            cluster.pop("name", None)
        subject = f"{subject} with name '{name_override}'"
    if runner_cidrs:
        cluster = data.setdefault("cluster", {})
        if isinstance(cluster, dict):
            endpoint = cluster.setdefault("endpoint", {})
            if isinstance(endpoint, dict):
                extra = [c.strip() for c in str(runner_cidrs).split(",") if c.strip()]
                endpoint["runner_cidrs"] = [*(endpoint.get("runner_cidrs") or []), *extra]
    if admin_arns:
        cluster = data.setdefault("cluster", {})
        if isinstance(cluster, dict):
            # Validated with the profile's own admins (ARN form) below.
            extra = [a.strip() for a in str(admin_arns).split(",") if a.strip()]
            cluster["admins"] = [*(cluster.get("admins") or []), *extra]
    return validate_profile(data, subject=subject)


def build(
    profile: Profile | str | None = None,
    *,
    app: App | None = None,
    context: dict[str, Any] | None = None,
    expires_at: str | None = None,
    deployment_id: str | None = None,
) -> Built:
    """Build the app for ``profile`` (a Profile, a profile name, or None: from the ``profile`` context)."""
    # cfn-lint runs over every template in the test suite; the built-in validator would repeat
    # it at every synth (about 2 s and 260 MiB on this kind of machine).
    app = app or App(context=context or {}, builtin_cloud_formation_validation=False)
    if not isinstance(profile, Profile):
        name = profile or app.node.try_get_context(CONTEXT_PROFILE) or DEFAULT_PROFILE
        profile = resolve_profile(
            str(name),
            name_override=app.node.try_get_context(CONTEXT_NAME),
            runner_cidrs=app.node.try_get_context(CONTEXT_RUNNER_CIDRS),
            admin_arns=app.node.try_get_context(CONTEXT_ADMIN_ARNS),
        )
    expires_at = expires_at or app.node.try_get_context(CONTEXT_EXPIRES_AT)
    deployment_id = deployment_id or app.node.try_get_context(CONTEXT_DEPLOYMENT_ID)
    problems = context_problems(ephemeral=profile.ephemeral, expires_at=expires_at, deployment_id=deployment_id)
    if problems:
        raise ConfigError(f"profile '{profile.name}'", problems)
    platform = build_platform(app, profile, expires_at=expires_at, deployment_id=deployment_id)
    if str(app.node.try_get_context(CONTEXT_NAG)).lower() != "false":
        # AwsSolutions rules as a synth-time gate: findings not acknowledged on their resource, with a
        # reason, are errors of `cdk synth` (and of the test suite).
        from .gates.nag import add_nag_checks

        add_nag_checks(app)
    return Built(app=app, profile=profile, platform=platform)


def write_chart_manifests(built: Built, out_dir: Path) -> list[Path]:
    """Write every Kubernetes object the stacks apply to ``out_dir/<step>/<name>.yaml`` (tokens become
    placeholders): the registry's charts, the objects constructs apply themselves (a controller's
    namespace, the monitoring StorageClass, the Grafana login's ExternalSecret) and the CRDs of the CRD
    charts, in the apply steps of :data:`charts.render.APPLY_STEPS` (docs/gitops.md). Return the paths, charts
    first in the order the stacks apply them.

    The third-party Helm releases are not Kubernetes objects: :func:`write_helm_releases` writes them.
    """
    from .constructs.applied import applied_manifests
    from .constructs.crds import CrdChart, crd_chart_name, crd_files

    serving = built.platform.serving
    registry = built.platform.charts
    sources: list[tuple[str, list[dict[str, Any]], bool]] = [
        (name, resolve_documents(registry.documents[name], stack), stack is serving)
        for name, _, stack in registry.entries
    ]
    crd_texts: dict[str, str] = {}
    for construct in built.app.node.find_all():
        if isinstance(construct, CrdChart):
            # Verbatim: the files are the vendored chart's own, and the largest is over 1 MB.
            crd_texts[crd_chart_name(construct.pin)] = "".join(
                f"---\n{c.decode().strip()}\n" for c in crd_files(construct.pin).values()
            )
    for applied in applied_manifests(built.app):
        docs = resolve_documents([dict(d) for d in applied.documents], applied.stack)
        sources.append((applied.name, docs, applied.stack is serving))
    layout = manifest_layout(sources)
    stems = {Path(rel).stem for rel in layout}
    for name in crd_texts:
        if name in stems:
            raise ValueError(f"two manifest sources write '{name}.yaml': rename one")
    _clear_manifest_dir(out_dir)
    written: list[Path] = []
    for rel, docs in layout.items():
        written.append(_write(out_dir / rel, dump_documents(docs)))
    for name, text in crd_texts.items():
        written.append(_write(out_dir / CRDS_STEP / f"{name}.yaml", text))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _clear_manifest_dir(out_dir: Path) -> None:
    """Remove what a previous synth wrote (flat ``*.yaml`` of older releases, the step directories)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.yaml"):
        old.unlink()
    for step in APPLY_STEPS:
        folder = out_dir / step
        if folder.is_dir():
            for old in folder.glob("*.yaml"):
                old.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()


def write_helm_releases(templates: Mapping[str, Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """Write the third-party Helm releases of ``templates`` (stack name -> template) to ``out_dir``:
    ``NN-<release>.values.yaml`` each, ``releases.json`` (chart, repository, version, namespace, the
    ``helm`` command) and ``install.sh`` running those commands in order. CRD charts (chart assets) are
    not among them: their CRDs are in ``dist/manifests/10-crds/``.

    Not rendered with ``helm template``: charts generate webhook certificates and keys at render time,
    which would put private keys in plaintext files and change them at every synth.
    """
    from .gates.apply_order import RELEASES_INDEX, helm_release_records

    records = [r for r in helm_release_records(templates) if not r.is_asset]
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in (*out_dir.glob("*.values.yaml"), out_dir / RELEASES_INDEX, out_dir / "install.sh"):
        old.unlink(missing_ok=True)
    written: list[Path] = []
    index: list[dict[str, Any]] = []
    lines = [
        "#!/bin/sh",
        "# The Helm releases `cdk deploy` installs, in its order (docs/gitops.md). Run after",
        "#   kubectl apply -f dist/manifests/00-namespaces/",
        "#   kubectl apply --server-side -f dist/manifests/10-crds/",
        "# with every ${...} placeholder in the values files replaced by the stack output it names.",
        "set -eu",
        'cd "$(dirname "$0")"',
    ]
    for i, record in enumerate(records, start=1):
        values_file = f"{i:02d}-{record.release}.values.yaml"
        written.append(_write(out_dir / values_file, yaml.safe_dump(record.values, sort_keys=False)))
        index.append(record.index_entry(values_file))
        lines.append(shlex.join(record.helm_command(values_file)))
    written.append(_write(out_dir / RELEASES_INDEX, json.dumps(index, indent=2) + "\n"))
    script = _write(out_dir / "install.sh", "\n".join(lines) + "\n")
    script.chmod(0o755)
    written.append(script)
    return written


def synthesize_app(profile: str | None = None, manifests_dir: str | None = None, *, app: App | None = None) -> Built:
    """What ``cdk synth`` runs: build, synthesize to the CLI's output directory, write manifests.

    Every CLI command runs the app (``cdk ls`` and ``cdk diff`` too, often for another profile), so
    the manifests go into that command's own cloud assembly (``<outdir>/manifests``) unless an
    output is chosen: ``manifests_dir`` here or ``-c manifests_dir=...`` (``make synth`` passes
    ``dist/manifests``). A ``cdk ls`` or ``cdk diff`` therefore never overwrites ``dist/manifests``.
    """
    built = build(profile, app=app)
    chosen = manifests_dir or built.app.node.try_get_context(CONTEXT_MANIFESTS_DIR)
    out = Path(chosen) if chosen else Path(built.app.outdir) / "manifests"
    write_chart_manifests(built, out)
    if built.profile.observability.enabled:
        from .monitoring.dashboards import write_dashboards

        # Beside the manifests: dashboards/*.json, importable into any Grafana.
        write_dashboards(out.parent / "dashboards")
    assembly = built.app.synth()
    # Beside the manifests too: the controllers' Helm releases, read from the templates just written.
    write_helm_releases(assembly_templates(Path(assembly.directory)), out.parent / HELM_RELEASES_DIR)
    return built


def assembly_templates(outdir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> template of the cloud assembly at ``outdir``, read from its files.

    The same as ``{s.stack_name: s.template for s in assembly.stacks}`` without carrying every template
    through the jsii runtime (a second or more with many models).
    """
    manifest = json.loads((outdir / "manifest.json").read_text())
    templates: dict[str, dict[str, Any]] = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") == "aws:cloudformation:stack":
            props = artifact.get("properties", {})
            templates[props.get("stackName", artifact_id)] = json.loads((outdir / props["templateFile"]).read_text())
    return templates


def cli_context(root: Path, overrides: Mapping[str, str] = {}) -> dict[str, Any]:
    """The context ``cdk synth -c key=value ...`` would pass from ``root``: ``~/.cdk.json``, then
    ``cdk.context.json``, then ``cdk.json``'s ``context``, then the command line win in turn."""
    context: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for path, key in (
        (Path.home() / ".cdk.json", "context"),
        (root / "cdk.context.json", None),
        (root / "cdk.json", "context"),
    ):
        if path.is_file():
            data = json.loads(path.read_text())
            context.update(data.get(key, {}) if key else data)
            if key:
                settings.update({k: v for k, v in data.items() if k in _CLI_SETTINGS})
    context.update(CLI_CONTEXT)
    context.update({_CLI_SETTINGS[k]: bool(v) for k, v in settings.items()})
    context.update(overrides)
    return context


def synthesis_messages(outdir: Path) -> list[tuple[str, str, str]]:
    """``(level, construct path, message)`` of every annotation in the cloud assembly at ``outdir``,
    read from its files as the CDK CLI reads them after a synth."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found = []
    for artifact in manifest.get("artifacts", {}).values():
        metadata = dict(artifact.get("metadata") or {})
        extra = artifact.get("additionalMetadataFile")
        if extra and (outdir / extra).is_file():
            metadata.update(json.loads((outdir / extra).read_text()))
        for path, entries in metadata.items():
            for entry in entries:
                level = {"aws:cdk:error": "error", "aws:cdk:warning": "warning", "aws:cdk:info": "info"}.get(
                    entry.get("type", "")
                )
                if level:
                    found.append((level, path, str(entry.get("data", ""))))
    return found


def synthesize_direct(
    overrides: Mapping[str, str], *, outdir: Path, summary: bool = False, root: Path = Path(".")
) -> int:
    """``make synth``: what ``cdk synth -c ... -o outdir`` does, in this process, plus the summary.

    Warnings and errors of the synthesis are printed as the CLI prints them, and an error fails the
    run (exit 1) as it fails ``cdk synth``. Returns the exit code.
    """
    app = App(context=cli_context(root, overrides), outdir=str(outdir), builtin_cloud_formation_validation=False)
    try:
        built = synthesize_app(app=app)
    except EksLlmStackError as exc:
        print(f"\n{exc}\n", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        # cdk-nag's findings (policy validation): the report, as `cdk synth` shows it, without the jsii
        # traceback around it.
        if "ValidationFailed" not in str(exc):
            raise
        print(f"\n{str(exc).removeprefix('ValidationFailed: ')}\n", file=sys.stderr)
        return 1
    messages = synthesis_messages(outdir)
    for level, path, text in messages:
        if level == "info":
            continue
        print(f"{level.upper()} {text}\n   {path.lstrip('/')}", file=sys.stderr)
    if any(level == "error" for level, _, _ in messages):
        print("Found errors", file=sys.stderr)
        return 1
    print(f"Successfully synthesized to {outdir.resolve()}")
    if summary:
        from .cli.summary import print_summary

        chosen = app.node.try_get_context(CONTEXT_MANIFESTS_DIR)
        manifests = Path(chosen) if chosen else outdir / "manifests"
        print_summary(outdir, manifests, profile=built.profile.name)
    return 0
