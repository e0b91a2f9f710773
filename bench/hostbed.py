"""Bring the multi-host test bed (tests/support/hostbed.py) up and leave it running, or tear
one down; docs/operations.md describes the hosts.

    .venv/bin/python -m bench.hostbed up [--worker-hosts 3] [--api-hosts 2] [--concurrency 2]
    .venv/bin/python -m bench.hostbed down [RUN_ID]   # without RUN_ID when only one run exists
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.hostbed import BUCKET, HostBed, unavailable_reason


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostbed", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring a bed up and leave it running")
    up.add_argument("--api-hosts", type=int, default=2)
    up.add_argument("--worker-hosts", type=int, default=3)
    up.add_argument("--concurrency", type=int, default=2, help="jobs at once per worker host")
    down = sub.add_parser("down", help="tear a bed down (the only one, or RUN_ID)")
    down.add_argument("run_id", nargs="?")
    args = parser.parse_args(argv)
    if (reason := unavailable_reason()) is not None:
        print(reason, file=sys.stderr)
        return 2
    if args.command == "up":
        made = HostBed(api_hosts=args.api_hosts, worker_hosts=args.worker_hosts,
                       worker_concurrency=args.concurrency).up()  # fmt: skip
        print(f"run {made.run_id} on {made.subnet} (state and logs in {made.root})")
        print(f"  database  {made.database_url}\n  s3        {made.s3_url} bucket {BUCKET}\n"
              f"  media     {made.media_url}/media/clip.mp4 (throttled: /slow/clip.mp4?kbps=50)")  # fmt: skip
        for url in made.api_urls:
            print(f"  api       {url}")
        print(
            f"  key       {json.loads(made.cli('keys', 'create', '--name', 'bed', '--json').stdout)['api_key']}"
        )
        print(f"tear down:  .venv/bin/python -m bench.hostbed down {made.run_id}")
        return 0
    runs = (
        [args.run_id]
        if args.run_id
        else [p.name.rsplit("-", 1)[1] for p in Path("/tmp").glob("squall-hostbed-*")]
    )
    if len(runs) != 1:
        print(f"name the run to tear down: {' '.join(runs) or 'none running'}", file=sys.stderr)
        return 2
    HostBed.load(runs[0]).down()
    print(f"run {runs[0]} torn down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
