"""``eks-llm-stack profile``: list, validate and document profiles."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="list, validate or document profiles")
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="profiles shipped in config/")
    ls.set_defaults(func=_list)
    check = psub.add_parser("validate", help="validate profiles (all problems at once); exit 2 on any problem")
    check.add_argument("names", nargs="*", help="profile names or YAML paths (default: every shipped profile)")
    check.set_defaults(func=_validate)
    docs = psub.add_parser("docs", help="print the profile reference (docs/profiles.md)")
    docs.set_defaults(func=_docs)


def _list(args: argparse.Namespace) -> int:
    from ..config import list_profiles, load_profile

    for name in list_profiles():
        p = load_profile(name)
        env = f"{p.account}/{p.region}" if p.account else "environment-agnostic"
        print(f"{name:24} prefix={p.prefix:12} {env}{'  ephemeral ttl=' + p.ttl if p.ephemeral else ''}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import sys

    from ..config import list_profiles, load_profile
    from ..errors import ConfigError
    from ..plan import plan_platform

    failed = 0
    for name in args.names or list_profiles():
        try:
            # The plan is what synthesis builds from: its cross-section checks (pools x models x
            # storage x sizing) run here too, so validate and synth agree.
            plan_platform(load_profile(name))
            print(f"ok      {name}")
        except ConfigError as exc:
            failed += 1
            print(f"invalid {exc}", file=sys.stderr)
    return 2 if failed else 0


def _docs(args: argparse.Namespace) -> int:
    from ..config.reference import render_reference

    print(render_reference(), end="")
    return 0
