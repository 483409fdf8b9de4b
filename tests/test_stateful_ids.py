"""Logical ids of every stateful resource are API: renaming one replaces (and empties) it on deploy.

The pin covers file systems, their access points and mount targets, secrets, buckets and KMS keys of
every shipped profile. A change here must be deliberate (and come with a migration note).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import synthesized

STATEFUL_TYPES = (
    "AWS::FSx::FileSystem",
    "AWS::EFS::FileSystem",
    "AWS::EFS::AccessPoint",
    "AWS::EFS::MountTarget",
    "AWS::SecretsManager::Secret",
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
)

_DATA_COMMON = {
    ("AWS::EFS::AccessPoint", "ModelStorageEfsModelCache634317C9"),
    ("AWS::EFS::FileSystem", "ModelStorageEfs000A1D67"),
    ("AWS::EFS::MountTarget", "ModelStorageEfsEfsMountTargetPrivateSubnet1093D580D"),
    ("AWS::EFS::MountTarget", "ModelStorageEfsEfsMountTargetPrivateSubnet2294E8A5E"),
    ("AWS::EFS::MountTarget", "ModelStorageEfsEfsMountTargetPrivateSubnet342562C1F"),
    ("AWS::KMS::Key", "ModelSecretsKeyC7C0C5B8"),
    ("AWS::KMS::Key", "ModelStorageKey0F631CCB"),
    ("AWS::SecretsManager::Secret", "GrafanaAdmin809E6EA7"),
    ("AWS::SecretsManager::Secret", "ModelSecretshuggingfacetoken9AA1CC6E"),
}
_NETWORK = {("AWS::KMS::Key", "NetworkFlowLogsKey9F917D90")}
_PLATFORM = {("AWS::KMS::Key", "ClusterLogsKey93796454"), ("AWS::KMS::Key", "ClusterSecretsKey462B29B5")}

PINNED: dict[str, dict[str, set[tuple[str, str]]]] = {
    "default": {
        "Data": _DATA_COMMON | {("AWS::SecretsManager::Secret", "ModelSecretsngcapikeyBFC65B8C")},
        "Network": _NETWORK,
        "Platform": _PLATFORM,
        "Serving": set(),
    },
    "production.example": {
        "Data": _DATA_COMMON
        | {
            ("AWS::FSx::FileSystem", "ModelStorageLustreCAEFDDD3"),
            ("AWS::S3::Bucket", "ModelStorageModelBucketE8C4749C"),
            ("AWS::SecretsManager::Secret", "ModelApiKeysllama38b8EF13D29"),
            ("AWS::SecretsManager::Secret", "ModelApiKeysllama405b737DFE7F"),
            ("AWS::SecretsManager::Secret", "ModelApiKeysqwen38b23BC955F"),
            ("AWS::SecretsManager::Secret", "ModelSecretsngcapikeyBFC65B8C"),
        },
        "Network": _NETWORK,
        "Platform": _PLATFORM,
        "Serving": set(),
    },
    # The ephemeral profile imports an existing VPC: no Network stack resources of these kinds.
    "ci-ephemeral": {"Data": _DATA_COMMON, "Platform": _PLATFORM, "Serving": set()},
}


def _stateful(template: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["Type"], lid) for lid, r in template.get("Resources", {}).items() if r["Type"] in STATEFUL_TYPES}


@pytest.mark.parametrize("profile", sorted(PINNED))
def test_stateful_logical_ids_are_pinned(profile: str) -> None:
    synth = synthesized(profile)
    got = {name.rsplit("-", 1)[-1]: _stateful(t) for name, t in synth.templates.items()}
    want = PINNED[profile]
    for role in sorted(set(got) | set(want)):
        assert got.get(role, set()) == want.get(role, set()), f"{profile} {role}: stateful logical ids changed"


def test_the_pin_sees_a_rename() -> None:
    """The comparison is not vacuous: a renamed file system is caught."""
    template = {"Resources": {"ModelStorageEfsRenamed": {"Type": "AWS::EFS::FileSystem"}}}
    assert _stateful(template) != {("AWS::EFS::FileSystem", "ModelStorageEfs000A1D67")}
