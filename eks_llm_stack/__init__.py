"""eks-llm-stack: a GPU platform for LLM serving on Amazon EKS, as CDK constructs and cdk8s charts."""

__version__ = "0.1.0"

from . import _moved

_moved.install()
