"""A yt-dlp extractor plugin for a made-up host, loaded from a plugin folder by the tests:
``http://squall-test.invalid/<file>?server=<host:port>`` is ``<file>`` on that local server."""

from urllib.parse import parse_qs, urlsplit

from yt_dlp.extractor.common import InfoExtractor


class SquallTestIE(InfoExtractor):
    _VALID_URL = r"https?://squall-test\.invalid/(?P<id>[^/?#]+)"

    def _real_extract(self, url):
        video_id = self._match_id(url)
        server = parse_qs(urlsplit(url).query)["server"][0]
        return {
            "id": video_id,
            "title": f"Squall test plugin: {video_id}",
            "url": f"http://{server}/media/{video_id}",
            "ext": "mp4",
        }
