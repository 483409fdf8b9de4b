from eks_llm_stack.naming import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
