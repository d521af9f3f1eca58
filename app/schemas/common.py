"""Field types shared across the API's request models."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.settings import Settings


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


# Page sizes where no running settings are given (a schema validated outside a request).
_DEFAULT_SETTINGS = Settings()


def _settings(info: ValidationInfo) -> Settings:
    found = (info.context or {}).get("settings")
    return found if isinstance(found, Settings) else _DEFAULT_SETTINGS


class Page(BaseModel):
    """``limit``/``offset`` of a list endpoint: ``limit`` defaults to ``PLEIN_PAGE_SIZE`` and may
    be at most ``PLEIN_MAX_PAGE_SIZE`` (the API passes its settings as validation context)."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(default=_DEFAULT_SETTINGS.page_size, ge=1)
    offset: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _default_size(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "limit" not in data:
            return {**data, "limit": _settings(info).page_size}
        return data

    @field_validator("limit")
    @classmethod
    def _largest_size(cls, limit: int, info: ValidationInfo) -> int:
        largest = _settings(info).max_page_size
        if limit > largest:
            # The shape of pydantic's own ``le`` error, as before this was a setting.
            raise PydanticCustomError("less_than_equal",
                                      "Input should be less than or equal to {le}", {"le": largest})
        return limit
