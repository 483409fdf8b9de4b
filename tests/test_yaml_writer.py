"""The block YAML writer of dist/manifests: PyYAML's ``safe_dump_all`` is the judge, byte for byte."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.emitter import Emitter

from eks_llm_stack import synth
from eks_llm_stack.charts import yaml_writer
from eks_llm_stack.charts.render import dump_documents
from eks_llm_stack.charts.yaml_writer import dump_block_documents


def pyyaml(docs: list[Any]) -> str:
    """What dist/manifests held before the writer: the exact call it replaces."""
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def test_every_chart_document_of_every_shipped_profile_is_written_as_pyyaml_writes_it(
    any_synth, tmp_path, monkeypatch
) -> None:
    # The documents themselves (not re-read from YAML): what write_chart_manifests hands the writer.
    batches: list[list[dict[str, Any]]] = []

    def recording(docs: list[dict[str, Any]]) -> str:
        batches.append(docs)
        return dump_documents(docs)

    monkeypatch.setattr(synth, "dump_documents", recording)
    synth.write_chart_manifests(any_synth.built, tmp_path / "manifests")
    assert sum(len(b) for b in batches) > 20
    for docs in batches:
        fast = dump_block_documents(docs)
        # Chart documents are plain data: the fast path must take them all, not fall back.
        assert fast is not None, [d.get("kind") for d in docs]
        assert fast == pyyaml(docs), [d.get("kind") for d in docs]


# -- generated documents ---------------------------------------------------------------------------------
#: Strings that resolve to another type, or that start or contain indicators, when written plain.
TRICKY = [
    "", " ", "010", "0x1F", "0o17", "1_000", "12:30", "1e3", "1.0", "1.", ".5", "-1", "+1", ".inf", "-.inf",
    ".nan", "yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "Null", "~", "<<", "=", "-", "--", "---",
    "...", "- a", "-a", ": x", ":x", "a:", "a: b", "a:b", "? x", "?x", "#x", "a #b", "a#b", "[a]", "{a}", "a,b",
    "&a", "*a", "!a", "|", ">", "'a'", '"a"', "%a", "@a", "`a", "a'b", 'a"b', "a\\b", "2001-12-14",
    "2001-12-14t21:59:43.10-05:00", " lead", "trail ", "a  b", "a\nb", "a\n", "\na", "a \nb", "a\n b", "a\n\nb",
    "tab\tx", "cr\rx", "nul\x00x", "bell\x07", "é", "中文", "\xa0nbsp", "next\x85line", "ls\u2028ps\u2029",
    "bom\ufeff", "emoji 😀", "\ud7ff\ue000", "\U0010ffff",
]  # fmt: skip
CHARS = st.sampled_from([*"abcXYZ019 -_.:/#'\"\\,?[]{}&*!|>%@`=~\n\t\r", "é", "中", "\x85", "\u2028", "\xa0"])
WORD = st.text(alphabet=CHARS, max_size=12)
#: Long strings with spaces, so that PyYAML folds them at 80 columns (plain, quoted, at any indent).
LONG = st.lists(st.text(alphabet=CHARS, min_size=1, max_size=14), min_size=6, max_size=40).map(" ".join)
TEXT = st.one_of(st.sampled_from(TRICKY), WORD, LONG, st.text(max_size=30), st.text(min_size=60, max_size=200))
SCALARS = st.one_of(
    TEXT,
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.sampled_from([0.0, -0.0, 1e17, 1e-7, 1.5e300, float("inf"), float("-inf"), float("nan")]),
    st.booleans(),
    st.none(),
)
#: Keys PyYAML writes as ``key:`` (one line, under 123 characters) and ones it writes as ``? key``.
KEY_CHARS = st.sampled_from([*"abcXYZ019 -_.:/#'\"\\,?[]{}&*!|>%@`=~\t", "é", "中", "\xa0"])
SIMPLE_KEYS = st.one_of(
    st.sampled_from([t for t in TRICKY if t and not any(c in t for c in "\n\r\x85\u2028\u2029")]),
    st.text(alphabet=KEY_CHARS, min_size=1, max_size=12),
    st.lists(st.text(alphabet=KEY_CHARS, min_size=1, max_size=10), min_size=3, max_size=9).map(" ".join),
)
KEYS = st.one_of(SIMPLE_KEYS, st.sampled_from(["", "a\nb", "k" * 122, "k" * 123, "x" * 200]), TEXT)


def documents(keys: st.SearchStrategy[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    nodes = st.recursive(
        SCALARS,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=25,
    )
    return st.lists(st.dictionaries(keys, nodes, max_size=5), min_size=1, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(SIMPLE_KEYS))
def test_generated_documents_are_written_as_pyyaml_writes_them(docs: list[dict[str, Any]]) -> None:
    fast = dump_block_documents(docs)
    assert fast is not None
    assert fast == pyyaml(docs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(KEYS))
def test_any_keys_are_written_as_pyyaml_writes_them_or_left_to_pyyaml(docs: list[dict[str, Any]]) -> None:
    fast = dump_block_documents(docs)
    expected = pyyaml(docs)
    assert fast is None or fast == expected
    assert dump_documents(docs) == expected


ANALYSIS_FIELDS = (
    "scalar", "empty", "multiline", "allow_flow_plain", "allow_block_plain", "allow_single_quoted",
    "allow_double_quoted", "allow_block",
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.one_of(TEXT, st.text(alphabet=KEY_CHARS | CHARS | st.sampled_from(["\x00", " ", "#", ":", "-"]))))
def test_the_analysis_is_pyyamls_field_for_field(text: str) -> None:
    found, expected = yaml_writer.analyze(text), Emitter(None).analyze_scalar(text)  # type: ignore[no-untyped-call]
    assert [getattr(found, f) for f in ANALYSIS_FIELDS] == [getattr(expected, f) for f in ANALYSIS_FIELDS]


def test_the_analysis_is_pyyamls_for_every_indicator_at_every_place() -> None:
    marks = ["", " ", "\n", "\t", "\x00", "\x85", "\u2028", "-", "?", ":", "#", ",", "[", "}", "'", "|", "---", "...", "é",
             "~", "\x7f", "\ufeff"]  # fmt: skip
    texts = {a + b + c + d for a in marks for b in marks for c in ("", "a", "a b") for d in marks}
    for text in texts:
        found, expected = yaml_writer.analyze(text), Emitter(None).analyze_scalar(text)  # type: ignore[no-untyped-call]
        assert [getattr(found, f) for f in ANALYSIS_FIELDS] == [getattr(expected, f) for f in ANALYSIS_FIELDS], text


@settings(max_examples=200, deadline=None)
@given(st.from_regex(yaml_writer._PLAIN_WORD, fullmatch=True))
def test_words_the_writer_does_not_analyse_are_those_pyyaml_finds_plain(word: str) -> None:
    # The writer skips analyze_scalar for these words: PyYAML's analysis must allow every style for them.
    found = Emitter(None).analyze_scalar(word)  # type: ignore[no-untyped-call]
    assert (found.empty, found.multiline) == (False, False)
    assert found.allow_flow_plain and found.allow_block_plain and found.allow_single_quoted and found.allow_block
    assert dump_block_documents([{word: word, "k": [word]}]) == pyyaml([{word: word, "k": [word]}])


def test_strings_near_the_width_fold_at_every_column_and_depth_as_pyyaml_folds_them() -> None:
    # Whether PyYAML folds a scalar depends on the column it starts at: sweep it (key lengths) and the
    # indent of the continuation lines (depth), for strings that end just before and just past column 80.
    near = [
        ("ab " * n)[:length] + tail
        for n in (10, 27)
        for length in (30, 45, 58, 66, 72, 77)
        for tail in ("x", "'q'", 'say "hi"', "é ü", "x\ty", "a\nb", "a\n  b")
    ]
    docs: list[dict[str, Any]] = []
    for text in TRICKY + near:
        for depth in range(4):
            doc: dict[str, Any] = {"k" * n: text for n in range(1, 60, 3)}
            for level in range(depth):
                doc = {"level": doc} if level % 2 else {"list": [doc, [text, [text]], {"k": text}]}
            docs.append(doc)
    assert dump_block_documents(docs) == pyyaml(docs)


def test_long_strings_fold_where_pyyaml_folds_them() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    docs = [{"a": words, "b": {"c": [words, {"d": "'" + words + "'"}], "e": words + "\n  indented"}}]
    text = dump_block_documents(docs)
    assert text is not None and text.count("\n") > 10  # folded, not one long line each
    assert text == pyyaml(docs)


def test_what_the_writer_does_not_reproduce_is_left_to_pyyaml() -> None:
    shared = {"x": 1}
    cases: list[list[Any]] = [
        [{"a": shared, "b": shared}],  # PyYAML anchors it: &id001 / *id001
        [{1: "int key"}],
        [{"k" * 123: "a key PyYAML writes as '? key'"}],
        [{"multi\nline": 1}],
        [["a list as a document"]],
        [],
    ]
    for docs in cases:
        assert dump_block_documents(docs) is None, docs
        assert dump_documents(docs) == pyyaml(docs)
    assert "&id001" in dump_documents(cases[0])


def test_a_scalar_pyyaml_would_tag_is_left_to_pyyaml() -> None:
    class Text(str):
        pass

    # A str subclass is not plain data: SafeDumper refuses it, and so must the fast path (not write it).
    assert dump_block_documents([{"a": Text("x")}]) is None
