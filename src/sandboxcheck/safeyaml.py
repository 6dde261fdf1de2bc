"""Read the YAML (and JSON) files sandboxcheck is given, with limits.

Every matrix, suite, target file and accepted report goes through here. A
file is read only when it is a regular file (a FIFO, a device or a folder is
refused without blocking), at most ``MAX_BYTES`` of it, as strict UTF-8. YAML
is parsed into events by libyaml (when present) and composed into nodes by an
iterative composer of our own that bounds the nesting depth and the size the
document has once every alias is expanded, and refuses an alias that refers
to a node containing it. So a deep, looping or "billion laughs" document is
an error with its line, never a RecursionError, a hang or a MemoryError.

``Converter`` turns nodes into plain Python values (str keys, only the core
YAML types, merge keys ``<<`` resolved), remembering each node's line.
"""
from __future__ import annotations

import codecs
import datetime as dt
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

#: Largest file read (a matrix is a few KiB; this leaves a wide margin).
MAX_BYTES = 4 * 1024 * 1024
#: Deepest nesting of lists and mappings, aliases expanded.
MAX_DEPTH = 100
#: Most values (scalars, lists, mappings) a document may hold once its aliases are expanded.
MAX_NODES = 100_000

PathKey = tuple[str | int, ...]
_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
#: Tags whose values are read; anything else (``!!python/object``, ``!!binary``, ``!custom``) is refused.
_SCALAR_TAGS = frozenset(_TAG + t for t in ("null", "bool", "int", "float", "str", "timestamp"))
_KIND_WORDS = {ScalarNode: "a scalar", SequenceNode: "a list", MappingNode: "a mapping"}

try:  # libyaml's parser is fast and not recursive; the pure-Python one is the fallback
    _Parser: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = yaml.SafeLoader


