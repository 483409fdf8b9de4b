#!/usr/bin/env python3
"""CDK entry point: reads the profile, builds the stacks. The only place that reads context or env.

Run by the CDK CLI (``cdk.json``), or directly, which is what ``make synth`` does (no CLI round trip)::

    cdk synth -c profile=production.example
    cdk synth -c profile=ci-ephemeral -c name=ci-1234 -c expires_at=2026-11-21T18:00:00Z
    python app.py -c profile=production.example -c manifests_dir=dist/manifests --summary
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path

# The jsii runtime runs on the first `node` on PATH; prefer the Node 24 of this virtual environment.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def _direct(argv: list[str]) -> int:
    """``python app.py [-c key=value]... [-o cdk.out] [--summary]``: the app writes the cloud assembly itself."""
    import argparse

    from eks_llm_stack.synth import synthesize_direct

    parser = argparse.ArgumentParser(prog="app.py", description="Synthesize without the CDK CLI (as `make synth`).")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-o", "--output", default="cdk.out", help="cloud assembly directory (default: cdk.out)")
    parser.add_argument("--summary", action="store_true", help="print the summary of what was written")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"-c {item}: expected KEY=VALUE, e.g. -c profile=production.example")
        overrides[key] = value
    root = Path(__file__).resolve().parent
    return synthesize_direct(overrides, outdir=Path(args.output), summary=args.summary, root=root)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "CDK_OUTDIR" not in os.environ or argv:
        return _direct(argv)

    from eks_llm_stack.errors import EksLlmStackError
    from eks_llm_stack.synth import synthesize_app

    try:
        synthesize_app(
            profile=None,  # from context
            manifests_dir=None,  # from context
        )
    except EksLlmStackError as exc:
        print(f"\n{exc}\n", file=sys.stderr)
        return 1
    return 0


#: The exit code :func:`_exit_without_finalizing` exits with: 1 until ``main`` returns (an uncaught
#: exception exits 1, as Python itself would).
_exit_code = 1


def _exit_without_finalizing() -> None:
    """Exit as soon as the other exit handlers are done, without tearing the interpreter down.

    Registered before anything else, so it runs last: the jsii runtime's own handler has stopped
    Node.js and removed its files, and every output file is closed. What is skipped is freeing the
    hundreds of thousands of objects aws-cdk-lib's modules hold, which took about 0.5 s of every synth.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_code)


if __name__ == "__main__":
    atexit.register(_exit_without_finalizing)
    # One short process whose objects live until its end: the cyclic garbage collector's passes over
    # aws-cdk-lib's objects took about 0.3 s of a default synth (0.8 s at 50 models) and would free
    # about 10 MiB.
    gc.disable()
    try:
        _exit_code = main()
    except SystemExit as exc:  # argparse's usage errors (2), sys.exit(...) anywhere below
        _exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        raise
    sys.exit(_exit_code)
