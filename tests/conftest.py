"""Shared fixtures: each profile is built and synthesized once per test run, in-process.

Tests that only read a synthesized platform use :func:`synthesized` (cached), so a whole run
pays for one jsii start-up and one synth per profile. Tests that need a variant build their
own small app.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# jsii starts `node` from PATH: use the Node 24 of this virtualenv, as the Makefile does.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

# -- the temp directory -----------------------------------------------------------------------------
# Everything a test run writes to "the temp directory" (tempfile, Node's os.tmpdir() for jsii and for
# every App without an outdir, pytest's tmp_path) goes to one directory of this process, removed when
# the process exits; a session check fails the run if tests left files there that nobody cleans up.
# xdist workers inherit TMPDIR from the controller and nest their own directory inside its one.
SYSTEM_TEMP = Path(tempfile.gettempdir())
RUN_TEMP = Path(tempfile.mkdtemp(prefix="eks-llm-stack-tests-", dir=SYSTEM_TEMP))
os.environ["TMPDIR"] = str(RUN_TEMP)
tempfile.tempdir = str(RUN_TEMP)
atexit.register(shutil.rmtree, RUN_TEMP, ignore_errors=True)
#: Directories the session itself owns (the cached synth outputs); removed before the check.
SESSION_DIRS: list[Path] = []


def _run_scratch(entry: Path) -> bool:
    """What the runtimes keep for the life of the process and remove at exit (or with RUN_TEMP)."""
    name = entry.name
    if name.startswith(
        ("pytest-of-", "jsii-kernel-", "jsii-runtime.", "eks-llm-stack-tests-", "cdk.out", ".lark_cache_")
    ):
        # cdk.out*: aws-cdk-lib's default outdir of an App built without one; .lark_cache_*: the grammar
        # cache lark keeps in the temp directory on purpose (gone with RUN_TEMP).
        return True
    # jsii's Python runtime unpacks its kernel into a TemporaryDirectory (tmpXXXX/lib/program.js).
    return (entry / "lib" / "program.js").exists()


@pytest.fixture(scope="session", autouse=True)
def _temp_dir_left_clean() -> Any:
    """Fail the run if tests leave files in the temp directory (compared before/after)."""
    before = set(RUN_TEMP.iterdir())
    yield
    for d in SESSION_DIRS:
        shutil.rmtree(d, ignore_errors=True)
    left = sorted(p.name for p in set(RUN_TEMP.iterdir()) - before if not _run_scratch(p))
    assert left == [], f"tests left these in the temp directory: {left}"


@pytest.fixture(autouse=True)
def _synth_rejects_only_what_the_plan_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every profile that synthesis rejects anywhere in the suite must be rejected the same way by
    the plan, which is what ``profile validate`` runs: a problem that only a construct finds would
    let ``profile validate`` say ok for a profile ``make synth`` refuses.

    Wraps the build of :mod:`eks_llm_stack.synth` only when a test has imported it (the CLI tests
    check that some commands never load aws_cdk)."""
    synth = sys.modules.get("eks_llm_stack.synth")
    if synth is None:
        return
    from eks_llm_stack.errors import ConfigError
    from eks_llm_stack.plan import plan_platform

    real = synth.build_platform

    def checked(app: Any, profile: Any, **kwargs: Any) -> Any:
        try:
            return real(app, profile, **kwargs)
        except ConfigError as built:
            try:
                plan_platform(profile)
            except ConfigError as planned:
                missing = [p for p in built.problems if p not in planned.problems]
            else:
                missing = list(built.problems)
            if missing:
                pytest.fail(
                    "synthesis rejected the profile with problems that plan_platform (and so "
                    f"`profile validate`) does not report: {missing}"
                )
            raise

    monkeypatch.setattr(synth, "build_platform", checked)


#: The real cdk.json context, as `cdk synth` passes it to the app.
CDK_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
CRD_DIR = ROOT / "eks_llm_stack" / "third_party" / "crds"


@dataclass
class Synthesized:
    """One profile, built and synthesized."""

    built: Any
    assembly: Any
    outdir: Path
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def profile(self) -> Any:
        return self.built.profile

    def template(self, role: str) -> dict[str, Any]:
        """The template of the stack ``<prefix>-<role>``."""
        return self.templates[f"{self.profile.stack_prefix}-{role}"]

    def stack(self, role: str) -> Any:
        return {s.stack_name.rsplit("-", 1)[-1]: s for s in self.built.platform.stacks}[role]


def profile_names() -> list[str]:
    from eks_llm_stack.config import list_profiles

    return list_profiles()


@cache
def synthesized(profile: str) -> Synthesized:
    """Build and synthesize ``config/<profile>.yaml`` once per test run (the cdk.json context, nag off:
    the nag gate reads findings itself without failing the synth)."""
    import yaml

    from eks_llm_stack.synth import build, write_chart_manifests

    outdir = Path(tempfile.mkdtemp(prefix=f"synth-{profile}-"))
    SESSION_DIRS.append(outdir)
    context = {**CDK_CONTEXT, "nag": "false"}
    from aws_cdk import App

    app = App(context=context, outdir=str(outdir / "cdk.out"), builtin_cloud_formation_validation=False)
    built = build(profile, app=app)
    paths = write_chart_manifests(built, outdir / "manifests")
    assembly = app.synth()
    result = Synthesized(built=built, assembly=assembly, outdir=outdir)
    for stack in assembly.stacks:
        result.templates[stack.stack_name] = stack.template
    for p in paths:
        # The C loader: dist/manifests/10-crds/ holds CRDs of over a megabyte.
        result.manifests[p.stem] = [d for d in yaml.load_all(p.read_text(), Loader=yaml.CSafeLoader) if d]
    return result


@pytest.fixture(scope="session")
def default_synth() -> Synthesized:
    return synthesized("default")


@pytest.fixture(scope="session")
def production_synth() -> Synthesized:
    return synthesized("production.example")


@pytest.fixture(scope="session")
def ephemeral_synth() -> Synthesized:
    return synthesized("ci-ephemeral")


@pytest.fixture(params=profile_names(), scope="session")
def any_synth(request: pytest.FixtureRequest) -> Synthesized:
    """Every shipped profile in turn."""
    return synthesized(request.param)


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    """The real cdk.json context with the nag plugin off (tests read nag findings themselves)."""
    return {**CDK_CONTEXT, "nag": "false"}
