"""Nodes for the chain simulation: built once per process, reset to a template per use.

A seed needs a node, and every reorganisation needs another one for the fresh rescan it is
compared with. Building a node (settings, schema check, engines, cold statement caches) costs
more than a whole small schedule, so each process builds two nodes, ``main`` and ``fresh``,
and resets one to the template before each use by copying the template database into it
with SQLite's online backup API. The template is a migrated database with a watch-only BIP84
key account and some issued addresses. Nothing in a node outlives a reset except caches the
node itself guards (the writer's account cache checks ``PRAGMA data_version``).

Databases live on tmpfs (``/dev/shm``) when the machine has it: the node runs SQLite with
``synchronous=FULL``, and fsyncs on a real disk would spend the push budget on durability
that R4/R5 test, not this.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dpgnode.adapters.chains.simulated import SimulatedChain
from dpgnode.adapters.chains.simulated_client import NO_FAULTS, Faults, SimulatedChainClient
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage.chains import SqlChainStore
from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.custody.networks import Network
from dpgnode.node import Node, build_node
from dpgnode.services.chains.watcher import ChainWatcher, WatchTarget
from dpgnode.settings import load_settings

CHAIN = "bitcoin"
START_HEIGHT = 1
"""The watcher (and every fresh rescan) starts at block 1: genesis never reorganises away."""
# The published BIP84 test vector's account key (mainnet): not a secret.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)
_DB = "dpg.sqlite3"


@contextlib.contextmanager
def scratch_dir(fallback: Path) -> Iterator[Path]:
    """A private directory on tmpfs when there is one, else under ``fallback``; removed after."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else fallback
    path = Path(tempfile.mkdtemp(prefix="dpg-chainsim-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _open(data_dir: Path, clock: FixedClock, *, upgrade: bool) -> Node:
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+pysqlite:///{data_dir / _DB}"
    settings = load_settings(data_dir, overrides={"custody": {"network": "mainnet"},
                                                  "database": {"url": url}})
    return build_node(settings, clock=clock, upgrade=upgrade)


@dataclass
class NodeRig:
    """A node, its chain store and the addresses issued on it (in issue order)."""

    node: Node
    template: Template
    store: SqlChainStore = field(init=False)
    issued: list[tuple[str, str]] = field(init=False)
    """``(address, owner)`` in issue order."""

    def __post_init__(self) -> None:
        self.store = SqlChainStore(self.node.engine)
        self.issued = list(self.template.issued)

    @property
    def clock(self) -> FixedClock:
        clock = self.node.clock
        assert isinstance(clock, FixedClock)
        return clock

    def reset(self) -> None:
        """Back to the template's contents (the node must be idle: no command in flight)."""
        with contextlib.closing(sqlite3.connect(self.template.path)) as source, \
                contextlib.closing(sqlite3.connect(self.node.settings.data_dir / _DB)) as target:
            source.backup(target)
        self.issued = list(self.template.issued)

    def issue(self, owner: str) -> str:
        issued = self.node.custody.addresses.issue(self.template.account_id, owner=owner)
        self.issued.append((issued.address.address, owner))
        return issued.address.address

    def watcher(
        self, chain: SimulatedChain, policy: ConfirmationPolicy, *,
        faults: Faults = NO_FAULTS, seed: int = 0, max_blocks: int = 200,
    ) -> tuple[ChainWatcher, SimulatedChainClient]:
        """A new watcher instance over this database (a restart when one ran before)."""
        target = WatchTarget(CHAIN, "bitcoin", "mainnet", policy, start_height=START_HEIGHT,
                             max_blocks_per_poll=max_blocks)
        client = SimulatedChainClient(chain, faults=faults, seed=seed)
        watcher = ChainWatcher(target, client, self.store, self.node.custody.store,
                               self.node.writer, self.node.clock)
        return watcher, client


@dataclass(frozen=True)
class Template:
    """A migrated database with one watch-only key account and addresses issued on it.

    The addresses issued up front stand for a node's open invoices (most of them never
    paid); a schedule issues more while the watcher runs.
    """

    path: Path
    account_id: str
    issued: tuple[tuple[str, str], ...]

    @classmethod
    def create(cls, directory: Path, owners: Sequence[str]) -> Template:
        """Issue one address per entry of ``owners`` (``owner_type:owner_id`` or empty)."""
        node = _open(directory, FixedClock(), upgrade=True)
        try:
            view = node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
            account_id = view.accounts[0].id
            issued = tuple(
                (node.custody.addresses.issue(account_id, owner=owner).address.address, owner)
                for owner in owners)
        finally:
            node.close()
        return cls(directory / _DB, account_id, issued)


@dataclass
class Rigs:
    """The two nodes of one process (see the module docstring); close them when done."""

    template: Template
    main: NodeRig
    fresh: NodeRig

    @classmethod
    def create(cls, directory: Path, owners: Sequence[str]) -> Rigs:
        template = Template.create(directory / "template", owners)
        rigs = []
        for name in ("main", "fresh"):
            (directory / name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template.path, directory / name / _DB)
            rigs.append(NodeRig(_open(directory / name, FixedClock(), upgrade=False), template))
        return cls(template, rigs[0], rigs[1])

    def close(self) -> None:
        self.main.node.close()
        self.fresh.node.close()
