"""The content cache: texts seen by this warm process, with their sha256 and parsed document.

Parsed documents are cached per warm process, keyed by content (a Step Functions map of 40
chunks of one request parses a 5.7 MB document once per warm instance). :func:`parse_document`
is the way in: it parses a text once (:mod:`service.drift.spec.parsing`) and remembers the
:class:`~service.drift.spec.document.OpenApiDocument`, or that there is none.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from service.drift.spec.collector import gc_paused
from service.drift.spec.document import OpenApiDocument
from service.drift.spec.parsing import MAX_DOCUMENT_CHARS, parse_tree

# Parsed documents kept per process: few, and bounded by their text's size (a parsed 5.7 MB
# JSON document holds about 60 MB of Python objects).
CACHE_MAX_ENTRIES = 4
CACHE_MAX_CHARS = 12_000_000
_FINGERPRINT_SPAN = 2048


class _Unparsed:
    pass


_UNPARSED = _Unparsed()


class _CacheEntry:
    __slots__ = ("document", "sha256", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha256: str | None = None
        self.document: OpenApiDocument | _Unparsed | None = _UNPARSED


class _ContentCache:
    """A small LRU of texts and what was derived from them (sha256, parsed document).

    Looked up by a cheap fingerprint (length and a hash of a few KB at the start, middle and end),
    confirmed with ``==`` (a memcmp; identity when the caller passes the cached object), so a warm
    lookup never hashes the whole text.
    """

    def __init__(self, max_entries: int, max_chars: int) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[tuple[int, int], list[_CacheEntry]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(text: str) -> tuple[int, int]:
        size = len(text)
        if size <= 3 * _FINGERPRINT_SPAN:
            return size, hash(text)
        middle = size // 2
        return size, hash(
            (text[:_FINGERPRINT_SPAN], text[middle : middle + _FINGERPRINT_SPAN], text[-_FINGERPRINT_SPAN:])
        )

    def entry(self, text: str) -> _CacheEntry:
        key = self.fingerprint(text)
        with self._lock:
            bucket = self._entries.get(key)
            if bucket is not None:
                for entry in bucket:
                    if entry.text == text:
                        self._entries.move_to_end(key)
                        return entry
            entry = _CacheEntry(text)
            if len(text) > self.max_chars:
                return entry  # too big to keep: derived values live as long as the caller holds it
            self._entries.setdefault(key, []).append(entry)
            self._entries.move_to_end(key)
            self._chars += len(text)
            self._evict()
            return entry

    def _evict(self) -> None:
        count = sum(len(bucket) for bucket in self._entries.values())
        while self._entries and (count > self.max_entries or self._chars > self.max_chars):
            _, bucket = self._entries.popitem(last=False)
            count -= len(bucket)
            self._chars -= sum(len(entry.text) for entry in bucket)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0


_cache = _ContentCache(CACHE_MAX_ENTRIES, CACHE_MAX_CHARS)


def clear_cache() -> None:
    """Forget every cached text and document (tests and benchmarks measure cold runs with it)."""
    _cache.clear()


def content_sha256(text: str) -> tuple[str, str]:
    """Hex sha256 of ``text`` (UTF-8, lone surrogates kept) memoised with the parsed document, and
    the cached copy of the text.

    Hand the returned copy to :func:`parse_document`: being the cached object itself, it is found
    by identity instead of a memcmp (23 MB for a 5.7 MB text that holds a single emoji).
    """
    entry = _cache.entry(text)
    if entry.sha256 is None:
        entry.sha256 = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return entry.sha256, entry.text


def parse_document(text: str) -> OpenApiDocument | None:
    """The OpenAPI 3.x / Swagger 2.0 document in ``text``, or None when it is not one (cached)."""
    if not isinstance(text, str) or len(text) > MAX_DOCUMENT_CHARS:
        return None
    entry = _cache.entry(text)
    document = entry.document
    if isinstance(document, _Unparsed):
        with gc_paused():
            document = OpenApiDocument.from_root(parse_tree(text))
        entry.document = document
    return document
