"""The ``eks-llm-stack`` command.

One module per command group (``cli/summary.py``, ``cli/profile.py``, ``cli/ops.py``, plus the
sizing and bench groups): ``register(subparsers)`` adds parsers whose ``func`` default returns an
exit code. The command modules are imported plainly; heavy imports (boto3, matplotlib, aws_cdk)
belong inside the handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from .. import sizing_cli as _sizing
from ..errors import EksLlmStackError
from . import bench as _bench
from . import ops as _ops
from . import profile as _profile
from . import summary as _summary

#: Modules that contribute sub-commands, each with ``register(subparsers) -> None``, in help order.
_COMMAND_MODULES: tuple[ModuleType, ...] = (_summary, _profile, _ops, _sizing, _bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eks-llm-stack",
        description="A GPU platform for LLM serving on Amazon EKS: "
        "sizing, synthesis summaries, benchmarks and ephemeral clusters.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EksLlmStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
