"""The POST /jobs body: every field of the Tornado API, validated with messages a person
understands. Combinations that no container can hold are refused here, before any work."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from squall.keys.service import RESOLUTIONS as KEY_RESOLUTIONS
from squall.validation import URL_FIELD_SCHEMA, unknown_field_message

VIDEO_FORMATS = ("mp4", "mkv", "webm", "mov")
AUDIO_FORMATS = ("m4a", "mp3", "ogg", "opus")
VIDEO_CODECS = ("copy", "h264", "h265", "vp9")
AUDIO_CODECS = ("copy", "aac", "opus", "mp3")
AUDIO_BITRATES = ("64k", "128k", "192k", "256k", "320k")
QUALITY_PRESETS = ("highest", "high", "medium", "low", "lowest")
RESOLUTIONS = ("best", *(str(r) for r in KEY_RESOLUTIONS))

# Which codecs each container can hold ("copy" is checked against the source later).
CONTAINER_VIDEO = {
    "mp4": {"h264", "h265", "vp9"},
    "mov": {"h264", "h265"},
    "mkv": {"h264", "h265", "vp9"},
    "webm": {"vp9"},
}
CONTAINER_AUDIO = {
    "mp4": {"aac", "mp3", "opus"},
    "mov": {"aac", "mp3"},
    "mkv": {"aac", "mp3", "opus"},
    "webm": {"opus"},
    "m4a": {"aac"},
    "mp3": {"mp3"},
    "ogg": {"opus"},
    "opus": {"opus"},
}

_TIMESTAMP = re.compile(r"^(?:(\d+):)?(?:(\d{1,2}):)?(\d+(?:\.\d+)?)$")


def parse_timestamp(value: str, field: str) -> float:
    """``HH:MM:SS``, ``MM:SS`` or seconds (decimals allowed) -> seconds."""
    text = value.strip()
    match = _TIMESTAMP.match(text)
    if not match:
        raise ValueError(f"{field} '{value}' is not a valid timestamp: use HH:MM:SS, MM:SS or seconds")
    parts = [float(p) for p in text.split(":")]
    if any(p >= 60 for p in parts[1:]):
        raise ValueError(f"{field} '{value}' is not a valid timestamp: minutes and seconds must be below 60")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _check_path_part(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"{what} too long (max {limit} characters)")
    if "\x00" in value:
        raise ValueError(f"{what} cannot contain null bytes")
    if ".." in value:
        raise ValueError(f"{what} cannot contain '..'")
    return value


def _without_control_characters(value: str, what: str) -> str:
    """A URL is sent with its control characters percent-encoded; a raw one (a NUL byte, which
    PostgreSQL cannot store, a line break) is a client's mistake."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError(
            f"{what} cannot contain control characters (a NUL byte, a line break); percent-encode them"
        )
    return value


