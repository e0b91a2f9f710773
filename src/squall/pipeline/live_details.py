"""What a completed live recording reports in the job's fields."""

from __future__ import annotations

from typing import Any

# The job's ``recording_note`` for each way a recording ends early, beyond its own bounds.
NOTES = {
    "quota": "The recording stopped early: the key's storage quota had no more room; what fit was kept",
    "max_filesize": "The recording stopped early at the key's file size limit; what fit was kept",
    "user_stop": "The recording was stopped by the user (POST /jobs/{id}/stop)",
    "operator_cap": "The recording stopped at this server's longest recording (SQUALL_LIVE_MAX_SECONDS)",
}
RECORDING_FIELDS = ("live", "recorded_seconds", "recording_stopped_by", "recording_from", "recording_note")


def recording_details(info: dict[str, Any], recorded_bytes: int) -> dict[str, Any]:
    if not info.get("live"):
        return {}
    stopped_by = info.get("recording_stopped_by")
    return {
        "live": True,
        "recorded_seconds": info.get("recorded_seconds"),
        "recorded_bytes": recorded_bytes,
        "recording_stopped_by": stopped_by,
        "recording_from": info.get("recording_from"),
        "recording_note": NOTES.get(str(stopped_by)),
    }