class InputError(Exception):
    """A file given to sandboxcheck cannot be read as what it should be (bad input, exit 2)."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a regular file"


def read_bytes(path: str | Path, what: str = "file", limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file, refusing anything that could block or never end.

    Opened with O_NONBLOCK|O_NOCTTY so a FIFO or a terminal never blocks the
    open; fstat decides on the opened file itself (no race with a rename).
    """
    name = str(path)
    if not name:
        raise InputError("''", 0, f"empty {what} path")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        hint = " (a socket?)" if exc.errno == 6 else ""  # ENXIO: opening a unix socket
        raise InputError(name, 0, f"cannot read: {exc.strerror}{hint}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(name, 0, f"cannot read: {_kind(st.st_mode)}, not a {what} (a regular file)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except BlockingIOError:
        raise InputError(name, 0, "cannot read: the file would block (not a plain file)") from None
    except OSError as exc:
        raise InputError(name, 0, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(name, 0, f"is larger than {limit // (1024 * 1024)} MiB, too large for a {what}")
    return b"".join(chunks)


def decode(data: bytes, file: str) -> str:
    """Strict UTF-8 text (a UTF-8 BOM is dropped); InputError naming the line otherwise."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise InputError(file, 0, "is UTF-32 text: save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(file, 0, "is UTF-16 text: save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(file, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x}): a binary file, "
                                     "or text in another encoding (save it as UTF-8)") from None
    nul = text.find("\0")
    if nul >= 0:
        raise InputError(file, text.count("\n", 0, nul) + 1,
                         "contains NUL bytes: a binary file, or UTF-16 text without a BOM (save it as UTF-8)")
    return text


def read_text(path: str | Path, what: str = "file", limit: int = MAX_BYTES) -> str:
    """A regular file's content as strict UTF-8 text (see ``read_bytes`` and ``decode``)."""
    return decode(read_bytes(path, what, limit), str(path))


def _yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[int, str]:
    if isinstance(exc, yaml.reader.ReaderError):  # no mark, only a character position
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else 0
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        return line, f"invalid YAML: character 0x{char:02x} is not allowed ({exc.reason})"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    line = mark.line + 1 if mark is not None else 0
    if "maximum nesting depth" in problem:  # PyYAML >= 6.0.4 stops deep input itself
        return line or 1, f"nested deeper than {MAX_DEPTH} levels"
    return line, f"invalid YAML: {problem}"


def _events(text: str) -> Iterator[yaml.Event]:
    loader = _Parser(text)
    try:
        while loader.check_event():
            yield loader.get_event()
    finally:
        loader.dispose()


def compose(text: str, file: str) -> Node | None:
    """The node graph of a one-document YAML text (None when empty), within the limits.

    Iterative, so no nesting depth reaches Python's recursion limit. The
    expanded size (every alias counted as a copy of what it names) is counted
    as events arrive, so an alias bomb stops early; each node's expanded size
    and height are kept for the aliases that name it later.
    """
    resolver = Resolver()
    anchors: dict[str, Node] = {}
    size: dict[int, int] = {}      # id(closed node) -> values in it, aliases expanded
    height: dict[int, int] = {}    # id(closed node) -> levels below it, aliases expanded
    stack: list[Node] = []         # open collections, outermost first
    opened_at: list[int] = []      # `expanded` when each open collection started
    below: list[int] = []          # levels below each open collection so far
    pending_key: list[Node | None] = []
    open_ids: set[int] = set()
    root: Node | None = None
    documents = 0
    expanded = 0

    def add(node: Node, line: int, levels: int, count: int) -> None:
        """Attach ``node`` (``levels`` deep, ``count`` values once expanded) to the open collection."""
        nonlocal root, expanded
        expanded += count
        if expanded > MAX_NODES:
            raise InputError(file, line, f"holds more than {MAX_NODES} values" + (
                " once its aliases are expanded (an alias bomb?)" if anchors else ""))
        if len(stack) + levels > MAX_DEPTH:
            raise InputError(file, line, f"nested deeper than {MAX_DEPTH} levels")
        if not stack:
            root = node
            return
        below[-1] = max(below[-1], levels + 1)
        parent = stack[-1]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif pending_key[-1] is None:
            pending_key[-1] = node
        else:
            parent.value.append((pending_key[-1], node))
            pending_key[-1] = None

    try:
        for event in _events(text):
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise InputError(file, line, "more than one YAML document ('---'): "
                                                 "put everything in one")
            elif isinstance(event, yaml.AliasEvent):
                node = anchors.get(event.anchor)  # type: ignore[arg-type]
                if node is None:
                    raise InputError(file, line, f"alias *{event.anchor} names no anchor before it")
                if id(node) in open_ids:
                    raise InputError(file, line, f"alias *{event.anchor} refers to a value that contains "
                                                 "it (a loop)")
                add(node, line, height[id(node)], size[id(node)])
            elif isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolver.resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
                size[id(node)], height[id(node)] = 1, 0
                if event.anchor is not None:
                    anchors[event.anchor] = node
                add(node, line, 0, 1)
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolver.resolve(kind, None, event.implicit)
                node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = node
                add(node, line, 0, 1)
                stack.append(node)
                opened_at.append(expanded - 1)
                below.append(0)
                pending_key.append(None)
                open_ids.add(id(node))
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                node = stack.pop()
                node.end_mark = event.end_mark
                open_ids.discard(id(node))
                pending_key.pop()
                size[id(node)] = expanded - opened_at.pop()
                height[id(node)] = levels = below.pop()
                if stack:
                    below[-1] = max(below[-1], levels + 1)
    except yaml.YAMLError as exc:
        raise InputError(file, *_yaml_problem(exc, text)) from None
    except RecursionError:  # never expected (nothing above recurses); a message, not a traceback
        raise InputError(file, 0, f"nested deeper than {MAX_DEPTH} levels") from None
    return root


def tag_name(tag: str) -> str:
    """``tag:yaml.org,2002:python/object`` -> ``!!python/object``."""
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def end_line(node: Node) -> int:
    """1-based last line of a node's own text (a block collection's end mark is
    the next item's start, so descend to the last scalar instead).

    Bounded: the graph from ``compose`` has no loops and at most ``MAX_DEPTH``
    levels, and the walk stops there whatever it is given.
    """
    for _ in range(MAX_DEPTH + 1):
        if not isinstance(node, (MappingNode, SequenceNode)) or not node.value:
            break
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    mark = node.end_mark if node.end_mark is not None else node.start_mark
    end = mark.line + (0 if mark.column == 0 else 1)
    return max(end, node.start_mark.line + 1)


class Converter:
    """YAML nodes -> Python values, remembering the line of every node and key.

    Only core YAML values are read (null, bool, int, float, str; dates stay
    text); mapping keys become strings; merge keys (``<<: *defaults``) are
    resolved as YAML 1.1 says (the mapping's own keys win, then earlier
    merged mappings). Problems (a duplicate key, an unsupported tag, a
    non-finite number, ...) are collected through ``problem``; the offending
    value is kept as its text so validation can go on.
    """

    def __init__(self) -> None:
        self.lines: dict[PathKey, tuple[int, int]] = {}
        self.key_lines: dict[PathKey, int] = {}
        #: (line, path, message) of every problem met.
        self.issues: list[tuple[int, PathKey, str]] = []
        #: Paths whose value is a non-finite number (schema checks there add nothing).
        self.nonfinite: set[PathKey] = set()
        self._scalar = SafeConstructor()

    def problem(self, line: int, path: PathKey, message: str) -> None:
        """Record a problem (subclasses may format it their own way)."""
        self.issues.append((line, path, message))

    def convert(self, node: Node, path: PathKey = ()) -> Any:
        """The Python value of ``node`` (recursion bounded by ``MAX_DEPTH``, see ``compose``)."""
        line = node.start_mark.line + 1
        self.lines[path] = (line, end_line(node))
        if isinstance(node, MappingNode):
            if node.tag != _TAG + "map":
                self.problem(line, path, f"unsupported YAML tag {tag_name(node.tag)}")
            out: dict[str, Any] = {}
            for key_node, value_node, merged in self._pairs(node, path):
                if not isinstance(key_node, ScalarNode):
                    self.problem(key_node.start_mark.line + 1, path,
                                 f"a key must be plain text, not {_KIND_WORDS.get(type(key_node), 'a value')}")
                    continue
                key = self._key(key_node, path)
                if key in out:
                    if merged:
                        continue  # a key of the mapping itself, or of an earlier merge, wins
                    self.problem(key_node.start_mark.line + 1, path, f"duplicate key {key!r}")
                self.key_lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, path + (key,))
            return out
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                self.problem(line, path, f"unsupported YAML tag {tag_name(node.tag)}")
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._value(node, path)

    def _pairs(self, node: MappingNode, path: PathKey) -> list[tuple[Node, Node, bool]]:
        """(key, value, came from a merge) with the mapping's own pairs first, then
        merged ones in order (YAML 1.1 merge: earlier wins), so a plain dict walk
        keeping the first of each key gives the merge semantics."""
        own: list[tuple[Node, Node, bool]] = []
        merged: list[tuple[Node, Node, bool]] = []
        # Depth-first, preorder, with an explicit stack: a merged mapping may merge
        # others, and all of its keys win over those of the next source.
        todo: list[tuple[MappingNode, bool]] = [(node, False)]
        while todo:
            current, is_merge = todo.pop()
            sources: list[MappingNode] = []
            for key_node, value_node in current.value:
                if key_node.tag == _MERGE and isinstance(key_node, ScalarNode):
                    for src in value_node.value if isinstance(value_node, SequenceNode) else [value_node]:
                        if isinstance(src, MappingNode):
                            sources.append(src)
                        else:
                            self.problem(src.start_mark.line + 1, path,
                                         "'<<' merges a mapping or a list of mappings "
                                         f"(got {_KIND_WORDS.get(type(src), 'a value')})")
                    continue
                (merged if is_merge else own).append((key_node, value_node, is_merge))
            todo.extend((src, True) for src in reversed(sources))
        return own + merged

    def _key(self, node: ScalarNode, path: PathKey) -> str:
        value = self._value(node, path, as_key=True)
        return value if isinstance(value, str) else str(value)

    def _value(self, node: Node, path: PathKey, as_key: bool = False) -> Any:
        line = node.start_mark.line + 1
        if node.tag not in _SCALAR_TAGS:
            self.problem(line, path, f"unsupported YAML tag {tag_name(node.tag)} (only plain values are read)")
            return node.value
        try:
            value = SafeConstructor.yaml_constructors[node.tag](self._scalar, node)
        except (ValueError, OverflowError, yaml.YAMLError):  # e.g. a timestamp-shaped scalar that is no real date
            return node.value
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()  # YAML dates stay text, as in the schemas
        if isinstance(value, float) and not math.isfinite(value) and not as_key:
            self.problem(line, path, f"{node.value} is not a finite number")
            self.nonfinite.add(path)
        return value

    def line(self, path: PathKey) -> int:
        """Line of the value at ``path``, else of its nearest parent that has one."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, (0, 0))[0]


def format_path(path: PathKey) -> str:
    """``('checks', 3, 'expect')`` -> ``checks[3].expect``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load(path: str | Path, what: str = "file") -> tuple[Any, Converter]:
    """A YAML file's value (None when empty) and the converter holding its lines.

    Raises InputError for a file that cannot be read or parsed, and for the
    first problem the conversion met (callers that list every problem use
    ``compose`` and their own ``Converter``).
    """
    file = str(path)
    node = compose(read_text(path, what), file)
    conv = Converter()
    data = conv.convert(node) if node is not None else None
    if conv.issues:
        line, where, message = min(conv.issues, key=lambda i: i[0])
        raise InputError(file, line, f"{format_path(where)}: {message}" if where else message)
    return data, conv
