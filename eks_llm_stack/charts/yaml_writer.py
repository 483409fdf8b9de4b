"""A block-style YAML writer for JSON-like documents, byte for byte what PyYAML writes.

``dist/manifests`` is ``yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)`` of plain
data (dicts with string keys, lists, strings, ints, floats, bools, None). PyYAML's pure-Python pipeline
(representer, serializer, an event-driven emitter) spends most of its time on bookkeeping that such
data does not need: block layout here is a direct recursion, and each distinct scalar is analysed
once.

What stays PyYAML's: the style choice (``Emitter.choose_scalar_style``), the implicit-tag resolution
(``SafeDumper.resolve``), the representation of ints, floats, bools and None (``SafeRepresenter``), and
every scalar that might be folded at 80 columns or broken over lines (``Emitter.write_plain``/
``write_single_quoted``/``write_double_quoted`` run at the scalar's real column and indent). What this
module does itself: the block layout, which follows ``Emitter.expect_block_mapping``/
``expect_block_sequence`` (``key: value``, indentless sequences under a key, ``- `` items, ``{}``/``[]``
for empty collections, ``---`` between documents), and :func:`analyze`, ``Emitter.analyze_scalar`` by
regular expressions (the tests compare the two field for field).

Anything else (a non-string key, a key PyYAML would write as ``? key``, the same dict or list twice in
one document (PyYAML writes an anchor), a tuple, a subclass, a scalar PyYAML would tag) makes
:func:`dump_block_documents` return ``None``: the caller falls back to PyYAML.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from yaml.emitter import Emitter, ScalarAnalysis
from yaml.events import ScalarEvent
from yaml.nodes import ScalarNode

__all__ = ["analyze", "clear_caches", "dump_block_documents"]

#: PyYAML's defaults for ``safe_dump_all`` without ``width``/``indent``: the writer assumes them.
_WIDTH = 80
_STR_TAG = "tag:yaml.org,2002:str"
#: ``Emitter.check_simple_key``: a key is written ``key:`` only while tag + text stay under 128 characters.
_SIMPLE_KEY_LIMIT = 128
#: A limit no column reaches: the scalar is never folded.
_NEVER = 1 << 30


class _Unsupported(Exception):
    """The documents hold something this writer does not reproduce; PyYAML writes them."""


class _Sink:
    """A stream for a scratch ``Emitter``: collects what it writes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.write = self.parts.append

    def text(self) -> str:
        return "".join(self.parts)


def _scratch(column: int = 0, indent: int = 0, whitespace: bool = True) -> tuple[Emitter, _Sink]:
    """A PyYAML emitter (default settings, as ``safe_dump_all`` makes it) placed at a column and indent."""
    sink = _Sink()
    emitter = Emitter(sink)
    emitter.column = column
    emitter.indent = indent
    emitter.whitespace = whitespace
    emitter.indention = whitespace
    emitter.flow_level = 0
    emitter.root_context = False
    emitter.tag_prefixes = dict(Emitter.DEFAULT_TAG_PREFIXES)
    return emitter, sink


#: Words whose analysis is plain: an alphanumeric first character, then only ``_./=+-`` besides.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./=+-]*")
_WRITERS = {"": Emitter.write_plain, "'": Emitter.write_single_quoted, '"': Emitter.write_double_quoted}
#: PyYAML's resolver and representer, for implicit tags and for writing ints, floats, bools and None.
_RESOLVER = yaml.SafeDumper(_Sink())


_WS = "\0 \t\r\n\x85\u2028\u2029"
_BREAKS = "\n\x85\u2028\u2029"
#: With ``allow_unicode`` off (as ``safe_dump_all`` leaves it), every character outside these is special.
_SPECIAL = re.compile("[^\n\x20-\x7e]")
_LINE_BREAK = re.compile(f"[{_BREAKS}]")
_BREAK_SPACE = re.compile(f"[{_BREAKS}] ")
_SPACE_BREAK = re.compile(f" [{_BREAKS}]")
#: Indicators inside a scalar: ``,?[]{}:`` stop flow plain; ``:`` before a space or the end, and ``#`` after
#: one, stop block plain too.
_FLOW_INDICATOR = re.compile(r"[,?\[\]{}:]")
_BLOCK_INDICATOR = re.compile(f":(?:[{_WS}]|\\Z)|[{_WS}]#")


