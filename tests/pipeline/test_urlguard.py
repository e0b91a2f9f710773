"""The SSRF guard: address classification, and the guard the downloader child installs."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from squall.pipeline.urlguard import embedded_ipv4, is_public

PRIVATE = [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "198.18.0.1", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
    "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::", "2002:a9fe:a9fe::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "::127.0.0.1", "::10.0.0.1",
]  # fmt: skip
PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:2800:220:1:248:1893:25c8:1946",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", PRIVATE)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_ipv4_hidden_in_ipv6_is_unwrapped() -> None:
    assert embedded_ipv4(ipaddress.ip_address("64:ff9b::a9fe:a9fe")) == ipaddress.ip_address(
        "169.254.169.254"
    )
    assert embedded_ipv4(ipaddress.ip_address("2002:7f00:1::")) == ipaddress.ip_address("127.0.0.1")
    assert embedded_ipv4(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")) is None


CHILD = """
import socket
from squall.pipeline import guard
from squall.pipeline.urlguard import UrlPolicy
guard.install(UrlPolicy.parse(allow_private=False, networks="127.0.0.2/32"))
for host in ("127.0.0.1", "localhost", "127.1", "0x7f000001", "2130706433", "::ffff:127.0.0.1"):
    try:
        socket.getaddrinfo(host, 80)
        print("resolved", host)
    except socket.gaierror as exc:
        assert "ssrf-guard" in str(exc), exc
assert socket.getaddrinfo("127.0.0.2", 80)  # the one network the operator allowed
from yt_dlp import YoutubeDL
from yt_dlp.downloader.external import FFmpegFD
from yt_dlp.utils import DownloadError
try:
    FFmpegFD(YoutubeDL({"quiet": True}), {}).real_download("out.mp4", {"url": "http://10.0.0.1/live.m3u8"})
    print("external downloader ran")
except DownloadError as exc:
    assert "external-downloader-refused" in str(exc), exc
print("guarded")
"""


def test_the_child_guard_blocks_private_names_and_external_downloaders() -> None:
    # In a separate interpreter: the guard patches process-wide state.
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "guarded"
