"""From a POST /jobs or POST /jobs/bulk to committed jobs: one job, or a batch when the URL
names a feed or playlist, with ``Idempotency-Key`` replay."""
