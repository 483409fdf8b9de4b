"""`resolve_documents` skips the jsii round trip only where `Stack.resolve` would change nothing: the
stack itself judges, on every document a synth writes and on the cases the shortcut refuses."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Fn, Stack, Token

from eks_llm_stack.charts.render import _plain, placeholders, resolve_documents
from eks_llm_stack.constructs.applied import applied_manifests


def _through_the_stack(docs: list[dict[str, Any]], stack: Stack) -> list[dict[str, Any]]:
    return placeholders(stack.resolve(docs))  # type: ignore[no-any-return]


def test_every_written_document_resolves_as_the_stack_resolves_it(any_synth) -> None:
    built = any_synth.built
    registry = built.platform.charts
    sources = [(registry.documents[name], stack) for name, _, stack in registry.entries]
    sources += [([dict(d) for d in a.documents], a.stack) for a in applied_manifests(built.app)]
    shortcut = 0
    for docs, stack in sources:
        assert resolve_documents(docs, stack) == _through_the_stack(docs, stack)
        shortcut += all(_plain(d) for d in docs)
    # The shortcut is taken (model charts have no tokens); charts with tokens still go to the stack.
    assert shortcut > 0
    if built.profile.models:
        assert all(_plain(d) for d in registry.documents[f"model-{built.profile.models[0].name}"])


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(App(), "Resolve")


@pytest.mark.parametrize(
    ("doc", "plain"),
    [
        ({"kind": "ConfigMap", "data": {"a": "b", "n": 3, "t": True, "l": [1, "x", {"y": []}], "e": {}}}, True),
        ({"data": {"a": None}}, False),  # jsii passes None as undefined: resolving drops the key
        ({"data": [None, "x"]}, False),
        ({"replicas": 1.0}, False),  # comes back as 1
        ({"data": {"b": "1", "10": "2", "a": "3"}}, False),  # JavaScript orders "10" first
        ({"big": 2**60}, False),
        ({"text": "see {Token[ here"}, False),  # looks like a token mark: the stack decides
    ],
)
def test_the_shortcut_gives_what_the_stack_gives(stack: Stack, doc: dict[str, Any], plain: bool) -> None:
    assert _plain(doc) is plain
    assert resolve_documents([doc], stack) == _through_the_stack([doc], stack)


def test_tokens_still_become_placeholders(stack: Stack) -> None:
    bucket = Fn.import_value("WeightsBucket")
    number = Token.as_number(Fn.import_value("Port"))
    docs = [{"data": {"bucket": bucket, "port": number, "list": Token.as_list(Fn.import_value("L"))}}]
    assert not _plain(docs[0])
    assert resolve_documents(docs, stack) == _through_the_stack(docs, stack)
    assert resolve_documents(docs, stack)[0]["data"]["bucket"] == "${import:WeightsBucket}"
