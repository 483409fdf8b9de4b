from eks_llm_stack.gates.manifests import *  # noqa: F403  (moved; see eks_llm_stack/_moved.py)
