"""Dashboard render time against history length: from navigation start until the overview
shows its numbers and chart, measured in the browser (Playwright driving the machine's
Chromium), for a key with 1,000 jobs of history and one with 1,000,000.

    python -m bench.dashboard [--db sqlite|postgresql] [--loads 30] [--large 1000000]

Needs Chromium (``apt-get install chromium``). History is seeded as in ``bench.usage_reads``
(completed jobs over 400 days with their ledger, rollups and counters). Each load is a fresh
browser context with the key already in session storage, so it measures what a returning
user waits for: the page, its script and the chart library, then ``/dashboard/stats``,
``/usage`` and ``/dashboard/daily`` and the first render (the page marks
``squall-overview-ready``). Loads alternate between the keys; medians are compared.

It also times one polling cycle (the three requests the page repeats every 3 s) from a
plain client, the cost the server pays per open dashboard per refresh.

Last line: ``RESULT dashboard render_ms_small=… render_ms_large=… ratio=<large / small>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx

from bench._common import DATABASES, bench_env, percentile, run_main, squall_server
from bench.usage_reads import prepare

CHROMIUM = os.environ.get("SQUALL_BENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
POLL = ("/dashboard/stats", "/usage", "/dashboard/daily")


def render_times(base: str, keys: dict[str, str], loads: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {name: [] for name in keys}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for i in range(loads + 2):  # two warm-up rounds
                for name, key in keys.items():
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    context.add_init_script(f"sessionStorage.setItem('squall.apiKey', {key!r})")
                    page = context.new_page()
                    page.goto(base + "/")
                    page.wait_for_selector("body[data-ready=overview]")
                    ready = page.evaluate(
                        "performance.getEntriesByName('squall-overview-ready')[0].startTime"
                    )
                    context.close()
                    if i >= 2:
                        results[name].append(float(ready))
        finally:
            browser.close()
    return results


def poll_cycle_ms(base: str, key: str, cycles: int = 300) -> list[float]:
    samples = []
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as client:
        for _ in range(cycles):
            started = time.perf_counter()
            for path in POLL:
                client.get(path).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=DATABASES, default="sqlite")
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(
            f"no Chromium at {CHROMIUM}: apt-get install chromium (or set SQUALL_BENCH_CHROMIUM)"
        )
    with bench_env(args.db) as env:
        keys = prepare(env, {"small": args.small, "large": args.large})
        with squall_server(env) as base:
            times = render_times(base, keys, args.loads)
            polls = {name: poll_cycle_ms(base, key) for name, key in keys.items()}
    median = {name: statistics.median(samples) for name, samples in times.items()}
    for name, samples in times.items():
        ordered = sorted(samples)
        print(f"{name:>5} key: render p50 {median[name]:.0f} ms, p90 {percentile(ordered, 90):.0f} ms "
              f"(navigation start to numbers and chart, {len(samples)} loads); one poll cycle "
              f"p50 {percentile(polls[name], 50):.2f} ms, p99 {percentile(polls[name], 99):.2f} ms")  # fmt: skip
    print(f"RESULT dashboard render_ms_small={median['small']:.1f} render_ms_large={median['large']:.1f} "
          f"ratio={median['large'] / median['small']:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    run_main(main)
