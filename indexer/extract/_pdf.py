"""PDF text per page with pypdf (inside the worker: limits apply around it)."""

from __future__ import annotations

import io

from indexer.extract._common import Budget, LimitExceeded, NotExtractable
from indexer.extract._result import ExtractionLimits

__all__ = ["extract_pdf"]


def extract_pdf(data: bytes, budget: Budget, limits: ExtractionLimits) -> str:
    """Feed each page's text to the budget (one budget page per PDF page); return the title.

    pypdf's own errors are mapped by class only: their messages quote raw file
    bytes, which must not reach logs.
    """
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many "encrypted" PDFs only restrict printing, with an empty user password.
            try:
                decrypted = reader.decrypt("")
            except (PyPdfError, NotImplementedError, ValueError):
                raise NotExtractable("pdf: encrypted") from None
            if not decrypted:
                raise NotExtractable("pdf: encrypted")
        count = len(reader.pages)
        if count > limits.max_pages:
            raise LimitExceeded("pdf: page count above the limit")
        title = ""
        try:
            meta = reader.metadata
            if meta is not None and meta.title:
                title = " ".join(str(meta.title).split())[:500]
        except (PyPdfError, ValueError, TypeError, KeyError, AttributeError):
            title = ""  # broken metadata must not cost us the text
        for page in reader.pages:
            # extract_text() swallows pypdf's decompression limit and returns "" for
            # the page; decoding the content stream first surfaces it as a limit
            # (the decoded stream is cached, so this costs no second inflate).
            contents = page.get_contents()
            if contents is not None:
                contents.get_data()
            budget.add(page.extract_text() or "")
            budget.end_page()
        return title
    except LimitReachedError:
        raise LimitExceeded("pdf: parser limit reached") from None
    except FileNotDecryptedError:
        raise NotExtractable("pdf: encrypted") from None
    except PyPdfError as exc:
        raise NotExtractable(f"pdf: unreadable ({type(exc).__name__})") from None
