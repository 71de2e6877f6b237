"""L1-like ledger benchmark through the node's real services (bench/WORKLOADS.md, issue 2).

Run: ``.venv/bin/python bench/ledger.py [--seconds 6] [--postgres | --no-postgres]``

Every transfer goes through ``post_command`` (the command ``LedgerService.post`` runs) and the
node's ``SqlWriter`` on SQLite in WAL mode with ``synchronous=FULL``: validation, the
idempotency lookup, overdraft checks, the hash chain and the ``ledger.entry_posted`` outbox
event are all paid for. Many submitters keep ``--inflight`` futures open so group commit can
batch; the acknowledgement latency is the time from building the command to its future
resolving (after the durable commit).

Scenarios, measured in one run:

a. group commit (max_batch=100, max_wait=5 ms): transfers/s, ack p50/p99; then a short
   sweep over smaller ``--sweep`` in-flight counts (by Little's law the mean latency is
   in-flight / rate, so p99 <= 15 ms needs few open transfers or a much higher rate);
b. one entry per commit (max_batch=1): transfers/s, ack p99, and the ratio a/b;
c. group commit with 2,000,000 entries already present (built once, cached under
   ``bench/.cache/``, copied per run);
d. group commit on PostgreSQL (when a server is available, or with ``--postgres``).

Goals (issue 2): a >= 20,000/s, a/b >= 4, p99(a) <= 15 ms, c >= 10,000/s. The benchmark
prints figures and never asserts on time. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dpgnode.adapters.system import Uuid7Ids
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.errors import DpgError
from dpgnode.node import Node, build_node
from dpgnode.ports.uow import Hints
from dpgnode.services.ledger import post_command
from dpgnode.settings import load_settings

ACCOUNTS = 10_000
INITIAL_BALANCE = 10**12
ASSET = "BTC"
PREFILL_ENTRIES = 2_000_000
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
CACHE_VERSION = "v1"
WORLD = AccountRef(OwnerType.OPERATOR, "bench", ASSET, AccountKind.WORLD)


def account_ref(index: int) -> AccountRef:
    """Account ``index`` (1-based, as in L1) of the benchmark's users."""
    return AccountRef(OwnerType.USER, f"u{index}", ASSET, AccountKind.AVAILABLE)


REFS = [WORLD, *(account_ref(i) for i in range(1, ACCOUNTS + 1))]


# -- workload ------------------------------------------------------------------------------


class Transfers:
    """The L1 transfer stream: ``random.Random(seed)``, time-ordered idempotency keys."""

    def __init__(self, seed: int = 7, prefix: str = "tr") -> None:
        self._rng = random.Random(seed)
        self._ids = Uuid7Ids()
        self._prefix = prefix

    def next_draft(self) -> EntryDraft:
        rng = self._rng
        src = rng.randint(2, ACCOUNTS)
        dst = rng.randint(1, ACCOUNTS)
        if dst == src:
            dst = src - 1
        amount = rng.randint(1, 10_000)
        return EntryDraft(
            self._ids.new(self._prefix),
            (Posting(REFS[src], -amount), Posting(REFS[dst], amount)),
        )


def submit_draft(node: Node, draft: EntryDraft) -> Future[Any]:
    """What ``LedgerService.post`` does, without blocking: the same command and hints."""
    hints = Hints((draft.idempotency_key,), tuple(p.account for p in draft.postings))
    return node.writer.submit(post_command(draft), hints)


def fund_accounts(node: Node, per_entry: int = 1_000) -> None:
    """Open the 10,000 accounts, each credited ``INITIAL_BALANCE`` from the world account."""
    futures = []
    for start in range(1, ACCOUNTS + 1, per_entry):
        indexes = range(start, min(start + per_entry, ACCOUNTS + 1))
        postings = [Posting(REFS[i], INITIAL_BALANCE) for i in indexes]
        postings.append(Posting(WORLD, -INITIAL_BALANCE * len(indexes)))
        futures.append(submit_draft(node, EntryDraft(f"fund-{start}", tuple(postings))))
    for future in futures:
        future.result()


