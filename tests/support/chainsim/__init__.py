"""R8 chain simulation: the real watcher and ledger on SQLite over the simulated chain.

``schedule.run_seed`` runs one seed; ``truth`` holds the invariants; ``rig`` builds nodes
from a migrated template. Used by ``tests/integration/chains/test_chain_simulation.py``
(push) and ``bench/chainsim.py`` (nightly, 20,000 seeds).
"""

from tests.support.chainsim.rig import Rigs, scratch_dir
from tests.support.chainsim.schedule import TEMPLATE_OWNERS, SeedReport, SimConfig, run_seed

__all__ = ["TEMPLATE_OWNERS", "Rigs", "SeedReport", "SimConfig", "run_seed", "scratch_dir"]
