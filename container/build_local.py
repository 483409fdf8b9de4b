"""Build and run the project's image on a machine without a registry: buildah + mmdebstrap.

    python container/build_local.py [--tag localhost/eks-llm-stack:dev] [--work DIR]

The base images are minimal Debian systems made by ``mmdebstrap`` (one with python3 for the
runtime, one with python3-venv for the build stage) and imported into buildah's storage, so no
registry is needed. buildah runs with ``--isolation chroot`` and the ``vfs`` storage driver,
which work as root in an unprivileged container. The host's pip configuration (``pip config
list``) and CA bundle reach the build as secrets, and the local paths that configuration names
(wheel folders, file:// indexes, constraint files) as read-only volumes: nothing of it is in a
layer. Used by ``tests/test_image.py``.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = ROOT / "Containerfile"
SUITE = "bookworm"
RUNTIME_PACKAGES = ("python3", "ca-certificates")
BUILDER_PACKAGES = ("python3", "python3-venv", "ca-certificates")


@dataclass(frozen=True, kw_only=True)
class Buildah:
    """buildah with a private storage root (nothing shared with other builds on the machine)."""

    work: Path

    def base_args(self) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.work / "storage"),
            "--runroot",
            str(self.work / "run"),
            "--storage-driver",
            "vfs",
        ]

    def __call__(self, *args: str, timeout: float = 1800) -> str:
        done = subprocess.run([*self.base_args(), *args], capture_output=True, text=True, timeout=timeout, env=_env())
        if done.returncode != 0:
            raise RuntimeError(
                f"buildah {' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout.strip()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BUILDAH_ISOLATION", "chroot")
    return env


def pip_settings() -> dict[str, str]:
    """``pip config list`` of this machine as {option: value} (environment over files, like pip)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True, timeout=60
    )
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        scope, _, option = key.rpartition(".")
        value = ast.literal_eval(raw)
        (env if scope.startswith(":env:") else files)[option] = value
    return {**files, **env}


def pip_conf(settings: dict[str, str]) -> str:
    """A pip.conf carrying ``settings``, less ``cert`` (the CA bundle goes in as its own secret)."""
    lines = ["[global]"]
    lines += [f"{k} = {v}" for k, v in sorted(settings.items()) if k != "cert"]
    return "\n".join(lines) + "\n"


def local_paths(settings: dict[str, str]) -> list[Path]:
    """The host paths the pip settings name (find-links, file:// indexes, constraints) that exist."""
    out: list[Path] = []
    for key in ("find-links", "index-url", "extra-index-url", "constraint", "requirement"):
        for item in settings.get(key, "").split():
            path = Path(item[len("file://") :] if item.startswith("file://") else item)
            # A local "simple" index links to files beside it (../files/...): mount its parent.
            if item.startswith("file://") and path.name == "simple":
                path = path.parent
            if path.is_absolute() and path.exists() and path not in out:
                out.append(path)
    return out


def make_base(buildah: Buildah, name: str, packages: tuple[str, ...]) -> str:
    """A minimal Debian with ``packages`` (mmdebstrap), imported as image ``name``."""
    tar = buildah.work / f"{name.rsplit('/', 1)[-1].replace(':', '-')}.tar"
    if not tar.exists():
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}", "--format=tar", SUITE, str(tar)],
            check=True,
            capture_output=True,
            timeout=1200,
        )
    ctr = buildah("from", "scratch")
    try:
        buildah("add", ctr, str(tar), "/")
        buildah("config", "--cmd", "/bin/sh", ctr)
        buildah("commit", "-q", ctr, name)
    finally:
        buildah("rm", ctr)
    return name


def build(buildah: Buildah, tag: str, *, base: str, builder: str) -> str:
    """Build the Containerfile into ``tag`` with the host's pip setup passed in; returns the image id."""
    settings = pip_settings()
    conf = buildah.work / "pip.conf"
    conf.write_text(pip_conf(settings))
    args = [
        "build",
        "--isolation",
        "chroot",
        "--pull-never",
        "--layers=false",
        "-f",
        str(CONTAINERFILE),
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--build-arg",
        f"BUILDER_IMAGE={builder}",
        "--secret",
        f"id=pipconf,src={conf}",
        "-t",
        tag,
    ]
    cert = settings.get("cert") or os.environ.get("SSL_CERT_FILE")
    if cert and Path(cert).is_file():
        args += ["--secret", f"id=cacert,src={cert}"]
    for path in local_paths(settings):
        args += ["--volume", f"{path}:{path}:ro"]
    buildah(*args, str(ROOT))
    return buildah("images", "-q", "--no-trunc", tag)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--tag", default="localhost/eks-llm-stack:dev")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/eks-llm-stack-image"))
    args = ap.parse_args(argv)
    missing = [t for t in ("buildah", "mmdebstrap") if shutil.which(t) is None]
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install -y buildah mmdebstrap)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    b = Buildah(work=args.work)
    t0 = time.monotonic()
    base = make_base(b, "localhost/debian-python:runtime", RUNTIME_PACKAGES)
    builder = make_base(b, "localhost/debian-python:builder", BUILDER_PACKAGES)
    t1 = time.monotonic()
    image = build(b, args.tag, base=base, builder=builder)
    print(f"{args.tag} {image} (bases {t1 - t0:.0f} s, build {time.monotonic() - t1:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
