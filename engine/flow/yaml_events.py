"""Build data from a YAML event stream, recording where every key and value was written.

We never let PyYAML compose or construct: its composer recurses (deep nesting
crashes it), expands aliases (bombs), keeps the last of duplicate keys and runs
tags. Instead we read the parser's events — libyaml's C parser when installed,
which is iterative and fast — and build plain data with an explicit stack:

- depth and total node count are bounded; an alias adds the size of what it
  repeats to the count without being expanded first, so a "billion laughs"
  document is refused after reading a few lines;
- a duplicate key, an alias to an enclosing node, a tag other than the core
  scalar/collection tags, a complex key, a second document: each is a
  :class:`LoadProblem` at the offending spot.

Scalars follow YAML 1.2's core schema: ``yes``/``no``/``on``/``off``, dates and
``1:30`` stay strings; an integral float (``5.0``) is read as the integer it is.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from engine.errors import FlowdeskError

PathKey = str | int
Path = tuple[PathKey, ...]

_CORE = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR = _CORE + "map", _CORE + "seq", _CORE + "str"
_MERGE = _CORE + "merge"

_Base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class EventLoader(_Base):  # type: ignore[misc]
    """The fastest available safe parser, with YAML 1.2 core-schema resolution."""


EventLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", ["<"]),
]:
    EventLoader.add_implicit_resolver(_CORE + _tag, re.compile(_regexp), _first)


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column of a node in its file."""

    line: int
    column: int


class LoadProblem(FlowdeskError):
    """The document cannot be read; ``code`` is a diagnostic code, ``position`` where."""

    def __init__(self, code: str, message: str, position: Position, path: Path, hint: str | None = None) -> None:
        self.code = code
        self.message = message
        self.position = position
        self.path = path
        self.hint = hint
        super().__init__(message)


@dataclass
class _Open:
    """A mapping or sequence being built."""

    path: Path
    value: dict[str, Any] | list[Any]
    anchor: str | None
    size: int = 1
    key: str | None = None
    key_is_merge: bool = False
    merges: list[tuple[Any, Position]] = field(default_factory=list)


def _pos(event: Event) -> Position:
    mark = event.start_mark
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


def _int(text: str) -> int:
    text = text.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits)


def _float(text: str) -> float | int:
    lowered = text.lower().replace("_", "")
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    value = float(lowered)
    # JSON Schema calls 5.0 an integer; reading it as one keeps the model simple.
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


_SCALARS: dict[str, Any] = {
    _STR: lambda text: text,
    _CORE + "int": _int,
    _CORE + "float": _float,
    _CORE + "bool": lambda text: text.lower() == "true",
    _CORE + "null": lambda text: None,
}


