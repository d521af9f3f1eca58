"""Streaming, hardened XML text walker for office formats (expat, stdlib).

Any DOCTYPE is refused outright: OOXML and ODF parts never carry one, and without
a DTD there are no entity declarations, so no billion-laughs expansion and no
external entity fetches. This is the hardening ``defusedxml`` applies
(``forbid_dtd=True``), done directly on expat so the walk is event-driven: text
comes out in document order (mixed content included), no element tree is built,
and nesting depth costs no Python recursion.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from xml.parsers import expat

from indexer.extract._common import NotExtractable

__all__ = ["walk_text"]

_FEED = 1 << 16


def _local(name: str) -> str:
    # expat without namespace processing hands us "w:t"; keep the local part.
    return name.rpartition(":")[2]


def walk_text(
    xml: bytes,
    emit: Callable[[str], None],
    *,
    text_in: Collection[str] | None,
    breaks: Collection[str],
    tabs: Collection[str] = ("tab",),
    spaces: Collection[str] = (),
    end_breaks: Collection[str] = ("p", "h"),
) -> None:
    """Emit the character data of ``xml`` in document order.

    ``text_in``: only character data directly inside elements with these local
    names counts (OOXML's ``t``); ``None`` means all character data (ODF mixed
    content). ``breaks``/``tabs``/``spaces`` are empty elements that stand for a
    newline/tab/space; ``end_breaks`` end a paragraph with a newline.
    """
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(*_args: object) -> None:
        raise NotExtractable("xml: DTDs and entity declarations are refused")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    stack: list[str] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        local = _local(name)
        stack.append(local)
        if local in breaks:
            emit("\n")
        elif local in tabs:
            emit("\t")
        elif local in spaces:
            emit(" ")

    def end(_name: str) -> None:
        local = stack.pop()
        if local in end_breaks:
            emit("\n")

    def chars(data: str) -> None:
        if text_in is None or (stack and stack[-1] in text_in):
            emit(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.buffer_text = True
    try:
        view = memoryview(xml)
        for pos in range(0, len(view), _FEED):
            parser.Parse(bytes(view[pos : pos + _FEED]), False)
        parser.Parse(b"", True)
    except expat.ExpatError:
        raise NotExtractable("xml: malformed") from None
