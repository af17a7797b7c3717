"""Request strings that end up in SQL parameters or on the wire as UTF-8.

PostgreSQL ``text`` cannot hold U+0000, and a lone surrogate cannot be encoded as UTF-8 (a
JSON body may carry ``\\ud800``; pydantic accepts it in a plain ``str``). Refusing both in the
request model makes them a 400 instead of a database or encoding error (500).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StrictStr


def storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def is_storable(value: str) -> bool:
    """Whether ``value`` could be a request string or a stored text (see :func:`storable_text`)."""
    try:
        storable_text(value)
    except ValueError:
        return False
    return True


StorableStr = Annotated[StrictStr, AfterValidator(storable_text)]
