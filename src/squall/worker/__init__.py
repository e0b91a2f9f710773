"""The worker: claims jobs, runs the pipeline, and turns its results into state and usage.

Each claimed job holds a lease renewed by a heartbeat thread. If the heartbeat finds the lease
gone (reaped after a stall, or cancelled), the run is stopped and its results are discarded:
every write is fenced by the attempt number, so a late worker cannot change anything.

``loop.py`` claims jobs and keeps house (reaper, retention); ``run.py`` is one claimed job's
run as the pipeline sees it (steps, reservation, recording progress, stored-object notes),
``heartbeat.py`` its lease; ``outcome.py`` writes how a run ended (completed, failed,
stopped) and deletes what it left behind; ``patience.py`` makes those writes wait out a
database outage."""

from squall.worker.loop import Pipeline, Worker, run_worker

__all__ = ["Pipeline", "Worker", "run_worker"]
