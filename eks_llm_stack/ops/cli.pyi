from eks_llm_stack.cli.ops import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