def analyze(text: str) -> ScalarAnalysis:
    """``Emitter.analyze_scalar(text)`` for ``allow_unicode`` off, field for field, by regular expressions
    instead of PyYAML's loop over every character (a dashboard's JSON is tens of kilobytes).

    ``tests/test_yaml_writer.py`` compares it with PyYAML's on generated text.
    """
    if not text:
        return ScalarAnalysis(text, True, False, False, True, True, True, False)
    first, last = text[0], text[-1]
    followed_by_whitespace = len(text) == 1 or text[1] in _WS
    # Leading indicators; a document marker reads as both kinds.
    block = flow = (
        text.startswith(("---", "...")) or first in "#,[]{}&*!|>'\"%@`" or (first == "-" and followed_by_whitespace)
    )
    if first in "?:":
        flow = True
        block = block or followed_by_whitespace
    # (At the first character these find nothing the checks above have not.)
    if _BLOCK_INDICATOR.search(text):
        block = flow = True
    elif not flow and _FLOW_INDICATOR.search(text):
        flow = True
    line_breaks = _LINE_BREAK.search(text) is not None
    special = _SPECIAL.search(text) is not None
    space_break = _SPACE_BREAK.search(text) is not None
    break_space = _BREAK_SPACE.search(text) is not None
    flow_plain = block_plain = single_quoted = block_style = True
    if first == " " or first in _BREAKS or last == " " or last in _BREAKS:
        flow_plain = block_plain = False
    if last == " ":
        block_style = False
    if break_space:
        flow_plain = block_plain = single_quoted = False
    if space_break or special:
        flow_plain = block_plain = single_quoted = block_style = False
    if line_breaks:
        flow_plain = block_plain = False
    if flow:
        flow_plain = False
    if block:
        block_plain = False
    return ScalarAnalysis(text, False, line_breaks, flow_plain, block_plain, single_quoted, True, block_style)


class _Scalar:
    """How PyYAML writes one scalar text (with its tag) as a mapping key and as a value."""

    __slots__ = ("body", "key", "limit", "spaced", "style", "text")

    def __init__(self, text: str, tag: str) -> None:
        self.text = text
        emitter, _ = _scratch()
        plain_word = tag == _STR_TAG and _PLAIN_WORD.fullmatch(text) is not None
        analysis = analyze(text)
        implicit = (
            _RESOLVER.resolve(ScalarNode, text, (True, False)) == tag,
            _RESOLVER.resolve(ScalarNode, text, (False, True)) == tag,
        )
        emitter.event = ScalarEvent(None, tag, implicit, text)
        emitter.analysis = analysis

        def style_in(simple_key: bool) -> str:
            emitter.simple_key_context = simple_key
            style: str = emitter.choose_scalar_style()
            # ``Emitter.process_tag``: a tag is written unless the style keeps the scalar's type implicit.
            if not ((style == "" and implicit[0]) or (style != "" and implicit[1])):
                raise _Unsupported(f"PyYAML would tag {text!r}")
            return style

        self.style = style_in(simple_key=False)
        #: Unfolded text (without the separating space): exact whenever the scalar starts at or before
        #: ``limit`` (its column after the separating space). Not needed for text that always reaches
        #: past the width (a script, a long reason): PyYAML's writer writes it at its real position.
        self.body = ""
        self.limit = -1
        if plain_word:
            # Plain, or quoted because it reads as another type ('010', 'true'): no quote inside to double.
            self.body = text if self.style == "" else f"'{text}'"
            self.limit = _NEVER
        elif len(text) < _WIDTH:
            self.body = _unfolded(text, self.style)
            self.limit = _fold_limit(text, self.style, self.body, analysis.multiline)
        self.spaced = " " + self.body
        #: The key form (``Emitter.check_simple_key``), or None where PyYAML writes ``? key``.
        self.key: str | None = None
        prepared_tag = emitter.prepare_tag(tag)
        if not analysis.empty and not analysis.multiline and len(prepared_tag) + len(text) < _SIMPLE_KEY_LIMIT:
            try:
                style = style_in(simple_key=True)
            except _Unsupported:
                return
            # A one-line key is written unfolded, as the value's body when the styles agree.
            self.key = self.body if style == self.style and self.body else _unfolded(text, style)


def _unfolded(text: str, style: str) -> str:
    """``text`` written in ``style`` by PyYAML with folding off (``split=False``: how keys are written)."""
    emitter, sink = _scratch()
    _WRITERS[style](emitter, text, False)
    return sink.text()


def _fold_limit(text: str, style: str, body: str, multiline: bool) -> int:
    """The last start column at which PyYAML writes ``text`` as ``body`` (no fold at ``_WIDTH``).

    Plain and single-quoted scalars fold only at a space; double-quoted ones after any character once
    the line would pass the width. A conservative bound is enough: past it, PyYAML's writer runs at the
    real position. Single-quoted text with line breaks is always written by PyYAML (its breaks indent).
    """
    if multiline and style != '"':
        return -1
    if style != '"' and " " not in text:
        return _NEVER
    # Any break test compares at most (start column + rendered text before the closing quote) with the width.
    return _WIDTH + 1 - len(body)


