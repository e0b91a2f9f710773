"""What a podcast feed says about its episodes' sizes: each RSS ``<enclosure>`` carries a
``length`` in bytes, which yt-dlp's flat extraction drops. Admission uses it as the episode's
reservation, so a small key can take a feed whose episodes fit."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

from yt_dlp.networking.exceptions import RequestError

MAX_FEED_BYTES = 8 * 1024 * 1024  # a feed larger than this is read for its entries only


def enclosure_lengths(ydl: Any, url: str) -> dict[str, int]:
    """``{enclosure URL: length}`` of an RSS feed, read through ``ydl`` (so through the
    child's connect-time guard); empty when the document is not RSS or says nothing."""
    try:
        with ydl.urlopen(url) as response:
            body = response.read(MAX_FEED_BYTES + 1)
    except (RequestError, OSError):  # sizes are only an estimate: the entries stand without them
        return {}
    if len(body) > MAX_FEED_BYTES:
        return {}
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return {}
    lengths: dict[str, int] = {}
    for enclosure in root.findall("./channel/item/enclosure"):
        link, length = enclosure.get("url"), enclosure.get("length", "")
        if link and length.isdigit() and int(length) > 0:
            lengths[link] = int(length)
    return lengths
