"""YAML from outside (settings, fleet files, inventories), read strictly and within bounds.

PyYAML's safe loader accepts a key given twice (the last one silently wins), expands aliases
without limit (a 1 KiB "billion laughs" document becomes gigabytes), recurses once per
nesting level (a deep document ends in RecursionError or a crash) and lets an impossible date
or a 5,000-digit number escape as a bare ValueError. Here, before anything is built:

- nesting deeper than ``YAML_MAX_DEPTH`` and more than ``YAML_MAX_NODES`` nodes are refused
  while reading the event stream, before a node tree exists;
- aliases are refused where a file is meant to be read line by line (settings, fleet files);
  where they are allowed (inventories), the document they expand to is bounded the same way
  and a recursive alias is refused;
- a tab in the indentation is refused with that reason (PyYAML's own message names a token);
- a key given twice is refused naming both lines;
- every other failure is a :class:`YamlInputError` naming the line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.resolver import Resolver

from orchestrator.core.errors import InvalidInput
from orchestrator.core.input_limits import YAML_MAX_DEPTH, YAML_MAX_NODES
from orchestrator.core.quoting import sanitize

try:  # libyaml when present (about 10x faster); the events, nodes and marks are the same
    from yaml import cyaml

    _CParser: Any = vars(cyaml).get("CParser")
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None
_TAB_INDENT = re.compile(r"^ *\t[ \t]*\S", re.MULTILINE)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_INT_BITS = 128


class YamlInputError(InvalidInput):
    """The document cannot be read; ``line`` is where (1-based), ``value`` what was refused
    there when one thing was (a key, an alias), else ""."""

    def __init__(self, line: int, problem: str, value: object = "") -> None:
        self.line = line
        self.problem = problem
        self.value = value
        super().__init__(f"line {line}: {problem}")


def _line(mark: Any) -> int:
    return int(mark.line) + 1 if mark is not None else 1


class _StrictConstructor(yaml.constructor.SafeConstructor):
    """The safe constructor, refusing a key given twice and naming the line of any value it
    cannot build."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # `<<: *base` merges are overridden by the keys beside them
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the safe constructor refuses it below
                line = _line(key_node.start_mark)
                if first is not None:
                    raise YamlInputError(line, f"given twice (also on line {first})", key)
                seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except (YamlInputError, yaml.YAMLError):
            raise
        except (ValueError, OverflowError) as exc:
            # An impossible date (2026-13-45), a number too long to convert, ...
            shown = node.value if isinstance(node, yaml.ScalarNode) else ""
            raise YamlInputError(_line(node.start_mark), f"cannot read it: {exc}", shown) from None
        if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            # No field of these files holds such a number; it would only fail later, farther
            # from its line (printing it alone raises past 4,300 digits).
            raise YamlInputError(_line(node.start_mark), "a number too large", node.value)
        return value


if _CParser is not None:

    class _Loader(_CParser, _StrictConstructor, Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            _StrictConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover

    class _Loader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _StrictConstructor,
        Resolver,
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _StrictConstructor.__init__(self)
            Resolver.__init__(self)


def _not_yaml(exc: yaml.YAMLError) -> str:
    """PyYAML's reason on one line (its str() spans several, with a caret drawing)."""
    reason = getattr(exc, "problem", None) or getattr(exc, "reason", None)
    if isinstance(exc, yaml.reader.ReaderError):
        reason = (
            f"character U+{exc.character:04X} is not allowed"
            if isinstance(exc.character, int)
            else reason
        )
    text = " ".join(str(reason or exc).split())
    return "not YAML: " + sanitize(text, 200)


def _error_line(exc: yaml.YAMLError) -> int:
    return _line(getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None))


def _check_events(text: str, aliases: bool, max_nodes: int, max_depth: int) -> None:
    """Depth, size and aliases from the event stream alone: nothing is built yet."""
    depth = count = 0
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise YamlInputError(
                        _line(event.start_mark), f"nested deeper than {max_depth} levels"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                continue
            elif isinstance(event, yaml.AliasEvent) and not aliases:
                raise YamlInputError(
                    _line(event.start_mark),
                    "aliases are not allowed in this file (write the value out)",
                    f"*{event.anchor}",
                )
            elif not isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                continue
            count += 1
            if count > max_nodes:
                raise YamlInputError(_line(event.start_mark), f"more than {max_nodes} values")
    except yaml.YAMLError as exc:
        raise YamlInputError(_error_line(exc), _not_yaml(exc)) from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, max_nodes: int, max_depth: int) -> None:
    """What aliases expand to: at most ``max_nodes`` nodes, ``max_depth`` levels, no cycle.
    Iterative, each distinct node visited once (an alias is the same node object again)."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, depth)
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes and not children_done:
            continue
        children = _children(node)
        if not children_done:
            if key in active:
                raise YamlInputError(_line(node.start_mark), "a recursive alias")
            active.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in active:
                    raise YamlInputError(_line(child.start_mark), "a recursive alias")
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        active.discard(key)
        measured = [sizes[id(child)] for child in children]
        size = 1 + sum(s for s, _ in measured)
        depth = 1 + max((d for _, d in measured), default=0)
        if size > max_nodes:
            raise YamlInputError(
                _line(node.start_mark), f"its aliases expand to more than {max_nodes} values"
            )
        if depth > max_depth:
            raise YamlInputError(
                _line(node.start_mark), f"its aliases nest deeper than {max_depth} levels"
            )
        sizes[key] = (size, depth)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def compose(
    text: str,
    *,
    aliases: bool = False,
    max_nodes: int = YAML_MAX_NODES,
    max_depth: int = YAML_MAX_DEPTH,
) -> yaml.Node | None:
    """The node tree of one document (None when empty), with line marks; bounded as above."""
    tab = _TAB_INDENT.search(text)
    if tab is not None:
        line = text.count("\n", 0, tab.start()) + 1
        raise YamlInputError(line, "a tab in the indentation (YAML indents with spaces)", "\t")
    _check_events(text, aliases, max_nodes, max_depth)
    loader = _Loader(text)
    try:
        root: yaml.Node | None = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise YamlInputError(_error_line(exc), _not_yaml(exc)) from None
    finally:
        loader.dispose()
    if root is not None and aliases:
        _check_expansion(root, max_nodes, max_depth)
    return root


def construct(node: yaml.Node | None) -> Any:
    """The Python value of a composed node (or of any node inside it)."""
    if node is None:
        return None
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlInputError(_error_line(exc), _not_yaml(exc)) from None
    finally:
        loader.dispose()


def load(text: str, *, aliases: bool = False) -> Any:
    """The document's value: :func:`compose` then :func:`construct`."""
    return construct(compose(text, aliases=aliases))


def field_lines(root: yaml.Node | None) -> dict[str, int]:
    """``section.key`` -> the line its key is written on, for every key of nested mappings
    (what a settings error names)."""
    lines: dict[str, int] = {}
    stack: list[tuple[str, yaml.Node]] = [("", root)] if root is not None else []
    while stack:
        prefix, node = stack.pop()
        if not isinstance(node, yaml.MappingNode):
            continue
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            name = f"{prefix}{key_node.value}"
            lines.setdefault(name, _line(key_node.start_mark))
            if len(lines) < 100_000:
                stack.append((name + ".", value_node))
    return lines