class DataBuilder:
    """Consumes events of one document and produces its data and positions."""

    def __init__(self, loader: EventLoader, *, max_nodes: int, max_depth: int) -> None:
        self.loader = loader
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}
        self.count = 0
        self.stack: list[_Open] = []
        #: anchor -> (value, size), or None while the anchored node is still open
        self.anchors: dict[str, tuple[Any, int] | None] = {}

    # -- driving ------------------------------------------------------------------

    def document(self) -> tuple[bool, Any]:
        """Read the stream; returns (has_document, data)."""
        loader = self.loader
        loader.get_event()  # StreamStart
        if isinstance(loader.peek_event(), StreamEndEvent):
            return False, None
        loader.get_event()  # DocumentStart
        root: list[Any] = []
        while True:
            event = loader.get_event()
            done = self.feed(event, root)
            if done:
                break
        loader.get_event()  # DocumentEnd
        following = loader.get_event()
        if isinstance(following, DocumentStartEvent):
            raise LoadProblem(
                "FD101",
                "found another document: a flow file holds one YAML document",
                _pos(following),
                (),
                hint="remove the extra `---` and what follows, or split it into its own file",
            )
        return True, root[0]

    def feed(self, event: Event, root: list[Any]) -> bool:
        """Handle one event; True once the root node is complete."""
        if isinstance(event, ScalarEvent):
            return self.scalar(event, root)
        if isinstance(event, AliasEvent):
            return self.alias(event, root)
        if isinstance(event, CollectionStartEvent):
            self.open(event)
            return False
        if isinstance(event, (MappingEndEvent, SequenceEndEvent)):
            return self.close(root)
        raise LoadProblem("FD101", f"unexpected YAML event {type(event).__name__}", _pos(event), self.path())

    # -- helpers ------------------------------------------------------------------

    def path(self) -> Path:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        return (*top.path, top.key) if top.key is not None else top.path

    def grow(self, size: int, event: Event) -> None:
        self.count += size
        if self.count > self.max_nodes:
            raise LoadProblem(
                "FD105",
                f"the document expands to more than {self.max_nodes} nodes (aliases used as a bomb?)",
                _pos(event),
                self.path(),
            )

    def expects_key(self) -> bool:
        top = self.stack[-1] if self.stack else None
        return top is not None and isinstance(top.value, dict) and top.key is None and not top.key_is_merge

    def check_tag(self, tag: str | None, allowed: str, event: Event) -> None:
        if tag is not None and tag not in ("!", allowed):
            raise LoadProblem(
                "FD101",
                f"YAML tag {tag!r} is not supported in flow files",
                _pos(event),
                self.path(),
                hint="remove the `!tag`; flows use plain strings, numbers, lists and mappings",
            )

    def place(self, value: Any, size: int, position: Position, root: list[Any]) -> bool:
        """Put a finished value where it belongs; True if it was the root."""
        if not self.stack:
            root.append(value)
            return True
        top = self.stack[-1]
        top.size += size
        if isinstance(top.value, list):
            self.values.setdefault((*top.path, len(top.value)), position)
            top.value.append(value)
        elif top.key_is_merge:
            top.merges.append((value, position))
            top.key_is_merge = False
        else:
            assert top.key is not None
            self.values.setdefault((*top.path, top.key), position)
            top.value[top.key] = value
            top.key = None
        return False

    # -- events -------------------------------------------------------------------

    def scalar(self, event: ScalarEvent, root: list[Any]) -> bool:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _STR if tag == "!" else self.loader.resolve(ScalarNode, event.value, event.implicit)
        if tag == _MERGE and self.expects_key():
            self.stack[-1].key_is_merge = True
            return False
        if tag not in _SCALARS:
            self.check_tag(tag, _STR, event)
        try:
            value = _SCALARS[tag](event.value)
        except ValueError:
            raise LoadProblem(
                "FD101", f"{event.value!r} is not a valid {tag.rsplit(':', 1)[-1]}", _pos(event), self.path()
            ) from None
        self.grow(1, event)
        if self.expects_key():
            return self.key(_pos(event), value)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        return self.place(value, 1, _pos(event), root)

    def key(self, position: Position, value: Any) -> bool:
        top = self.stack[-1]
        if value is None:
            raise LoadProblem(
                "FD110", "a mapping key is empty", position, top.path, hint="write a name before the colon"
            )
        key = str(value).lower() if isinstance(value, bool) else str(value)
        assert isinstance(top.value, dict)
        if key in top.value:
            first = self.keys[(*top.path, key)]
            raise LoadProblem(
                "FD102",
                f"key {key!r} appears twice in this mapping (first at line {first.line})",
                position,
                (*top.path, key),
            )
        self.keys[(*top.path, key)] = position
        top.key = key
        return False

    def alias(self, event: AliasEvent, root: list[Any]) -> bool:
        if event.anchor not in self.anchors:
            raise LoadProblem(
                "FD101",
                f"alias *{event.anchor} refers to no anchor",
                _pos(event),
                self.path(),
                hint="define the anchor (&name) before using the alias (*name)",
            )
        target = self.anchors[event.anchor]
        if target is None:
            raise LoadProblem(
                "FD105", "an alias refers to a node that contains it (recursive structure)", _pos(event), self.path()
            )
        value, size = target
        self.grow(size, event)  # counted before copying: a bomb stops here
        if self.expects_key():
            if isinstance(value, (dict, list)):
                raise LoadProblem("FD110", "mapping keys must be plain text", _pos(event), self.path())
            return self.key(_pos(event), value)
        return self.place(copy.deepcopy(value), size, _pos(event), root)

    def open(self, event: CollectionStartEvent) -> None:
        if self.expects_key():
            raise LoadProblem(
                "FD110", "mapping keys must be plain text, not lists or mappings", _pos(event), self.path()
            )
        is_map = isinstance(event, MappingStartEvent)
        self.check_tag(event.tag, _MAP if is_map else _SEQ, event)
        if len(self.stack) > self.max_depth:
            raise LoadProblem(
                "FD105", f"the document is nested deeper than {self.max_depth} levels", _pos(event), self.path()
            )
        self.grow(1, event)
        path = self.path()
        self.values.setdefault(path, _pos(event))
        if event.anchor is not None:
            self.anchors[event.anchor] = None
        self.stack.append(_Open(path, {} if is_map else [], event.anchor))

    def close(self, root: list[Any]) -> bool:
        done = self.stack.pop()
        value = done.value
        if isinstance(value, dict) and done.merges:
            value = self.merged(value, done)
        if done.anchor is not None:
            self.anchors[done.anchor] = (value, done.size)
        position = self.values.get(done.path, Position(1, 1))
        return self.place(value, done.size, position, root)

    def merged(self, value: dict[str, Any], done: _Open) -> dict[str, Any]:
        """``<<: *base`` fills in the keys the mapping did not set itself."""
        for source, position in done.merges:
            for part in source if isinstance(source, list) else [source]:
                if not isinstance(part, dict):
                    raise LoadProblem("FD110", "`<<` merges only mappings", position, done.path)
                for key, item in part.items():
                    value.setdefault(key, copy.deepcopy(item))
        return value
