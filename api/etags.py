"""Entity tags (RFC 9110 §8.8.3): a consortium's version is its strong tag, ``"<version>"``; a
list's weak tag names the view's position. Parsed here for ``If-Match`` and ``If-None-Match``."""

from __future__ import annotations

import re

_VERSION_TAG_RE = re.compile(r'^(?:W/)?"(\d{1,18})"$|^(\d{1,18})$')
_ENTITY_TAG_RE = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def version_etag(version: int) -> str:
    """The ``ETag`` of a consortium at ``version``, as ``If-Match`` sends it back."""
    return f'"{version}"'


def weak_etag(opaque: str) -> str:
    return f'W/"{opaque}"'


def version_of(if_match: str) -> int | None:
    """The version named by an ``If-Match`` value (``"3"``, ``W/"3"`` or a bare ``3``), or
    ``None`` when it is not one version."""
    m = _VERSION_TAG_RE.match(if_match.strip())
    return None if m is None else int(m.group(1) or m.group(2))


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names the current entity tag (its opaque part, ``etag``) or is
    ``*``: the weak comparison of RFC 9110 §13.1.2, so the answer is 304 Not Modified. A header
    that is not a list of entity tags matches nothing."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    tags, end = [], 0
    while end < len(if_none_match):
        m = _ENTITY_TAG_RE.match(if_none_match, end)
        if m is None:
            return False
        tags.append(m.group(1))
        end = m.end()
    return etag in tags