class _Writer:
    """Writes documents in PyYAML's block layout (``Emitter.expect_block_mapping``/``_sequence``) into ``out``."""

    #: One analysis per distinct scalar, shared by every call (the same labels and scripts recur in
    #: every chart): strings by themselves, other scalars by type and value (floats by ``repr``:
    #: ``-0.0 == 0.0``, ``nan != nan``). A long-lived process writing many distinct strings starts over.
    _strings: ClassVar[dict[str, _Scalar]] = {}
    _others: ClassVar[dict[tuple[type, Any], _Scalar]] = {}
    #: Folded scalars by (text, style, start column, indent): the same long strings recur at the same place.
    _folded: ClassVar[dict[tuple[str, str, int, int], str]] = {}
    _CACHE_LIMIT = 200_000

    def __init__(self) -> None:
        self.out: list[str] = []
        self.seen: set[int] = set()
        for cache in (self._strings, self._others, self._folded):
            if len(cache) > self._CACHE_LIMIT:
                cache.clear()

    def document(self, doc: dict[str, Any], first: bool) -> None:
        # PyYAML anchors a dict or list that occurs twice in one document (``&id001``/``*id001``).
        self.seen = {id(doc)}
        out = self.out
        if not first:
            out.append("---")
        if doc:
            # After ``---`` the root mapping starts on the next line.
            self.mapping(doc, 0, "" if first else "\n")
        else:
            out.append("{}" if first else " {}")
        out.append("\n")

    def string(self, text: str) -> _Scalar:
        found = self._strings.get(text)
        if found is None:
            found = self._strings[text] = _Scalar(text, _STR_TAG)
        return found

    def other(self, value: Any) -> _Scalar:
        tp = type(value)
        if not (tp is int or tp is bool or tp is float or value is None):
            raise _Unsupported(f"no block writer for {tp.__name__}")
        key = (tp, repr(value) if tp is float else value)
        found = self._others.get(key)
        if found is None:
            node = _RESOLVER.represent_data(value)
            found = self._others[key] = _Scalar(node.value, node.tag)
        return found

    def folded(self, info: _Scalar, column: int, indent: int) -> str:
        """A scalar PyYAML may fold: written by PyYAML's writer at ``column`` (after the separating space),
        continuation lines at ``indent``."""
        key = (info.text, info.style, column, indent)
        text = self._folded.get(key)
        if text is None:
            emitter, sink = _scratch(column=column - 1, indent=indent, whitespace=False)
            _WRITERS[info.style](emitter, info.text, True)
            text = self._folded[key] = sink.text()
        return text

    def collection(self, value: dict[Any, Any] | list[Any], indent: int, in_mapping: bool) -> None:
        """A dict or list after ``key:`` (``in_mapping``: of a mapping at ``indent``) or after ``-``
        (of a sequence at ``indent``)."""
        ident = id(value)
        if ident in self.seen:
            raise _Unsupported("a collection occurs twice in one document")
        self.seen.add(ident)
        if not value:
            self.out.append(" {}" if isinstance(value, dict) else " []")
        elif isinstance(value, dict):
            self.mapping(value, indent + 2, "\n" + " " * (indent + 2) if in_mapping else " ")
        elif in_mapping:
            # A sequence under a key is indentless (``Emitter.expect_block_sequence``).
            self.sequence(value, indent, "\n" + " " * indent)
        else:
            self.sequence(value, indent + 2, " ")

    def mapping(self, value: dict[Any, Any], indent: int, lead: str) -> None:
        """A non-empty mapping at ``indent``; ``lead`` goes before its first key."""
        out = self.out
        strings = self._strings
        sep = "\n" + " " * indent
        for key, item in value.items():
            if type(key) is not str:
                raise _Unsupported("a key that is not a string")
            written = (strings.get(key) or self.string(key)).key
            if written is None:
                raise _Unsupported(f"PyYAML writes {key!r} as a complex key")
            out.append(lead)
            out.append(written)
            out.append(":")
            lead = sep
            tp = type(item)
            if tp is dict or tp is list:
                self.collection(item, indent, True)
                continue
            info = (strings.get(item) or self.string(item)) if tp is str else self.other(item)
            column = indent + len(written) + 2
            out.append(info.spaced if column <= info.limit else self.folded(info, column, indent + 2))

    def sequence(self, value: list[Any], indent: int, lead: str) -> None:
        """A non-empty sequence at ``indent``; ``lead`` goes before its first ``-``."""
        out = self.out
        strings = self._strings
        sep = "\n" + " " * indent
        column = indent + 2
        for item in value:
            out.append(lead)
            out.append("-")
            lead = sep
            tp = type(item)
            if tp is dict or tp is list:
                self.collection(item, indent, False)
                continue
            info = (strings.get(item) or self.string(item)) if tp is str else self.other(item)
            out.append(info.spaced if column <= info.limit else self.folded(info, column, column))


def clear_caches() -> None:
    """Forget every remembered scalar (as a new process starts): for measurements."""
    for cache in (_Writer._strings, _Writer._others, _Writer._folded):
        cache.clear()


def dump_block_documents(docs: list[Any]) -> str | None:
    """``yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)``, or None if not handled."""
    if not docs:
        return None
    writer = _Writer()
    try:
        for index, doc in enumerate(docs):
            if type(doc) is not dict:
                return None
            writer.document(doc, index == 0)
    except _Unsupported:
        return None
    return "".join(writer.out)
