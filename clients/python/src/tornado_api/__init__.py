"""``from tornado_api import TornadoAPI`` as in Tornado's quick start, served by Squall's
client: code written for Tornado's SDK keeps its import and only changes its base URL."""

from squall_client import TornadoAPI

__all__ = ["TornadoAPI"]
