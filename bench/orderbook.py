"""W1 order-book benchmark: our matching engine against two PyPI peers (bench/WORKLOADS.md).

Run: ``.venv/bin/python bench/orderbook.py [--ops N | --quick] [--runs 3] [--engine NAME ...]``

Engines, each in its own process (``subprocess`` running this file with ``--worker``):

- ``ours``: ``dpgnode.domain.exchange.MatchingEngine``, ``gc.freeze()`` after the prefill
  (WORKLOADS.md allows it for ours; measured to remove most GC pauses);
- ``ours-gc``: the same with the default GC, to show what the freeze is worth;
- ``liquibook``: the PyPI wheel (C++ liquibook behind SWIG), ``OrderBook`` without depth
  tracking or listeners; a market order is ``SimpleOrder(is_buy, 0, qty)`` added with
  ``oc_immediate_or_cancel`` (the condition is an argument of ``add``, not of the order);
- ``lightmatchingengine``: pure Python; a market order is ``add_order`` at price 0, and since
  the library would rest the unfilled rest at price 0 we cancel it at once (IOC, paid in the
  timed loop);
- ``ours-journal``: ours with the durable command journal on
  (``dpgnode.adapters.exchange.FileExchangeJournal`` in a temporary directory on the local
  disk): each command is appended before it is applied, and the timed region ends only when
  the last command is ``fdatasync``'d. The acknowledgement latency of a command is the time
  from its append to the flusher's durable notification covering it (a separate run). The
  worker lowers ``sys.setswitchinterval`` (``--switch-interval``, see the journal's GIL
  note); after the first run the journal is recovered and replayed into a fresh engine, whose
  book must match too.

Harness (WORKLOADS.md): the ops are generated once by ``bench/w1.py`` (cached under
``bench/.cache/`` from 100k ops) before any timing; the timed loop dispatches on the op type
and calls the engine's own API, building the engine's order objects inside the timed region.
Throughput = one ``perf_counter`` around the loop, median of ``--runs`` runs; latency = a
separate run with ``perf_counter_ns`` around each op. Every run is a fresh process and a fresh
engine after the untimed prefill, and the runs go round-robin over the engines (run 1 of each,
then run 2, ...), so a shared machine's changing load hits every engine alike. Every run's
final book (orders, lots) is checked against W1's checksum (1M ops: 2,294 orders holding
114,558 lots; other sizes: a plain reference replay in this file), and against that
reference replay of the generated ops (column ``ops``).

Figures are printed, never asserted. The last line is one JSON object with every figure.
The engines' loops are in ``orderbook_engines.py``, the journal scenario in
``orderbook_journal.py``; this file holds the workload, the process orchestration and the
report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

import w1  # noqa: E402
from orderbook_engines import (  # noqa: E402
    CANCEL,
    LIMIT,
    Ops,
    engine_hooks,
    last_order_id,
    latency_figures,
)
from orderbook_journal import journal_worker  # noqa: E402

ENGINES = ["ours", "ours-gc", "liquibook", "lightmatchingengine", "ours-journal"]
BASELINE = "liquibook"
CACHE_DIR = HERE / ".cache"


# -- workload ------------------------------------------------------------------------------


def load_workload(n_ops: int) -> tuple[Path, dict[str, int], dict[str, int], bool]:
    """Generate (or reuse) W1 for ``n_ops``.

    Returns the pickle of ``(prefill, ops)``, the expected final book (WORKLOADS.md's
    checksum for 1M ops, else the reference replay), the reference replay of the generated
    ops, and whether the ops came from the cache.
    """
    digest = hashlib.sha256((HERE / "w1.py").read_bytes()).hexdigest()[:12]
    path = CACHE_DIR / f"w1-{n_ops}-{digest}.pickle"
    sidecar = path.with_suffix(".reference.json")
    cached = path.exists() and sidecar.exists()
    if cached:
        reference = json.loads(sidecar.read_text())
    else:
        started = time.perf_counter()
        prefill, ops = w1.generate(n_ops)
        print(f"generated W1 ({n_ops:,} ops) in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
        reference = reference_book(prefill, ops)
        if n_ops < 100_000:
            path = Path(tempfile.mkdtemp(prefix="dpg-w1-")) / path.name
            sidecar = path.with_suffix(".reference.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_bytes(pickle.dumps((prefill, ops), protocol=pickle.HIGHEST_PROTOCOL))
        temp.replace(path)
        sidecar.write_text(json.dumps(reference))
    expected = dict(reference)
    if n_ops == 1_000_000:
        expected = {"orders": w1.CHECKSUMS["final_orders"], "lots": w1.CHECKSUMS["final_lots"],
                    "fills": w1.CHECKSUMS["fills"]}
    return path, expected, reference, cached


def reference_book(prefill: Ops, ops: Ops) -> dict[str, int]:
    """Final book of a plain price-time FIFO replay (no speed tricks), for sizes != 1M."""
    levels: tuple[dict[int, deque[list[int]]], dict[int, deque[list[int]]]] = ({}, {})
    index: dict[int, list[int]] = {}  # id -> [qty, side, price]
    fills = 0

    def take(side: int, limit: int | None, qty: int) -> int:
        nonlocal fills
        book = levels[1 - side]
        while qty and book:
            best = max(book) if side == 1 else min(book)
            if limit is not None and (best > limit if side == 0 else best < limit):
                break
            queue = book[best]
            while qty and queue:
                rec = queue[0]
                fill = min(qty, rec[0])
                rec[0] -= fill
                qty -= fill
                fills += 1
                if rec[0] == 0:
                    queue.popleft()
                    del index[rec[3]]
            if not queue:
                del book[best]
        return qty

    for op in [*prefill, *ops]:
        if op[0] == LIMIT:
            _, oid, side, price, qty = op
            left = take(side, price, qty)
            if left:
                rec = [left, side, price, oid]
                levels[side].setdefault(price, deque()).append(rec)
                index[oid] = rec
        elif op[0] == CANCEL:
            rec = index.pop(op[1])
            queue = levels[rec[1]][rec[2]]
            queue.remove(rec)
            if not queue:
                del levels[rec[1]][rec[2]]
        else:
            take(op[2], None, op[3])
    fills -= sum(1 for op in prefill if op[0] != LIMIT)  # the prefill never trades
    return {"orders": len(index), "lots": sum(r[0] for r in index.values()), "fills": fills}


# -- worker ------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One phase of one engine: a throughput run (``run``) or the latency run (``latency``)."""
    prefill, ops = pickle.loads(Path(args.ops_file).read_bytes())
    if args.worker == "ours-journal":
        return journal_worker(args, prefill, ops)
    setup, timed, latency, book = engine_hooks(args.worker, prefill, last_order_id(prefill, ops))
    state = setup()
    if args.phase == "run":
        seconds = timed(state, ops)
        return {"ops_per_s": round(len(ops) / seconds), "book": book(state)}
    samples, fills = latency(state, ops)
    return {"latency_us": latency_figures(samples), "fills": fills, "book": book(state)}


