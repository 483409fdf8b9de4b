#!/usr/bin/env python3
"""CDK entry point: reads the profile, builds the stacks. The only place that reads context or env.

cdk synth -c profile=production.example
cdk synth -c profile=ci-ephemeral -c name=ci-1234 -c expires_at=2026-11-21T18:00:00Z
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The jsii runtime runs on the first `node` on PATH; prefer the Node 24 of this virtual environment.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

from eks_llm_stack.errors import EksLlmStackError  # noqa: E402


def main() -> int:
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


if __name__ == "__main__":
    sys.exit(main())
