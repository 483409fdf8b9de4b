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
from ..errors import EksLlmStackError
from . import bench as _bench
from . import ops as _ops
from . import profile as _profile
from . import sizing as _sizing
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
    except (OSError, OverflowError) as exc:
        # A path that is not there, a port in use or out of range: one line with the fix, no traceback.
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def os_error_line(exc: BaseException) -> str:
    """One line (what failed -- fix) for an operating-system error reaching the command line."""
    import errno

    if isinstance(exc, OverflowError):
        return f"{exc} -- fix: give a port between 1 and 65535"
    assert isinstance(exc, OSError)
    where = f" ({exc.filename})" if exc.filename else ""
    code = exc.errno
    if code == errno.EADDRINUSE:
        return "the address is already in use -- fix: stop what listens there, or pass another --port"
    if code == errno.EADDRNOTAVAIL:
        return "cannot listen on that address -- fix: use 127.0.0.1 or 0.0.0.0 for --host"
    if code == errno.EACCES:
        return f"permission denied{where} -- fix: use a path you can write, or a port above 1023"
    if code == errno.ENOENT:
        return f"no such file or directory{where} -- fix: check the path (run the step that creates it first)"
    if code == errno.ENOTDIR:
        return f"not a directory{where} -- fix: pass a directory"
    if code == errno.EISDIR:
        return f"is a directory{where} -- fix: pass a file"
    text = exc.strerror or str(exc)
    return f"{text}{where} -- fix: check the path, host or port given"
