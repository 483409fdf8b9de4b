"""Typed, validated configuration. One error lists every problem with its field path and fix.

``from eks_llm_stack.config import load_profile`` and ``Profile`` are the public entry points;
each profile section has its own module, named after the capability it configures.
"""

from .base import StrictModel, fail, validate_model
from .cluster import ClusterConfig, EndpointConfig, SystemNodesConfig
from .compute import ComputeConfig
from .data import SecretsConfig, StorageConfig
from .ephemeral import ttl_seconds
from .network import NetworkConfig
from .observability import ObservabilityConfig
from .profile import PROFILE_DIR, Profile, list_profiles, load_profile, validate_profile
from .serving import ModelConfig

__all__ = [
    "PROFILE_DIR",
    "ClusterConfig",
    "ComputeConfig",
    "EndpointConfig",
    "ModelConfig",
    "NetworkConfig",
    "ObservabilityConfig",
    "Profile",
    "SecretsConfig",
    "StorageConfig",
    "StrictModel",
    "SystemNodesConfig",
    "fail",
    "list_profiles",
    "load_profile",
    "ttl_seconds",
    "validate_model",
    "validate_profile",
]
