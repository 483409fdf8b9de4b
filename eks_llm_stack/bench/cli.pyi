from eks_llm_stack.cli.bench import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