class JobOptions(BaseModel):
    """Everything a client may send to POST /jobs (and that a retry repeats)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    url: str = Field(max_length=4096, json_schema_extra=URL_FIELD_SCHEMA)
    format: str | None = None
    video_codec: str = "copy"
    audio_codec: str = "copy"
    audio_bitrate: str = "192k"
    video_quality: int | None = None
    quality_preset: str | None = None
    max_resolution: str = "best"
    clip_start: str | None = None
    clip_end: str | None = None
    audio_only: bool = False
    download_subtitles: bool = False
    download_thumbnail: bool = False
    filename: str | None = None
    folder: str | None = None
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    enable_progress_webhook: bool = False
    live_recording: bool | None = None
    live_from_start: bool = False
    wait_for_video: bool = False
    max_duration: int | None = None
    storage: dict[str, Any] | None = None
    paused: bool = False
    priority: int = 5

    @model_validator(mode="before")
    @classmethod
    def _as_tornado_clients_send_it(cls, data: Any) -> Any:
        """Requests written from Tornado's documentation: ``null`` means the default, an
        unknown field is named with the closest known one, and an audio format alone asks
        for an audio-only job."""
        if not isinstance(data, dict):
            return data
        for name in data:
            if name not in cls.model_fields:
                raise ValueError(unknown_field_message(str(name), cls.model_fields))
        data = {name: value for name, value in data.items() if value is not None or name == "url"}
        if data.get("format") in AUDIO_FORMATS and "audio_only" not in data:
            data["audio_only"] = True
        return data

    @field_validator("clip_start", "clip_end", mode="before")
    @classmethod
    def _clip_seconds(cls, value: Any) -> Any:
        """A number of seconds is as good as the documented string."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < 0:
                raise ValueError("clip_start and clip_end must not be negative")
            return f"{value:f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("url cannot be empty")
        return _without_control_characters(value, "url")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else _without_control_characters(value, "webhook_url")

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value not in VIDEO_FORMATS + AUDIO_FORMATS:
            allowed = ", ".join(VIDEO_FORMATS + AUDIO_FORMATS)
            raise ValueError(f"Invalid format '{value}'. Allowed: {allowed}")
        return value

    @field_validator("video_codec")
    @classmethod
    def _video_codec(cls, value: str) -> str:
        if value not in VIDEO_CODECS:
            raise ValueError(f"Invalid video_codec '{value}'. Allowed: {', '.join(VIDEO_CODECS)}")
        return value

    @field_validator("audio_codec")
    @classmethod
    def _audio_codec(cls, value: str) -> str:
        if value not in AUDIO_CODECS:
            raise ValueError(f"Invalid audio_codec '{value}'. Allowed: {', '.join(AUDIO_CODECS)}")
        return value

    @field_validator("audio_bitrate")
    @classmethod
    def _audio_bitrate(cls, value: str) -> str:
        if value not in AUDIO_BITRATES:
            raise ValueError(f"Invalid audio_bitrate '{value}'. Allowed: {', '.join(AUDIO_BITRATES)}")
        return value

    @field_validator("video_quality")
    @classmethod
    def _video_quality(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 51:
            raise ValueError("video_quality must be a CRF value from 0 (best) to 51 (smallest)")
        return value

    @field_validator("quality_preset")
    @classmethod
    def _quality_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in QUALITY_PRESETS:
            raise ValueError(f"Invalid quality_preset '{value}'. Allowed: {', '.join(QUALITY_PRESETS)}")
        return value

    @field_validator("max_resolution", mode="before")
    @classmethod
    def _max_resolution(cls, value: Any) -> str:
        text = str(value).removesuffix("p") if isinstance(value, int | str) else value
        if text not in RESOLUTIONS:
            raise ValueError(f"Invalid max_resolution '{value}'. Allowed: {', '.join(RESOLUTIONS)}")
        return str(text)

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_path_part(value, "Filename", 255)
        if "/" in value or "\\" in value:
            raise ValueError("Filename cannot contain '/' or '\\'")
        if not value.strip():
            raise ValueError("Filename cannot be empty")
        return value

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_path_part(value, "Folder name", 200)
        if not value.strip():
            raise ValueError("Folder name cannot be empty or whitespace")
        if value.startswith(("/", "\\")):
            raise ValueError("Folder name cannot start with '/' or '\\'")
        return value

    @field_validator("max_duration")
    @classmethod
    def _max_duration(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("max_duration must be a positive number of seconds")
        return value

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError("priority must be an integer from 0 (lowest) to 10 (highest)")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> JobOptions:
        if self.enable_progress_webhook and not self.webhook_url:
            raise ValueError("enable_progress_webhook needs a webhook_url to send the progress to")
        start, end = self.clip_start_seconds, self.clip_end_seconds
        if start is not None and end is not None and end <= start:
            raise ValueError("clip_end must be greater than clip_start")
        fmt = self.resolved_format
        if self.audio_only or fmt in AUDIO_FORMATS:
            if fmt in VIDEO_FORMATS and self.audio_only:
                raise ValueError(
                    f"Format '{fmt}' is a video container; with audio_only use m4a, mp3, ogg or opus"
                )
            if not self.audio_only:
                raise ValueError(
                    f"Format '{fmt}' is audio-only: set audio_only to true or pick mp4, mkv, webm or mov"
                )
            if self.video_codec != "copy":
                raise ValueError("video_codec cannot be set with audio_only (there is no video to encode)")
        elif self.video_codec != "copy" and self.video_codec not in CONTAINER_VIDEO[fmt]:
            allowed = ", ".join(sorted(CONTAINER_VIDEO[fmt]))
            raise ValueError(f"Video codec '{self.video_codec}' cannot be stored in {fmt} (use {allowed})")
        if self.audio_codec != "copy" and self.audio_codec not in CONTAINER_AUDIO[fmt]:
            allowed = ", ".join(sorted(CONTAINER_AUDIO[fmt]))
            raise ValueError(f"Audio codec '{self.audio_codec}' cannot be stored in {fmt} (use {allowed})")
        return self

    @property
    def resolved_format(self) -> str:
        return self.format or ("m4a" if self.audio_only else "mp4")

    @property
    def resolution_cap(self) -> int | None:
        return None if self.max_resolution == "best" else int(self.max_resolution)

    @property
    def clip_start_seconds(self) -> float | None:
        return parse_timestamp(self.clip_start, "clip_start") if self.clip_start else None

    @property
    def clip_end_seconds(self) -> float | None:
        return parse_timestamp(self.clip_end, "clip_end") if self.clip_end else None
