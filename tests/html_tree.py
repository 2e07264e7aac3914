"""A small element tree built with the standard library's ``html.parser``, for tests that read
an HTML page (the monitoring page) by its structure rather than by substrings."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import attrs

# Elements that never have content or an end tag.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@attrs.define
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = attrs.field(factory=list)
    parent: Element | None = attrs.field(default=None, repr=False)

    def iter(self) -> Iterator[Element]:
        """This element and every element under it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **wanted: str) -> list[Element]:
        """Elements under (and including) this one with the tag and attribute values given;
        ``class_`` matches one class among the element's classes."""
        found = []
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if all(_matches(element, key, value) for key, value in wanted.items()):
                found.append(element)
        return found

    def find(self, tag: str | None = None, **wanted: str) -> Element:
        """The one element that :meth:`find_all` finds; fails if there is not exactly one."""
        found = self.find_all(tag, **wanted)
        assert len(found) == 1, f"{len(found)} <{tag} {wanted}> elements, not 1"
        return found[0]

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        """The text under this element, whitespace collapsed."""
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else f" {child.text} ")
        return " ".join("".join(parts).split())


def _matches(element: Element, key: str, value: str) -> bool:
    if key == "class_":
        return value in element.classes
    return element.attrs.get(key.replace("_", "-")) == value


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(element)
        if tag not in _VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"</{tag}> closes nothing open"
        assert node.parent is not None, f"</{tag}> closes the document"
        assert node is self.current, f"</{tag}> closes <{node.tag}> over <{self.current.tag}>"
        self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(page: str) -> tuple[str, Element]:
    """The page's doctype and its tree; fails on an end tag that does not close the element
    open (so a page whose tags are not properly nested does not parse)."""
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.current is builder.root, f"<{builder.current.tag}> is never closed"
    return builder.doctype, builder.root
