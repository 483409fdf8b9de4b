from eks_llm_stack.cli.summary import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
