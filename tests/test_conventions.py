"""The shared contract: each name two layers must agree on is spelled once (conventions.py / naming.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import eks_llm_stack
from eks_llm_stack import conventions
from eks_llm_stack.naming import is_label_key, is_label_value, pascal_case, stack_name, stack_prefix_of

PACKAGE = Path(eks_llm_stack.__file__).parent
#: Reads Karpenter's generated instance data by Karpenter's own key names, not ours.
UPSTREAM_READERS = {"catalog/refresh.py"}

VALID_KEYS = [
    "app",
    "A",
    "a-b_c.d",
    "app.kubernetes.io/name",
    "example.com/team",
    "eks-llm-stack.io/pool",
    "k8s.io/Foo_bar",
    "a" * 63,
    "x.y/" + "a" * 63,
    ".".join(["a" * 63] * 3) + ".abc/x",  # a 195-character prefix
]
INVALID_KEYS = [
    "",
    "/name",
    "example.com/",
    "Example.com/x",  # uppercase prefix
    "ex_ample.com/x",
    "-x.com/a",
    "a/b/c",
    "-a",
    "a-",
    "a b",
    "a" * 64,
    "x/" + "a" * 64,
    ".".join(["a" * 63] * 4) + ".abcd/x",  # a 256-character prefix
    5,
]
VALID_VALUES = ["", "v1", "a" * 63, "a.b-c_d", "Llama"]
INVALID_VALUES = ["a" * 64, "-a", "a-", "a b", "a/b", 5, None]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_label_keys(key: str) -> None:
    assert is_label_key(key)


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_label_keys(key: object) -> None:
    assert not is_label_key(key)


@pytest.mark.parametrize("value", VALID_VALUES)
def test_valid_label_values(value: str) -> None:
    assert is_label_value(value)


@pytest.mark.parametrize("value", INVALID_VALUES)
def test_invalid_label_values(value: object) -> None:
    assert not is_label_value(value)


def test_the_library_labels_are_valid_keys() -> None:
    keys = [v for k, v in vars(conventions).items() if k.endswith("_LABEL") and isinstance(v, str)]
    assert keys and all(is_label_key(k) for k in keys)


def test_pool_and_monitor_labels_share_the_rule() -> None:
    from eks_llm_stack.charts.monitoring import VllmMonitorProps
    from eks_llm_stack.config.gpu_pool import GpuNodePoolProps
    from eks_llm_stack.errors import ConfigError

    bad = "Example.com/team"  # passed the monitoring chart's old rule, refused by the API server
    with pytest.raises(ConfigError) as pool_err:
        GpuNodePoolProps(name="p", labels={bad: "x"})
    with pytest.raises(ConfigError) as monitor_err:
        VllmMonitorProps(name="m", namespace="monitoring", labels={bad: "x"})
    for err in (pool_err.value, monitor_err.value):
        (problem,) = [p for p in err.problems if "label key" in p.message]
        assert bad in problem.field
        assert "DNS subdomain prefix" in problem.fix


def test_names_derived_from_kebab_case() -> None:
    assert pascal_case("model-cache") == "ModelCache"
    assert pascal_case("llama-3-8b") == "Llama38b"
    assert stack_prefix_of("llm-ci") == "LlmCi"
    assert stack_prefix_of("ci-42-7") == "Ci-42-7"
    assert stack_name("llm", conventions.DATA_STACK) == "Llm-Data"
    assert conventions.cluster_name("llm") == "llm-cluster"


def test_stacks_are_named_by_the_shared_rule() -> None:
    from eks_llm_stack.config import Profile
    from eks_llm_stack.ops.ephemeral import cluster_name_for, stack_names_for

    assert stack_names_for("ci-42") == tuple(stack_name("ci-42", r) for r in conventions.STACK_ROLES)
    assert cluster_name_for("ci-42") == Profile(prefix="ci-42").cluster_name == "ci-42-cluster"


# -- regressions: the facts are not spelled again outside conventions / naming ------------------------


def _sources() -> list[tuple[str, ast.Module, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if "third_party" in path.parts or rel in {"conventions.py", "naming.py"}:
            continue
        text = path.read_text()
        out.append((rel, ast.parse(text), text))
    return out


#: Spellings of conventions' cross-layer names: tag keys, label keys, resource names, secret and claim names.
SHARED = {
    v: k
    for k, v in vars(conventions).items()
    if k.isupper() and isinstance(v, str) and ("/" in v or ":" in v or k in {"HF_TOKEN_SECRET"})
} | {v: f"CACHE_CLAIMS[{k!r}]" for k, v in conventions.CACHE_CLAIMS.items()}


def spelled_again(sources: list[tuple[str, ast.Module, str]]) -> list[str]:
    found = []
    for rel, tree, text in sources:
        if rel in UPSTREAM_READERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in SHARED:
                found.append(f"{rel}:{node.lineno}: {node.value!r} is conventions.{SHARED[node.value]}")
            # f"{prefix}-cluster": the cluster name is conventions.cluster_name
            if isinstance(node, ast.JoinedStr) and node.values:
                last = node.values[-1]
                if isinstance(last, ast.Constant) and str(last.value).endswith("-cluster"):
                    found.append(f"{rel}:{node.lineno}: an f-string '...-cluster' is conventions.cluster_name")
            # a host memory reserve written as a number
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                numeric = isinstance(node.value.value, int | float)
                for target in node.targets:
                    if numeric and isinstance(target, ast.Name) and re.search(r"(HOST|MEMORY)_RESERVE", target.id):
                        found.append(f"{rel}:{node.lineno}: {target.id} is conventions.HOST_MEMORY_RESERVE_GIB")
        for i, line in enumerate(text.splitlines(), 1):
            if re.search(r"\b4 \* 1024\b(?! \*)|\b4096 ?Mi\b", line):
                found.append(f"{rel}:{i}: a 4 GiB reserve in MiB is conventions.HOST_MEMORY_RESERVE_GIB")
            if re.search(r"capitalize\(\) for \w+ in [\w.]+\.split\(['\"]-['\"]\)", line):
                found.append(f"{rel}:{i}: kebab -> Pascal case is naming.pascal_case")
    return found


def test_shared_names_are_spelled_once() -> None:
    assert spelled_again(_sources()) == []


def test_the_regression_check_finds_each_spelling() -> None:
    bad = """
key = "eks-llm-stack:expires-at"
claim = "model-cache-efs"
name = f"{prefix}-cluster"
HOST_MEMORY_RESERVE_GIB = 4.0
mib = 4 * 1024
cid = "".join(part.capitalize() for part in name.split("-"))
"""
    found = spelled_again([("stacks/bad.py", ast.parse(bad), bad)])
    assert sorted(f.split(": ", 1)[0] for f in found) == [f"stacks/bad.py:{n}" for n in (2, 3, 4, 5, 6, 7)]
    assert any("conventions.TAG_EXPIRES_AT" in f for f in found)
