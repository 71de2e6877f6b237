"""R8: the real watcher and ledger on SQLite over seeded simulated chains, 500 seeds per push.

Each seed is a random schedule of payments, replacements, double spends, descendants,
reorganisations of depth 1-8 (some deeper than the seed's reorg limit), RPC timeouts, lost /
repeated / late notifications and watcher restarts, checked after every step against the
chain itself and, after every reorganisation, against a fresh rescan
(``tests/support/chainsim``). Every seed of a batch runs; the failures name their seed and
step. Rerun one with ``DPG_R8_SEEDS=1 DPG_R8_FIRST_SEED=<seed>``, then pin it in
:data:`PINNED`.

Push: ``DPG_R8_SEEDS`` (default 500) seeds from ``DPG_R8_FIRST_SEED`` (default 0), in
:data:`BATCHES` tests so xdist spreads them over the workers. Nightly: ``bench/chainsim.py``
(20,000 seeds, longer schedules).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import pytest

from tests.support.chainsim import TEMPLATE_OWNERS, Rigs, SimConfig, run_seed, scratch_dir

SEEDS = int(os.environ.get("DPG_R8_SEEDS", "500"))
FIRST_SEED = int(os.environ.get("DPG_R8_FIRST_SEED", "0"))
BATCHES = 10
PUSH = SimConfig(blocks=10, max_steps=25)
PINNED: tuple[int, ...] = (16, 20, 356)
"""Seeds that once failed (regressions), run on every push (in batch 0) whatever the range."""


@pytest.fixture(scope="module")
def rigs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rigs]:
    with scratch_dir(tmp_path_factory.mktemp("chainsim")) as directory:
        built = Rigs.create(directory, TEMPLATE_OWNERS)
        try:
            yield built
        finally:
            built.close()


def _run(seeds: Iterable[int], rigs: Rigs) -> tuple[int, list[str]]:
    """Every seed, failing ones included; reorganisations seen and the failures."""
    reorgs = 0
    failures: list[str] = []
    for seed in seeds:
        try:
            reorgs += run_seed(seed, rigs, PUSH).reorgs
        except AssertionError as exc:
            failures.append(str(exc))
    return reorgs, failures


@pytest.mark.long_push
@pytest.mark.parametrize("batch", range(BATCHES))
def test_watcher_state_is_the_chains_after_every_step(batch: int, rigs: Rigs) -> None:
    seeds = [*(PINNED if batch == 0 else ()),
             *range(FIRST_SEED + batch, FIRST_SEED + SEEDS, BATCHES)]
    reorgs, failures = _run(seeds, rigs)
    assert not failures, f"{len(failures)} of {len(seeds)} seeds failed:\n" + "\n".join(failures)
    assert not seeds or reorgs > 0, "the schedules never reorganised the chain"
