"""Tiny XML helpers shared by the OSS and MNS emulators.

Both services speak small, flat XML documents. ElementTree is enough; the helpers only hide namespaces (MNS puts
`xmlns="http://mns.aliyuncs.com/doc/v1/"` on every element, OSS uses none) and build documents with a proper
declaration and escaping.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - parses bodies from local SDK clients of a development tool
from collections.abc import Iterable
from typing import Union

# A child is (tag, text) or (tag, [children...]) for one level of nesting (MNS properties, batch messages).
Child = tuple[str, Union[str, "list[Child]"]]


def document(root: str, children: Iterable[Child], xmlns: str | None = None) -> bytes:
    """`<?xml ...?><root xmlns=..>children</root>` as UTF-8 bytes."""
    element = ET.Element(root, {"xmlns": xmlns} if xmlns else {})
    _append(element, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def _append(parent: ET.Element, children: Iterable[Child]) -> None:
    for tag, value in children:
        child = ET.SubElement(parent, tag)
        if isinstance(value, list):
            _append(child, value)
        else:
            child.text = value


def parse(body: bytes) -> ET.Element | None:
    """The root element, or None when the body is not well-formed XML."""
    try:
        return ET.fromstring(body)  # noqa: S314 - see the import above
    except ET.ParseError:
        return None


def local(tag: str) -> str:
    """`{namespace}Name` -> `Name`."""
    return tag.rsplit("}", 1)[-1]


def child(element: ET.Element, name: str) -> ET.Element | None:
    """The first direct child called `name`, whatever its namespace."""
    return next((c for c in element if local(c.tag) == name), None)


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if local(c.tag) == name]


def text(element: ET.Element, name: str) -> str | None:
    """Text of the first direct child called `name` ("" when empty), None when there is no such child."""
    found = child(element, name)
    if found is None:
        return None
    return found.text or ""
