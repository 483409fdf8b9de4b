"""The whole platform from a profile built in code (no YAML file, no repository beside it)."""

import sys

from aws_cdk import App

from eks_llm_stack.config import validate_profile
from eks_llm_stack.synth import build

profile = validate_profile({"prefix": "team-a", "cluster": {"admins": ["arn:aws:iam::123456789012:role/a"]}})
build(profile, app=App(outdir=sys.argv[1])).app.synth()
