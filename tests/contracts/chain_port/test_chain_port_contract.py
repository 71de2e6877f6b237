"""The ``ChainClient`` contract (dpgnode/ports/chains.py), the same for every chain.

Run against the simulator and real nodes alike (``conftest.py``), so that what the R8
simulation proves about the watcher holds on Bitcoin and EVM chains too: if the simulator
answered differently from a real node, one of these tests would fail for one driver only.
"""

from __future__ import annotations

from dpgnode.domain.chains.blocks import ChainBlock, ChainTx, Transfer
from tests.support.chain_driver import ChainDriver

UNITS = 12_345
SEARCH_DEPTH = 6
"""How many blocks below the tip a freshly mined payment is looked for."""


def _block_with(driver: ChainDriver, txid: str) -> ChainBlock:
    client = driver.client
    tip = client.tip().height
    for height in range(tip, max(tip - SEARCH_DEPTH, 0) - 1, -1):
        block = client.block(height)
        assert block is not None
        if txid in block.txids:
            return block
    raise AssertionError(f"{txid} is in none of the {SEARCH_DEPTH} blocks below the tip")


def _confirm(driver: ChainDriver, txid: str) -> ChainBlock:
    if driver.has_mempool:
        driver.mine(1)
    return _block_with(driver, txid)


def _transfers_to(txs: tuple[ChainTx, ...], address: str) -> list[Transfer]:
    return [t for tx in txs for t in tx.transfers if t.address == address]


def test_block_reports_exactly_the_payment_to_a_watched_address(chain_driver: ChainDriver) -> None:
    address = chain_driver.new_address()
    chain_driver.client.watch([address])
    txid = chain_driver.pay(address, UNITS)

    block = _confirm(chain_driver, txid)

    [transfer] = _transfers_to(block.transactions, address)
    assert (transfer.txid, transfer.address, transfer.asset, transfer.units) == (
        txid, address, chain_driver.asset, UNITS
    )
    assert transfer.key
    [tx] = [tx for tx in block.transactions if tx.txid == txid]
    assert tx.spends, "a payment has conflict keys, or its replacements could not be found"
    assert all(block.spent[key] == txid for key in tx.spends)


def test_tip_block_hash_and_block_agree(chain_driver: ChainDriver) -> None:
    client = chain_driver.client
    chain_driver.mine(1)

    tip = client.tip()
    block = client.block(tip.height)

    assert client.block_hash(tip.height) == tip.hash
    assert block is not None
    assert block.ref == tip


def test_consecutive_blocks_link_by_prev_hash(chain_driver: ChainDriver) -> None:
    client = chain_driver.client
    chain_driver.mine(3)
    tip = client.tip().height

    for height in range(tip - 2, tip + 1):
        block = client.block(height)
        assert block is not None
        assert block.height == height
        assert block.prev_hash == client.block_hash(height - 1)


def test_nothing_above_the_tip(chain_driver: ChainDriver) -> None:
    client = chain_driver.client
    tip = client.tip().height

    assert client.block(tip + 1) is None
    assert client.block_hash(tip + 1) is None


def test_watch_is_cumulative_and_idempotent(chain_driver: ChainDriver) -> None:
    client = chain_driver.client
    first, second = chain_driver.new_address(), chain_driver.new_address()
    client.watch([first])
    client.watch([second])
    client.watch([first, first])

    txids = {address: chain_driver.pay(address, UNITS) for address in (first, second)}
    if chain_driver.has_mempool:
        chain_driver.mine(1)

    for address, txid in txids.items():
        block = _block_with(chain_driver, txid)
        assert [t.txid for t in _transfers_to(block.transactions, address)] == [txid]


def test_payment_to_an_unwatched_address_shows_only_its_txid(chain_driver: ChainDriver) -> None:
    address = chain_driver.new_address()
    txid = chain_driver.pay(address, UNITS)

    block = _confirm(chain_driver, txid)

    assert txid in block.txids
    assert _transfers_to(block.transactions, address) == []


def test_mempool_shows_an_unconfirmed_payment_until_mined(mempool_driver: ChainDriver) -> None:
    client = mempool_driver.client
    address = mempool_driver.new_address()
    client.watch([address])
    txid = mempool_driver.pay(address, UNITS)

    pending = client.mempool()
    [seen] = _transfers_to(pending.transactions, address)
    block = _confirm(mempool_driver, txid)

    assert txid in pending.txids
    assert (seen.txid, seen.units, seen.asset) == (txid, UNITS, mempool_driver.asset)
    assert _transfers_to(block.transactions, address) == [seen], "the key is stable"
    assert txid not in client.mempool().txids


def test_reorg_replaces_the_dropped_blocks_and_links_the_new_branch(
    chain_driver: ChainDriver,
) -> None:
    client = chain_driver.client
    address = chain_driver.new_address()
    client.watch([address])
    chain_driver.mine(2)
    txid = chain_driver.pay(address, UNITS)
    _confirm(chain_driver, txid)
    tip = client.tip().height
    depth = 3
    fork = tip - depth
    old = {h: client.block_hash(h) for h in range(fork, tip + 1)}

    chain_driver.reorg(depth, drop=[txid])

    new_tip = client.tip().height
    assert new_tip == tip + 1
    assert client.block_hash(fork) == old[fork]
    for height in range(fork + 1, tip + 1):
        assert client.block_hash(height) != old[height]
    for height in range(fork + 1, new_tip + 1):
        block = client.block(height)
        assert block is not None
        assert block.prev_hash == client.block_hash(height - 1)
        assert txid not in block.txids
    if chain_driver.has_mempool:
        assert txid in client.mempool().txids, "a dropped payment returns to the mempool"


def test_replacement_maps_the_original_conflict_keys_to_itself(
    mempool_driver: ChainDriver,
) -> None:
    client = mempool_driver.client
    address, elsewhere = mempool_driver.new_address(), mempool_driver.new_address()
    client.watch([address])
    txid = mempool_driver.pay(address, UNITS)
    [original] = [tx for tx in client.mempool().transactions if tx.txid == txid]

    replacement = mempool_driver.replace(txid, elsewhere)
    pending = client.mempool()
    block = _confirm(mempool_driver, replacement)

    assert replacement != txid
    assert original.spends
    assert {key: pending.spent[key] for key in original.spends} == dict.fromkeys(
        original.spends, replacement
    )
    assert txid not in pending.txids
    assert replacement in pending.txids
    assert {key: block.spent[key] for key in original.spends} == dict.fromkeys(
        original.spends, replacement
    )
    assert txid not in block.txids
    assert _transfers_to(block.transactions, address) == []


def test_finalized_height_is_absent_or_not_above_the_tip(chain_driver: ChainDriver) -> None:
    client = chain_driver.client
    finalized = client.finalized_height()

    assert finalized is None or 0 <= finalized <= client.tip().height
