"""The ``eks-llm-stack`` command.

Each capability registers its own sub-commands from its own module (see ``_COMMAND_MODULES``):
``register(subparsers)`` adds parsers whose ``func`` default returns an exit code. Heavy
imports (boto3, matplotlib, aws_cdk) belong inside the handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import EksLlmStackError

#: Modules that contribute sub-commands, each with ``register(subparsers) -> None``.
_COMMAND_MODULES: tuple[str, ...] = (
    "eks_llm_stack.summary",
    "eks_llm_stack.profile_cli",
    "eks_llm_stack.ops.cli",
    "eks_llm_stack.sizing_cli",
    "eks_llm_stack.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eks-llm-stack",
        description="A GPU platform for LLM serving on Amazon EKS: "
        "sizing, synthesis summaries, benchmarks and ephemeral clusters.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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


if __name__ == "__main__":
    sys.exit(main())
