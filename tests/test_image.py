"""The project's image: built here with buildah on mmdebstrap-made bases, then run.

The build-and-run tests carry the ``image`` marker (a few minutes: two minimal Debian bases,
one build, one run); they are left out of a plain ``pytest`` run and run by ``make test-image``,
which ``.ci/run`` calls. The static checks of the Containerfile and of the build helper are fast
and run always.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "container"))

import build_local  # noqa: E402

CONTAINERFILE = (ROOT / "Containerfile").read_text()


# -- static checks (fast) --------------------------------------------------------------------------


def _stages(text: str) -> list[list[str]]:
    stages: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages and line.strip() and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def test_containerfile_is_multi_stage_with_the_base_as_a_build_argument() -> None:
    stages = _stages(CONTAINERFILE)
    assert len(stages) == 2
    assert stages[0][0].startswith("FROM ${BUILDER_IMAGE} AS build")
    assert stages[1][0] == "FROM ${BASE_IMAGE}"
    assert "ARG BASE_IMAGE=" in CONTAINERFILE and "ARG BUILDER_IMAGE=${BASE_IMAGE}" in CONTAINERFILE


def test_final_stage_runs_as_non_root_and_installs_nothing() -> None:
    final = "\n".join(_stages(CONTAINERFILE)[1])
    assert "USER 65532:65532" in final
    assert "RUN " not in final, "the final stage must not run an installer (no build tools there)"
    assert "COPY --from=build /opt/eks-llm-stack /opt/eks-llm-stack" in final


def test_pip_setup_reaches_the_build_as_secrets_only() -> None:
    assert CONTAINERFILE.count("--mount=type=secret,id=pipconf --mount=type=secret,id=cacert") == 2
    assert "COPY pip.conf" not in CONTAINERFILE and "ARG PIP" not in CONTAINERFILE


def test_pip_conf_keeps_the_settings_but_not_the_cert() -> None:
    conf = build_local.pip_conf({"cert": "/etc/ca.pem", "find-links": "/opt/wheels", "default-timeout": "180"})
    assert conf == "[global]\ndefault-timeout = 180\nfind-links = /opt/wheels\n"


def test_local_paths_mount_a_file_index_with_the_files_beside_it(tmp_path: Path) -> None:
    (tmp_path / "pypi" / "simple").mkdir(parents=True)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "c.txt").write_text("")
    settings = {
        "extra-index-url": f"file://{tmp_path}/pypi/simple file://{tmp_path}/missing/simple https://example.org/x",
        "find-links": f"{tmp_path}/wheels",
        "constraint": f"{tmp_path}/c.txt",
    }
    assert build_local.local_paths(settings) == [tmp_path / "wheels", tmp_path / "pypi", tmp_path / "c.txt"]


def test_pip_settings_read_pip_config_list() -> None:
    # Whatever this machine has, the parsed form is plain option -> string.
    settings = build_local.pip_settings()
    assert all(isinstance(k, str) and "." not in k and isinstance(v, str) for k, v in settings.items())


# -- build and run (slow, marker "image") --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[build_local.Buildah, str]]:
    missing = [t for t in ("buildah", "mmdebstrap") if shutil.which(t) is None]
    assert not missing, f"{missing} not installed: `make test-image` installs them (apt-get install buildah mmdebstrap)"
    # EKS_LLM_STACK_IMAGE_WORK keeps the bases between runs on a developer machine.
    work = Path(os.environ.get("EKS_LLM_STACK_IMAGE_WORK") or tmp_path_factory.mktemp("image"))
    work.mkdir(parents=True, exist_ok=True)
    b = build_local.Buildah(work=work)
    t0 = time.monotonic()
    base = build_local.make_base(b, "localhost/debian-python:runtime", build_local.RUNTIME_PACKAGES)
    builder = build_local.make_base(b, "localhost/debian-python:builder", build_local.BUILDER_PACKAGES)
    t1 = time.monotonic()
    build_local.build(b, "localhost/eks-llm-stack:test", base=base, builder=builder)
    print(f"\nimage: bases {t1 - t0:.0f} s, build {time.monotonic() - t1:.0f} s")
    ctr = b("from", "-q", "localhost/eks-llm-stack:test")
    try:
        yield b, ctr
    finally:
        b("rm", ctr)


def _run(b: build_local.Buildah, ctr: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*b.base_args(), "run", "--isolation", "chroot", ctr, "--", *cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.image
def test_image_runs_as_the_charts_uid_without_installers(image: tuple[build_local.Buildah, str]) -> None:
    b, ctr = image
    assert _run(b, ctr, "id", "-u").stdout.strip() == "65532"
    probe = _run(
        b, ctr, "sh", "-c", "command -v pip pip3 gcc cc make apt-get >/dev/null && echo found; python3 -m pip -V"
    )
    assert "found" not in probe.stdout and probe.returncode != 0, probe.stdout + probe.stderr
    config = json.loads(b("inspect", "--type", "image", "localhost/eks-llm-stack:test"))
    env = config["OCIv1"]["config"]["Env"]
    assert not [e for e in env if e.startswith(("PIP_CONFIG_FILE", "PIP_CERT", "PIP_INDEX"))]
    assert config["OCIv1"]["config"]["User"] == "65532:65532"
    # The build's secrets and the host's wheel folders were mounts, not layers.
    leaked = _run(b, ctr, "sh", "-c", "ls /run/secrets /opt/wheels /src 2>/dev/null; ls /opt")
    assert leaked.stdout.split() == ["eks-llm-stack"], leaked.stdout


@pytest.mark.image
def test_simulator_and_harness_run_inside_the_image(image: tuple[build_local.Buildah, str]) -> None:
    b, ctr = image
    port = _free_port()
    sim = subprocess.Popen(
        [
            *b.base_args(),
            "run",
            "--isolation",
            "chroot",
            ctr,
            "--",
            "eks-llm-stack",
            "simulate",
            "--port",
            str(port),
            "--ttft-ms",
            "20",
            "--itl-ms",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert sim.poll() is None, sim.stdout.read().decode() if sim.stdout else "simulator exited"
                assert time.monotonic() < deadline, "simulator in the image did not answer within 60 s"
                time.sleep(0.5)
        run = _run(
            b,
            ctr,
            "eks-llm-stack",
            "bench",
            "run",
            "--url",
            f"http://127.0.0.1:{port}",
            "--model",
            "simulated-model",
            "--concurrency",
            "2",
            "--requests",
            "10",
            "--output-tokens",
            "8",
            "--out",
            "/tmp/run",
            "--no-progress",
        )
        assert run.returncode == 0, run.stdout + run.stderr
        summary = json.loads(_run(b, ctr, "cat", "/tmp/run/summary.json").stdout)
        (level,) = summary["levels"]
        assert level["completed"] == 10 and level["errors"] == 0
        assert level["ttft_ms"]["p50"] == pytest.approx(20, abs=10)
    finally:
        os.killpg(sim.pid, signal.SIGTERM)
        sim.wait(timeout=30)
