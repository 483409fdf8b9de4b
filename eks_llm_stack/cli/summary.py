"""``eks-llm-stack summary``: a one-screen account of what a synth produced."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="summarize a synthesized cloud assembly and manifests directory",
        description="Print the stacks, their resource counts and the Kubernetes manifests written by a synth.",
    )
    p.add_argument("cdk_out", nargs="?", default="cdk.out", help="cloud assembly directory (default: cdk.out)")
    p.add_argument(
        "manifests", nargs="?", default="dist/manifests", help="manifests directory (default: dist/manifests)"
    )
    p.add_argument("--profile", default=None, help="profile name, shown in the title")
    p.set_defaults(func=_run)


def collect(cdk_out: Path, manifests: Path) -> dict[str, Any]:
    """What a synth produced: stacks with resource counts by type, manifests with kinds."""
    from ..errors import ConfigError, Problem

    manifest_file = cdk_out / "manifest.json"
    if not manifest_file.is_file():
        raise ConfigError(
            "summary", [Problem("cdk_out", "has no manifest.json", "run `make synth` first", str(cdk_out))]
        )
    assembly = json.loads(manifest_file.read_text())
    stacks = []
    for name, art in assembly.get("artifacts", {}).items():
        if art.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((cdk_out / art["properties"]["templateFile"]).read_text())
        types = Counter(r["Type"] for r in template.get("Resources", {}).values())
        stacks.append({"name": name, "resources": sum(types.values()), "types": types})
    files = []
    # One directory per apply step (00-namespaces/, 10-crds/, ...).
    for path in sorted(manifests.rglob("*.yaml")) if manifests.is_dir() else []:
        files.append({"file": str(path.relative_to(manifests)), "kinds": count_kinds(path.read_text())})
    dashboards = manifests.parent / "dashboards"
    releases_index = manifests.parent / "helm-releases" / "releases.json"
    return {
        "stacks": stacks,
        "manifests": files,
        "helm_releases": json.loads(releases_index.read_text()) if releases_index.is_file() else [],
        "dashboards": sorted(str(p) for p in dashboards.glob("*.json")) if dashboards.is_dir() else [],
    }


_SEPARATOR = re.compile(r"^---(?:\s|$)")
_KIND = re.compile(r"^kind:\s*['\"]?([^'\"#\s]+)")


def count_kinds(text: str) -> Counter[str]:
    """``kind -> count`` of the documents of a block-style YAML stream (``?`` for a document without one).

    What synth writes and the vendored CRD files are block style: a document's ``kind`` is a line of
    its own at column 0. Reading only those lines keeps the summary instant where parsing the CRDs
    (several MB) took about half a second; ``tests/test_cli.py`` checks it against a YAML parser on
    every file a synth writes.
    """
    kinds: Counter[str] = Counter()
    kind: str | None = None
    content = False
    for line in text.splitlines():
        if _SEPARATOR.match(line):
            if content:
                kinds[kind or "?"] += 1
            kind, content = None, False
            continue
        if not content and (not line.strip() or line.lstrip().startswith("#")):
            continue
        content = True
        if kind is None and (match := _KIND.match(line)):
            kind = match.group(1)
    if content:
        kinds[kind or "?"] += 1
    return kinds


def _run(args: argparse.Namespace) -> int:
    print_summary(Path(args.cdk_out), Path(args.manifests), profile=args.profile)
    return 0


def print_summary(cdk_out: Path, manifests: Path, *, profile: str | None = None) -> None:
    """Print the account of ``cdk_out`` and ``manifests``: what ``make synth`` shows after synthesizing,
    in the same process (``app.py --summary``) or from the files (``eks-llm-stack summary``)."""
    from rich.console import Console
    from rich.table import Table

    data = collect(cdk_out, manifests)
    console = Console()
    title = f"eks-llm-stack synth — profile {profile}" if profile else "eks-llm-stack synth"
    t = Table(title=title, title_justify="left")
    t.add_column("stack")
    t.add_column("resources", justify="right")
    t.add_column("main resource types")
    for s in data["stacks"]:
        top = ", ".join(f"{k.split('::')[-1]}×{v}" for k, v in s["types"].most_common(6))
        t.add_row(s["name"], str(s["resources"]), top)
    console.print(t)
    m = Table(title=f"Kubernetes manifests ({manifests})", title_justify="left")
    m.add_column("file")
    m.add_column("objects", justify="right")
    m.add_column("kinds")
    for f in data["manifests"]:
        m.add_row(f["file"], str(sum(f["kinds"].values())), ", ".join(f"{k}×{v}" for k, v in f["kinds"].items()))
    console.print(m)
    total = sum(s["resources"] for s in data["stacks"])
    objects = sum(sum(f["kinds"].values()) for f in data["manifests"])
    console.print(
        f"{len(data['stacks'])} stacks, {total} resources in {cdk_out}/; "
        f"{objects} Kubernetes objects in {len(data['manifests'])} files in {manifests}/"
        + (f"; {len(data['dashboards'])} dashboards" if data["dashboards"] else "")
        + (f"; {len(data['helm_releases'])} Helm releases" if data["helm_releases"] else "")
    )
    console.print("Deploy: cdk deploy --all -c profile=<profile>   (see README, 'Deploying to an account')")
