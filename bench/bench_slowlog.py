"""Slow-log benchmark: our parser + daily aggregation against pt-query-digest on the same TiDB slow log.

In one run, on one file (generated once, then reused from ``bench/out/``):

1. ``wc -l`` over the file, twice (the first warms the page cache for everyone): the physical floor.
2. Ours, in a fresh process per round: :func:`tidbops.slowlog.aggregate.aggregate_files` with every
   metric of the daily aggregates (count, total/avg/p95/max query time, process/wait/backoff sums,
   keys, rows, max memory, first/last seen, slowest sample, instances), internal SQL included like pt.
   Rounds with ``--jobs`` 1 and N. Wall time includes interpreter start-up; peak RSS is reported per
   process (main and each worker) and as their sum.
3. ``pt-query-digest --group-by Digest`` on the whole file (or on a prefix cut at an entry boundary
   with ``--pt-prefix-mb``; its rate is then applied to the whole file, which flatters pt, whose rate
   drops as its memory grows).

Throughput is MB/s and entries/s of wall time; the CPU-time ratio (user+sys of every process) is printed
too, because the wall-time ratio depends on how many idle cores the machine has.

    .venv/bin/python bench/bench_slowlog.py [--entries 200000] [--jobs 2] [--rounds 3] [--pt-prefix-mb 0]

Goal (issue #8): ours in a single process (``--jobs 1``) >= 50x pt-query-digest's throughput, with peak
RSS <= 64 MiB; the exit status says whether it is met. The ``--jobs N`` round is reported, not judged.
Which row scanner ran (the C extension or the regular expression) is printed; ``TIDBOPS_SLOWLOG_PURE_PYTHON=1``
measures the pure-Python path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out" / "slowlog"
GOAL_RATIO = 50.0
GOAL_RSS_MIB = 64.0

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from tidbops.slowlog.aggregate import aggregate_files
from tidbops.slowlog.parser import SCANNER
table = aggregate_files([sys.argv[1]], jobs=int(sys.argv[2]), include_internal=True)
rows = table.rows()
elapsed = time.perf_counter() - t0
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "seconds_in_process": elapsed,
    "entries": table.parse_stats.entries,
    "bytes": table.parse_stats.bytes_read,
    "rows": len(rows),
    "digests": len({k.digest for k, _ in rows}),
    "count": sum(s.count for _, s in rows),
    "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    "rss_main_mib": me.ru_maxrss / 1024,
    "rss_worker_mib": kids.ru_maxrss / 1024,
    "scanner": SCANNER,
}))
"""


def mib(kib: float) -> float:
    return kib / 1024


