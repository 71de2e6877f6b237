"""R8 nightly: the chain simulation over many seeds (tests/support/chainsim).

Run: ``.venv/bin/python bench/chainsim.py [--seeds 20000] [--first-seed N] [--blocks 60]
[--steps 150] [--processes 2]``

Each seed runs the real watcher and ledger on SQLite over a seeded simulated chain and checks
every invariant after every step, as the push test does with smaller schedules. Seeds are
split over ``--processes`` worker processes, each with its own two nodes. Without
``--first-seed`` the range starts at a random seed (printed), so nightly runs explore new
schedules; a failure prints its seed, to be replayed with ``--first-seed SEED --seeds 1``
and pinned in ``tests/integration/chains/test_chain_simulation.py``.

Prints figures (seeds/s, steps, blocks, reorganisations, deep ones, rescans, credits) and, as
the last line, one JSON object. Exits 1 when any seed failed; never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.chainsim import (
    TEMPLATE_OWNERS,
    Rigs,
    SimConfig,
    run_seed,
    scratch_dir,
)


def _work(args: tuple[list[int], SimConfig]) -> dict[str, Any]:
    seeds, config = args
    totals: Counter[str] = Counter()
    failures: list[str] = []
    with scratch_dir(Path(tempfile.gettempdir())) as directory:
        rigs = Rigs.create(directory, TEMPLATE_OWNERS)
        try:
            for seed in seeds:
                try:
                    report = run_seed(seed, rigs, config)
                except AssertionError as exc:
                    failures.append(str(exc))
                    continue
                totals.update(seeds=1, steps=report.steps, blocks=report.blocks,
                              reorgs=report.reorgs, deep_reorgs=report.deep_reorgs,
                              rescans=report.rescans, credited=report.credited)
                totals.update({f"action:{k}": v for k, v in report.actions.items()})
        finally:
            rigs.close()
    return {"totals": dict(totals), "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20_000)
    parser.add_argument("--first-seed", type=int, default=None)
    parser.add_argument("--blocks", type=int, default=60, help="blocks mined per seed")
    parser.add_argument("--steps", type=int, default=150, help="most steps per seed")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-faults", action="store_true")
    args = parser.parse_args()
    first = args.first_seed if args.first_seed is not None else random.randrange(10**9)
    config = SimConfig(blocks=args.blocks, max_steps=args.steps, faults=not args.no_faults)
    seeds = list(range(first, first + args.seeds))
    chunks = [(seeds[i::args.processes], config) for i in range(args.processes)]
    print(f"R8 chain simulation: seeds {first}..{first + args.seeds - 1}, "
          f"{args.blocks} blocks and at most {args.steps} steps each, "
          f"{args.processes} processes", flush=True)
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        results = pool.map(_work, chunks)
    elapsed = time.perf_counter() - start
    totals: Counter[str] = Counter()
    failures: list[str] = []
    for result in results:
        totals.update(result["totals"])
        failures.extend(result["failures"])
    for failure in failures:
        print(f"FAILED {failure}")
    figures = {
        "first_seed": first, "seeds": args.seeds, "passed": totals["seeds"],
        "failed": len(failures), "seconds": round(elapsed, 1),
        "seeds_per_second": round(args.seeds / elapsed, 1),
        **{k: v for k, v in sorted(totals.items()) if k != "seeds"},
    }
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(figures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