@dataclass
class RunResult:
    """What one timed run measured."""

    transfers: int = 0
    refused: int = 0
    seconds: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    batches: int = 0

    @property
    def rate(self) -> float:
        return self.transfers / self.seconds if self.seconds else 0.0

    def pct_ms(self, q: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    @property
    def mean_batch(self) -> float:
        return self.transfers / self.batches if self.batches else 0.0


def drive(
    node: Node, transfers: Transfers, *, seconds: float, inflight: int, count: int | None = None
) -> RunResult:
    """Keep ``inflight`` transfers open for ``seconds`` (or ``count`` transfers), then drain.

    One submitting thread, as a server's request handlers would be: when ``inflight``
    transfers are open it waits for the oldest (batches commit in order, so the oldest is
    the next to finish). Each future records its own acknowledgement latency when it
    resolves, on the writer thread, right after the commit.
    """
    result = RunResult()
    latencies = result.latencies_ns
    perf = time.perf_counter_ns

    def record(started: int, future: Future[Any]) -> None:
        latencies.append(perf() - started)

    window: deque[Future[Any]] = deque()
    batches0 = node.writer.batches
    start = time.perf_counter()
    deadline = start + seconds
    submitted = 0
    while (count is None and time.perf_counter() < deadline) or (
        count is not None and submitted < count
    ):
        if len(window) >= inflight:
            _settle(window.popleft(), result)
        started = perf()
        future = submit_draft(node, transfers.next_draft())
        future.add_done_callback(partial(record, started))
        window.append(future)
        submitted += 1
    while window:
        _settle(window.popleft(), result)
    result.seconds = time.perf_counter() - start
    result.batches = node.writer.batches - batches0
    # Refused transfers resolve too; keep only the acknowledged ones' latencies.
    del latencies[result.transfers:]
    return result


def _settle(future: Future[Any], result: RunResult) -> None:
    try:
        future.result()
    except DpgError:
        result.refused += 1
    else:
        result.transfers += 1


# -- nodes -----------------------------------------------------------------------------------


def open_node(
    data_dir: Path, *, max_batch: int, max_wait_ms: float, url: str | None = None
) -> Node:
    overrides: dict[str, Any] = {
        "ledger": {"group_commit_max_batch": max_batch, "group_commit_max_wait_ms": max_wait_ms}
    }
    if url is not None:
        overrides["database"] = {"url": url}
    return build_node(load_settings(data_dir, overrides=overrides), upgrade=True)


def sqlite_file(data_dir: Path) -> Path:
    return data_dir / "dpg.sqlite3"


def pragma_report(node: Node) -> dict[str, Any]:
    with node.writer_engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return {"dialect": conn.dialect.name}
        return {
            "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
            "synchronous": conn.exec_driver_sql("PRAGMA synchronous").scalar(),
        }


def quick_check(node: Node, expected_entries: int | None) -> str:
    """Cheap end-of-run invariants: Σ balances = 0 and the journal holds every ack."""
    with node.engine.connect() as conn:
        total = sum(int(b) for (b,) in conn.exec_driver_sql("SELECT balance FROM accounts"))
        entries = conn.exec_driver_sql("SELECT count(*) FROM journal").scalar()
        events = conn.exec_driver_sql(
            "SELECT count(*) FROM outbox WHERE type = 'ledger.entry_posted'"
        ).scalar()
    problems = []
    if total != 0:
        problems.append(f"balances sum to {total}")
    if expected_entries is not None and entries != expected_entries:
        problems.append(f"journal has {entries} entries, expected {expected_entries}")
    if events != entries:
        problems.append(f"{entries} entries but {events} events")
    return "ok" if not problems else "; ".join(problems)


def run_scenario(
    name: str,
    data_dir: Path,
    *,
    max_batch: int,
    max_wait_ms: float,
    seconds: float,
    inflight: int,
    url: str | None = None,
    prepared: bool = False,
    verify: bool = False,
    sweep: Sequence[int] = (),
    sweep_seconds: float = 2.0,
) -> tuple[RunResult, dict[str, Any]]:
    """Open a node, fund it (unless ``prepared``), warm up, measure; then the ``sweep``."""
    node = open_node(data_dir, max_batch=max_batch, max_wait_ms=max_wait_ms, url=url)
    try:
        if not prepared:
            fund_accounts(node)
        extra: dict[str, Any] = {"entries_before": journal_size(node)}
        transfers = Transfers(prefix=f"tr{name}")
        drive(node, transfers, seconds=0.0, inflight=inflight, count=2_000)  # warm-up
        cpu0 = os.times()
        result = drive(node, transfers, seconds=seconds, inflight=inflight)
        cpu1 = os.times()
        per = 1e6 / max(1, result.transfers + result.refused)
        extra["cpu_user_us"] = round((cpu1.user - cpu0.user) * per, 1)
        extra["cpu_sys_us"] = round((cpu1.system - cpu0.system) * per, 1)
        extra["sweep"] = {
            n: drive(node, transfers, seconds=sweep_seconds, inflight=n) for n in sweep
        }
        extra["pragmas"] = pragma_report(node)
        extra["check"] = quick_check(node, None)
        extra["entries_after"] = journal_size(node)
        if verify:
            report = node.verify_ledger()
            extra["verify"] = "ok" if report.ok else "; ".join(report.problems[:5])
        return result, extra
    finally:
        node.close()


def journal_size(node: Node) -> int:
    with node.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM journal").scalar() or 0)


# -- prefill ---------------------------------------------------------------------------------


def prefill_path() -> Path:
    """The cached prefill, keyed by the schema's head revision (a new migration rebuilds it)."""
    from alembic.script import ScriptDirectory

    from dpgnode.adapters.storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    name = f"prefill-{PREFILL_ENTRIES}-{CACHE_VERSION}-{head}"
    return CACHE_DIR / name / "dpg.sqlite3"


def build_prefill(target: Path) -> None:
    """Build the 2M-entry database through the real writer with large batches (once)."""
    work = target.parent.with_name(target.parent.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"building the {PREFILL_ENTRIES:,}-entry prefill in {work} (once; cached) ...",
          file=sys.stderr, flush=True)
    node = open_node(work, max_batch=5_000, max_wait_ms=50)
    started = time.perf_counter()
    try:
        fund_accounts(node)
        transfers = Transfers(seed=20240601, prefix="pf")
        remaining = PREFILL_ENTRIES - ACCOUNTS // 1_000
        step = 200_000
        while remaining > 0:
            n = min(step, remaining)
            drive(node, transfers, seconds=0.0, inflight=10_000, count=n)
            remaining -= n
            print(f"  {PREFILL_ENTRIES - remaining:,} entries, "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        check = quick_check(node, PREFILL_ENTRIES)
        if check != "ok":
            raise SystemExit(f"prefill is inconsistent: {check}")
    finally:
        node.close()  # the last connection to close checkpoints the WAL into the file
    shutil.rmtree(target.parent, ignore_errors=True)
    work.rename(target.parent)


def prepare_prefilled(data_dir: Path) -> None:
    source = prefill_path()
    if not source.exists():
        build_prefill(source)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, sqlite_file(data_dir))


# -- disk floor ------------------------------------------------------------------------------


def disk_floor(directory: Path, rounds: int = 1_000) -> dict[str, float]:
    """Append 4 KiB + fdatasync, ``rounds`` times (WORKLOADS.md's disk floor)."""
    path = directory / "fsync.probe"
    block = os.urandom(4096)
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            os.write(fd, block)
            os.fdatasync(fd)
            samples.append(time.perf_counter_ns() - t0)
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()
    return {
        "p50_ms": samples[len(samples) // 2] / 1e6,
        "p99_ms": samples[int(len(samples) * 0.99)] / 1e6,
        "fsync_per_s": rounds / (sum(samples) / 1e9),
    }


# -- main ------------------------------------------------------------------------------------


def postgres_database(forced: bool | None) -> tuple[str, str, str] | None:
    """``(admin_url, name, url)`` of a fresh PostgreSQL database, or None if unavailable."""
    if forced is False:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support import postgres

    admin = postgres.postgres_server_url()
    if admin is None:
        if forced:
            raise SystemExit("--postgres given but no PostgreSQL server is available")
        return None
    name = postgres.unique_database_name("bench_ledger")
    return admin, name, postgres.create_database(admin, name)


def drop_postgres_database(admin: str, name: str) -> None:
    from tests.support import postgres

    postgres.drop_database(admin, name)


def figures(prefix: str, result: RunResult, extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        f"{prefix}_tps": round(result.rate, 1),
        f"{prefix}_p50_ms": round(result.pct_ms(0.50), 3),
        f"{prefix}_p99_ms": round(result.pct_ms(0.99), 3),
        f"{prefix}_max_ms": round(result.pct_ms(1.0), 3),
        f"{prefix}_mean_batch": round(result.mean_batch, 1),
        f"{prefix}_transfers": result.transfers,
        f"{prefix}_refused": result.refused,
        f"{prefix}_cpu_user_us": extra["cpu_user_us"],
        f"{prefix}_cpu_sys_us": extra["cpu_sys_us"],
        f"{prefix}_check": extra["check"],
    }
    if extra["sweep"]:
        out[f"{prefix}_sweep"] = {
            str(n): {"tps": round(r.rate, 1), "p50_ms": round(r.pct_ms(0.5), 3),
                     "p99_ms": round(r.pct_ms(0.99), 3), "mean_batch": round(r.mean_batch, 1)}
            for n, r in extra["sweep"].items()
        }
    if "verify" in extra:
        out[f"{prefix}_verify"] = extra["verify"]
    return out


@dataclass
class Scenario:
    key: str
    title: str
    max_batch: int
    max_wait_ms: float


SCENARIOS = [
    Scenario("a", "a  SQLite, group commit (100 / 5 ms)", 100, 5),
    Scenario("b", "b  SQLite, one entry per commit", 1, 0),
    Scenario("c", "c  SQLite, group commit, {entries:,} entries present", 100, 5),
    Scenario("d", "d  PostgreSQL, group commit (100 / 5 ms)", 100, 5),
]


def run_one(
    scenario: Scenario, root: Path, args: argparse.Namespace, out: dict[str, Any]
) -> tuple[str, RunResult, dict[str, Any]] | None:
    """Run ``scenario``; None when it cannot run here (no PostgreSQL)."""
    data_dir = root / scenario.key
    options: dict[str, Any] = {
        "max_batch": scenario.max_batch, "max_wait_ms": scenario.max_wait_ms,
        "seconds": args.seconds, "inflight": args.inflight,
    }
    if scenario.key in "ab":
        options["verify"] = args.verify
    if scenario.key == "a":
        options["sweep"] = args.sweep
    if scenario.key == "c":
        prepare_prefilled(data_dir)
        options["prepared"] = True
    if scenario.key != "d":
        res, extra = run_scenario(scenario.key, data_dir, **options)
    else:
        database = postgres_database(args.postgres)
        if database is None:
            out["d_skipped"] = "no PostgreSQL server"
            return None
        admin, name, url = database
        try:
            res, extra = run_scenario(scenario.key, data_dir, url=url, **options)
        finally:
            drop_postgres_database(admin, name)
    return scenario.title.format(entries=extra["entries_before"]), res, extra


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per scenario")
    parser.add_argument("--inflight", type=int, default=256, help="open transfers at a time")
    parser.add_argument("--sweep", type=lambda v: [int(x) for x in v.split(",") if x],
                        default=[16, 64, 128], metavar="N,N,...",
                        help="after a: 2 s each with these in-flight counts (latency curve)")
    pg = parser.add_mutually_exclusive_group()
    pg.add_argument("--postgres", dest="postgres", action="store_true", default=None,
                    help="run d (fail without a server); default: run d if a server is found")
    pg.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument("--skip-prefill", action="store_true", help="skip scenario c")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append",
                        help="run only these scenarios")
    parser.add_argument("--verify", action="store_true", help="full verify_ledger after a and b")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = set(args.only or "abcd") - ({"c"} if args.skip_prefill else set())
    out: dict[str, Any] = {
        "bench": "ledger", "python": platform.python_version(), "cpus": os.cpu_count(),
        "seconds": args.seconds, "inflight": args.inflight,
    }
    rows: list[tuple[str, RunResult, dict[str, Any]]] = []
    root = Path(tempfile.mkdtemp(prefix="dpg-bench-"))
    try:
        out.update({f"disk_{k}": round(v, 3) for k, v in disk_floor(root).items()})
        for scenario in SCENARIOS:
            if scenario.key in wanted:
                row = run_one(scenario, root, args, out)
                if row is not None:
                    rows.append(row)
                    out.update(figures(scenario.key, row[1], row[2]))
                    out.setdefault("pragmas", row[2]["pragmas"])
                    shutil.rmtree(root / scenario.key, ignore_errors=True)
        if "a_tps" in out and out.get("b_tps"):
            out["ratio_a_b"] = round(out["a_tps"] / out["b_tps"], 2)
        if "c" in wanted:
            out["c_entries_before"] = next(
                (extra["entries_before"] for title, _, extra in rows if title.startswith("c")), 0
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows, out)
    print(json.dumps(out, sort_keys=True))
    return 0


def print_table(rows: list[tuple[str, RunResult, dict[str, Any]]], out: dict[str, Any]) -> None:
    print(f"disk floor: {out['disk_fsync_per_s']:.0f} fsync/s "
          f"(4 KiB append + fdatasync: p50 {out['disk_p50_ms']:.2f} ms, "
          f"p99 {out['disk_p99_ms']:.2f} ms)")
    header = (f"{'scenario':<52} {'transfers/s':>12} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8} {'batch':>6} {'cpu us':>7}")
    print(header)
    print("-" * len(header))
    for name, res, extra in rows:
        cpu = extra["cpu_user_us"] + extra["cpu_sys_us"]
        print(f"{name:<52} {res.rate:>12,.0f} {res.pct_ms(0.5):>8.2f} {res.pct_ms(0.99):>8.2f} "
              f"{res.pct_ms(1.0):>8.2f} {res.mean_batch:>6.1f} {cpu:>7.0f}")
        for n, swept in extra["sweep"].items():
            label = f"   same, {n} in flight"
            print(f"{label:<52} {swept.rate:>12,.0f} {swept.pct_ms(0.5):>8.2f} "
                  f"{swept.pct_ms(0.99):>8.2f} {swept.pct_ms(1.0):>8.2f} "
                  f"{swept.mean_batch:>6.1f}")
    if "ratio_a_b" in out:
        print(f"group commit / one per commit: {out['ratio_a_b']:.1f}x")
    goals = [
        ("a >= 20,000 transfers/s", out.get("a_tps", 0) >= 20_000),
        ("a/b >= 4", out.get("ratio_a_b", 0) >= 4),
        ("p99(a) <= 15 ms", out.get("a_p99_ms", 1e9) <= 15),
        ("c >= 10,000 transfers/s", out.get("c_tps", 0) >= 10_000),
    ]
    print("goals (issue 2): " + ", ".join(f"{g}: {'met' if ok else 'MISSED'}" for g, ok in goals))


if __name__ == "__main__":
    sys.exit(main())