def ensure_log(entries: int, seed: int) -> Path:
    """The benchmark log (generated once; reused while entries and seed match)."""
    path = OUT / f"n{entries}-s{seed}" / "tidb-1" / "tidb-slow.log"
    meta = path.with_name("meta.json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get("entries") == entries:
        return path
    sys.path.insert(0, str(REPO / "include"))
    from tidbops_playground.slowlog_gen import generate

    t0 = time.perf_counter()
    result = generate(
        path, entries=entries, days=7, start=date(2026, 11, 1), seed=seed, regress_day=5, truncated_tail=False
    )
    meta.write_text(json.dumps({"entries": result.entries, "bytes": result.bytes_written}))
    print(f"generated {entries} entries ({result.bytes_written / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")
    return path


def run_measured(argv: list[str], capture: bool = True) -> tuple[float, float, float, bytes]:
    """(wall seconds, cpu seconds, max RSS MiB, stdout) of one process, children included (``wait4``)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=err)
        out = proc.stdout.read() if proc.stdout is not None else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, mib(usage.ru_maxrss), out


def prefix_file(path: Path, megabytes: int) -> tuple[Path, int]:
    """The first ``megabytes`` of ``path`` cut before an entry, and how many entries it holds."""
    dest = path.with_name(f"prefix-{megabytes}MB.log")
    with path.open("rb") as src:
        data = src.read(megabytes * 1_000_000)
    cut = data.rfind(b"\n# Time: ") + 1
    dest.write_bytes(data[:cut])
    return dest, data[:cut].count(b"\n# Time: ") + (1 if data.startswith(b"# Time: ") else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the parallel rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pt-prefix-mb", type=int, default=0, help="run pt on a prefix of this size (0: whole)")
    parser.add_argument("--skip-pt", action="store_true", help="only measure ours (no ratio)")
    args = parser.parse_args()

    path = ensure_log(args.entries, args.seed)
    size = path.stat().st_size
    entries = args.entries
    print(f"file: {path} ({size / 1e6:.1f} MB, {entries} entries); cpus: {os.cpu_count()}; "
          f"load before: {os.getloadavg()[0]:.2f}")  # fmt: skip

    run_measured(["wc", "-l", str(path)])
    wc_wall, _, _, _ = run_measured(["wc", "-l", str(path)])
    print(f"wc -l:            {wc_wall:7.2f}s  {size / wc_wall / 1e6:8.0f} MB/s")

    python = sys.executable
    results: dict[int, list[dict[str, float]]] = {}
    for jobs in sorted({1, args.jobs}):
        results[jobs] = []
        for _ in range(args.rounds):
            wall, cpu, _, out = run_measured([python, "-c", CHILD, str(path), str(jobs)])
            data = json.loads(out)
            data["wall"], data["cpu_total"] = wall, cpu
            if data["entries"] != entries or data["count"] != entries:
                raise SystemExit(f"ours counted {data['entries']} entries, expected {entries}")
            results[jobs].append(data)
        best = min(results[jobs], key=lambda d: d["wall"])
        median = statistics.median(d["wall"] for d in results[jobs])
        rss_total = best["rss_main_mib"] + ((jobs - 1) * best["rss_worker_mib"] if jobs > 1 else 0.0)
        print(
            f"ours --jobs {jobs}:     {best['wall']:7.2f}s  {size / best['wall'] / 1e6:8.0f} MB/s  "
            f"{entries / best['wall']:9.0f} entries/s  (median {median:.2f}s; cpu {best['cpu_total']:.2f}s; "
            f"peak RSS main {best['rss_main_mib']:.0f} MiB"
            + (f", per worker {best['rss_worker_mib']:.0f} MiB, sum {rss_total:.0f} MiB" if jobs > 1 else "")
            + f"; {best['digests']} digests, {best['rows']} daily rows; {best['scanner']} scanner)"
        )

    if args.skip_pt or shutil.which("pt-query-digest") is None:
        print("pt-query-digest: skipped" + ("" if args.skip_pt else " (not installed)"))
        return 0
    target, target_entries = (path, entries) if not args.pt_prefix_mb else prefix_file(path, args.pt_prefix_mb)
    target_size = target.stat().st_size
    pt_wall, pt_cpu, pt_rss, _ = run_measured(
        ["pt-query-digest", "--group-by", "Digest", "--limit", "10", str(target)], capture=False
    )
    scale = size / target_size
    pt_wall_whole, pt_cpu_whole = pt_wall * scale, pt_cpu * scale
    note = (
        ""
        if target == path
        else f" on a {target_size / 1e6:.0f} MB prefix ({target_entries} entries), scaled x{scale:.2f}"
    )
    print(
        f"pt-query-digest:  {pt_wall_whole:7.2f}s  {size / pt_wall_whole / 1e6:8.1f} MB/s  "
        f"{entries / pt_wall_whole:9.0f} entries/s  (cpu {pt_cpu_whole:.1f}s; peak RSS {pt_rss:.0f} MiB{note})"
    )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    verdict = 0
    for jobs, rounds in results.items():
        best = min(rounds, key=lambda d: d["wall"])
        ratio = pt_wall_whole / best["wall"]
        cpu_ratio = pt_cpu_whole / best["cpu_total"]
        rss_total = best["rss_main_mib"] + ((jobs - 1) * best["rss_worker_mib"] if jobs > 1 else 0.0)
        ok = ratio >= GOAL_RATIO and rss_total <= GOAL_RSS_MIB
        if jobs == 1:  # the goal is single-process
            verdict |= 0 if ok else 1
            judged = f"-> {'meets' if ok else 'misses'} the goal (>= {GOAL_RATIO:.0f}x, <= {GOAL_RSS_MIB:.0f} MiB)"
        else:
            judged = "(not judged: the goal is single-process)"
        print(
            f"ratio ours/pt --jobs {jobs}: {ratio:5.1f}x wall, {cpu_ratio:5.1f}x cpu; peak RSS {rss_total:.0f} MiB "
            + judged
        )
    return verdict


if __name__ == "__main__":
    sys.exit(main())
