from eks_llm_stack.gates.nag import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