# -- parent ------------------------------------------------------------------------------------


def run_worker(
    name: str, phase: str, ops_file: Path, args: argparse.Namespace, *, replay: bool = False
) -> dict[str, Any]:
    """Run one phase of one engine in a fresh interpreter; its last stdout line is JSON."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--phase", phase,
            "--ops-file", str(ops_file), "--switch-interval", str(args.switch_interval)]
    if args.journal_dir:
        argv += ["--journal-dir", args.journal_dir]
    if replay:
        argv.append("--replay")
    print(f"running {name} ({phase}) ...", file=sys.stderr, flush=True)
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_engines(names: list[str], ops_file: Path, args: argparse.Namespace
                ) -> dict[str, dict[str, Any]]:
    """Throughput runs round-robin over the engines, then one latency run each.

    Interleaving the runs spreads the load of a shared machine over all engines alike, so
    the ratios between them mean more than the absolute figures.
    """
    results: dict[str, dict[str, Any]] = {
        name: {"engine": name, "runs_ops_per_s": [], "books": []} for name in names
    }
    phases = [("run", run) for run in range(args.runs)] + [("latency", args.runs)]
    for phase, number in phases:
        for name, result in results.items():
            if "error" in result:
                continue
            part = run_worker(name, phase, ops_file, args, replay=(phase, number) == ("run", 0))
            if "error" in part:
                result["error"] = f"{phase} {number}: {part['error']}"
                continue
            result["books"].append(part.pop("book"))
            if "ops_per_s" in part:
                result["runs_ops_per_s"].append(part.pop("ops_per_s"))
            if "groups" in part:
                result.setdefault("runs_groups", []).append(part.pop("groups"))
            result.update(part)
    return results


def summarise(
    result: dict[str, Any], expected: dict[str, int], reference: dict[str, int]
) -> dict[str, Any]:
    """Median throughput and the book checks of one engine's raw worker result.

    ``book_ok``: every run (and the journal's replay) ended in the expected book;
    ``matches_reference``: ... in the reference replay's book of the same generated ops.
    """
    if "error" in result:
        return result
    books = [tuple(b) for b in result.pop("books")]
    if "replayed_book" in result:
        books.append(tuple(result["replayed_book"]))
        result["replay_ok"] = books[-1] == books[0]
    want = (expected["orders"], expected["lots"])
    result["final_orders"], result["final_lots"] = books[0]
    result["book_ok"] = all(b == want for b in books)
    result["matches_reference"] = all(b == (reference["orders"], reference["lots"])
                                      for b in books)
    if result.get("fills") is not None:
        result["fills_ok"] = result["fills"] == expected["fills"]
    result["ops_per_s"] = round(statistics.median(result["runs_ops_per_s"]))
    return result


def add_ratios(engines: dict[str, dict[str, Any]]) -> None:
    base = engines.get(BASELINE, {})
    for result in engines.values():
        if "ops_per_s" in result and "ops_per_s" in base:
            result["ratio_vs_liquibook"] = round(result["ops_per_s"] / base["ops_per_s"], 3)
        if "latency_us" in result and "latency_us" in base:
            result["p99_ratio_vs_liquibook"] = round(
                result["latency_us"]["p99"] / base["latency_us"]["p99"], 3)


def print_table(out: dict[str, Any]) -> None:
    exp = out["expected"]
    print(f"W1: {out['ops']:,} ops after a {out['prefill']:,}-order prefill; throughput = median "
          f"of {out['runs']} runs; expected final book {exp['orders']:,} orders holding "
          f"{exp['lots']:,} lots ({exp['fills']:,} fills)")
    ref = out["reference"]
    if ref != exp:
        print(f"WARNING: the generated ops (bench/w1.py) end in {ref['orders']:,} orders holding "
              f"{ref['lots']:,} lots ({ref['fills']:,} fills) in this file's reference replay, "
              "not in the published W1 book: the generator and WORKLOADS.md's W1 differ. "
              "Column 'ops' tells whether an engine agrees with the reference on these ops.")
    header = (f"{'engine':<21} {'ops/s':>11} {'x liquibook':>11} {'p50 µs':>8} {'p99 µs':>8} "
              f"{'p99.9 µs':>9} {'max µs':>9} {'final book':>18} {'W1':>5} {'ops':>5}")
    print(header)
    print("-" * len(header))
    for name, r in out["engines"].items():
        if "error" in r:
            print(f"{name:<21} failed: {r['error']}")
            continue
        lat = r.get("latency_us", {})
        ratio = r.get("ratio_vs_liquibook")
        book = f"{r['final_orders']:,} / {r['final_lots']:,}"
        print(f"{name:<21} {r['ops_per_s']:>11,} {ratio if ratio is not None else '-':>11} "
              f"{lat.get('p50', '-'):>8} {lat.get('p99', '-'):>8} {lat.get('p999', '-'):>9} "
              f"{lat.get('max', '-'):>9} {book:>18} {'ok' if r['book_ok'] else 'WRONG':>5} "
              f"{'ok' if r['matches_reference'] else 'WRONG':>5}")
    journal = out["engines"].get("ours-journal")
    if journal and "ack_ms" in journal:
        ack = journal["ack_ms"]
        print(f"ours-journal: acknowledgement (append -> fdatasync'd) p50 {ack['p50']} ms, "
              f"p99 {ack['p99']} ms, p99.9 {ack['p999']} ms, max {ack['max']} ms; "
              f"{journal['ack_groups']:,} groups of {journal['ack_mean_group']} commands; "
              f"switch interval {journal['switch_interval_s'] * 1000:g} ms; "
              f"journal replayed into a fresh engine: "
              f"{'same book' if journal.get('replay_ok') else 'DIFFERENT BOOK'}; "
              f"journal on {journal['journal_dir']}")
        floor = journal["disk_floor_ms"]
        print(f"disk floor there (8 KiB pwrite + fdatasync, alone): p50 {floor['p50']} ms, "
              f"p99 {floor['p99']} ms")
        goals = [("ours-journal >= 200k ops/s", journal["ops_per_s"] >= 200_000),
                 ("ack p99 <= 5 ms", ack["p99"] <= 5)]
        print("goals: " + ", ".join(f"{g}: {'met' if ok else 'MISSED'}" for g, ok in goals))
    fills = {n: r["fills"] for n, r in out["engines"].items() if r.get("fills") is not None}
    if fills:
        print("fills counted from events/trades: "
              + ", ".join(f"{n} {f:,}" for n, f in fills.items())
              + f" (expected {exp['fills']:,}; liquibook reports fills only to a listener)")
    print("GC: gc.freeze() after the prefill for ours and ours-journal only; ours-gc, "
          "liquibook and lightmatchingengine run with the default GC. "
          "Shared machine: figures are noisy, compare ratios from one run.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000, help="timed operations")
    parser.add_argument("--quick", action="store_true", help="100,000 operations")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs per engine")
    parser.add_argument("--engine", action="append", choices=ENGINES,
                        help="run only this engine (repeatable)")
    parser.add_argument("--switch-interval", type=float, default=0.0002,
                        help="sys.setswitchinterval for ours-journal (seconds)")
    parser.add_argument("--journal-dir", help="where ours-journal writes (default: the temp dir)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ops-file", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["run", "latency"], help=argparse.SUPPRESS)
    parser.add_argument("--replay", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    n_ops = 100_000 if args.quick else args.ops
    ops_file, expected, reference, cached = load_workload(n_ops)
    prefill_size = len(pickle.loads(ops_file.read_bytes())[0])
    try:
        engines = {
            name: summarise(result, expected, reference)
            for name, result in run_engines(args.engine or ENGINES, ops_file, args).items()
        }
    finally:
        if not ops_file.is_relative_to(CACHE_DIR):
            shutil.rmtree(ops_file.parent, ignore_errors=True)
    add_ratios(engines)
    out = {
        "bench": "orderbook", "workload": "W1", "ops": n_ops, "prefill": prefill_size,
        "runs": args.runs, "python": platform.python_version(), "cpus": os.cpu_count(),
        "workload_cached": cached, "expected": expected, "reference": reference,
        "engines": engines,
    }
    print_table(out)
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
