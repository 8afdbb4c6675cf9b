"""Start-up cost of the installed ``tidbops``: wall time and peak RSS of whole command lines.

Runs each command line ``--runs`` times (interleaved, so a busy moment hurts all alike) and prints the
minimum and median wall time and the median peak RSS of the process (GNU ``time``'s ``%e`` and ``%M``,
in seconds to the hundredth), next to a bare ``python -c pass``, the floor. The slow-log digest reads a tiny generated TiDB slow log (~5 KB).

    .venv/bin/python bench/bench_cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from tidbops_playground.slowlog_gen import generate

TIDBOPS = str(Path(sys.executable).with_name("tidbops"))
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"  # GNU time (Debian: apt-get install time)
GOAL_DIGEST = (0.15, 30 * 1024)  # seconds, KiB (issue #19)


def measure(argv: list[str], scratch: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS KiB) of one run of ``argv``, its output discarded, as GNU time reports them:
    a child of this process would count this process's memory in its peak RSS (Linux keeps the
    high-water mark of the memory it was cloned with across exec)."""
    report = scratch / "time.out"
    subprocess.run(
        [TIME, "-f", "%e %M", "-o", str(report), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    seconds, kib = report.read_text().split()[-2:]
    return float(seconds), int(kib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "tidb-slow.log"
        generate(log, entries=2, days=1, start=date(2026, 11, 1), seed=7, truncated_tail=False)
        cases = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "tidbops --version": [TIDBOPS, "--version"],
            "tidbops --help": [TIDBOPS, "--help"],
            f"tidbops slowlog digest <{log.stat().st_size / 1000:.1f} KB log>": [
                TIDBOPS,
                "slowlog",
                "digest",
                str(log),
            ],
            "tidbops slowlog digest … --format json": [TIDBOPS, "slowlog", "digest", str(log), "--format", "json"],
        }
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
        for argv in cases.values():
            measure(argv, Path(tmp))  # warm the page cache and the .pyc files
        for _ in range(args.runs):
            for name, argv in cases.items():
                results[name].append(measure(argv, Path(tmp)))
    print(f"{args.runs} runs each, interleaved; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'command line':<44} {'min':>8} {'median':>8} {'peak RSS':>10}")
    for name, runs in results.items():
        times = [t for t, _ in runs]
        rss = statistics.median(r for _, r in runs)
        print(f"{name:<44} {min(times):>7.2f}s {statistics.median(times):>7.2f}s {rss / 1024:>7.1f} MiB")
    digest = next(runs for name, runs in results.items() if name.startswith("tidbops slowlog digest <"))
    best, rss = min(t for t, _ in digest), statistics.median(r for _, r in digest)
    ok = best <= GOAL_DIGEST[0] and rss <= GOAL_DIGEST[1]
    print(f"goal for the tiny digest: under {GOAL_DIGEST[0]} s and 30 MiB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
