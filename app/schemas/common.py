"""Field types shared across the API's request models."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _clean_line(value: str) -> str:
    """One line of human text: trimmed, NFC, no control or bidi-override characters (which
    could disguise a name: an RTL override makes "exe.pdf" read as "fdp.exe")."""
    value = unicodedata.normalize("NFC", value).strip()
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf") and ch not in ("\u200d",):
            raise ValueError("must not contain control or formatting characters")
    if not value:
        raise ValueError("must not be empty")
    return value


def _clean_text(value: str) -> str:
    value = unicodedata.normalize("NFC", value)
    for ch in value:
        if unicodedata.category(ch) == "Cc" and ch not in ("\n", "\r", "\t"):
            raise ValueError("must not contain control characters")
    return value


def _clean_optional_line(value: str) -> str:
    """Like a line, but empty is allowed (it clears an optional field)."""
    return _clean_line(value) if value.strip() else ""


Name = Annotated[str, StringConstraints(min_length=1, max_length=120), AfterValidator(_clean_line)]
OptionalLine = Annotated[
    str, StringConstraints(max_length=200), AfterValidator(_clean_optional_line)
]
FolderName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_clean_line)
]
LongText = Annotated[str, StringConstraints(max_length=5000), AfterValidator(_clean_text)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=200)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# The words of app.models.roles as the API accepts them: Literal rather than the enums so that
# a wrong value reads "should be 'open' or 'closed'" (tests/app/test_groups.py keeps both equal).
AccessName = Literal["open", "closed"]
GroupRoleName = Literal["owner", "admin", "member"]
FolderRoleName = Literal["viewer", "editor"]


class Input(BaseModel):
    """Request bodies reject unknown fields so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)
