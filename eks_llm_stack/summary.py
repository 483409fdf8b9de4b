"""``eks-llm-stack summary``: a one-screen account of what a synth produced."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("summary", help="summarize a synthesized cloud assembly and manifests directory")
    p.add_argument("cdk_out", nargs="?", default="cdk.out")
    p.add_argument("manifests", nargs="?", default="dist/manifests")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    raise NotImplementedError("summary is being written")
