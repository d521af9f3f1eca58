"""Close codes and what the stock y-websocket client (3.x) does with them: it never reconnects
after 4400-4499.  That is right for revoked access and closed documents, wrong for a reader
that was merely slow (it would silently stay offline)."""

from __future__ import annotations

from sync import CloseCode


def _final_for_stock_client(code: int) -> bool:
    # y-websocket 3.x defaultShouldReconnect: !(code >= 4400 && code < 4500)
    return 4400 <= code < 4500


def test_final_codes_are_the_ones_meant_to_be_final() -> None:
    assert _final_for_stock_client(CloseCode.FORBIDDEN)
    assert _final_for_stock_client(CloseCode.DOCUMENT_CLOSED)
    for code in (CloseCode.SLOW_CONSUMER, CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR,
                 CloseCode.INVALID_DATA, CloseCode.TOO_BIG, CloseCode.NORMAL):
        assert not _final_for_stock_client(code), code.name
