"""Run every benchmark in sequence with its defaults and print one combined table.

    python bench/run_all.py                 # what `make bench` runs (~35 min on 2 CPU cores)
    python bench/run_all.py --smoke         # every benchmark at its smallest sizes
    python bench/run_all.py --only data,inference

Each benchmark runs in its own process (its own Ray, if it starts one); its full output goes to
``bench/out/logs/NAME.log`` and its table is printed as soon as it finishes. Exits 0 when every
benchmark ran (targets may fail: the table says which), 1 when one crashed.
"""

from __future__ import annotations

import argparse
import time

import _common as C

BENCHMARKS = ("trial_overhead", "makespan", "asha", "data", "data_load", "memory", "inference",
              "export", "gpu")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="pass --smoke to every benchmark")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {BENCHMARKS}")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    flags = ["--smoke"] if args.smoke else []
    rows: list[C.Row] = []
    crashed = []
    start = time.perf_counter()
    for name in names:
        log = C.OUT / "logs" / f"{name}.log"
        print(f"== {name} (log: {log.relative_to(C.ROOT)})", flush=True)
        code, bench_rows, seconds = C.run_script(name, flags, log=log)
        if code != 0 or not bench_rows:
            crashed.append(name)
            print(f"{name} CRASHED (exit {code}); last lines of its log:\n"
                  + "\n".join(log.read_text().splitlines()[-15:]), flush=True)
        print(C.format_table(bench_rows, f"{name} ({seconds:.0f} s)"), flush=True)
        rows += bench_rows
        rows.append(C.info(f"{name}: benchmark wall time [s]", seconds, "{:.0f}"))
    total = time.perf_counter() - start
    rows.append(C.info("all: total wall time [min]", total / 60, "{:.1f}"))
    failed = [r.what for r in rows if r.status == "FAIL"]
    print(C.format_table(rows, "all benchmarks"))
    print(f"\n{len(rows) - len(failed)} rows ok, {len(failed)} targets FAIL"
          + (f", CRASHED: {', '.join(crashed)}" if crashed else "") + f"; {total / 60:.1f} min")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
