"""Planning a sweep: which deposit addresses hold what, what each transaction will move.

Planning reads the chains and the custody records and signs nothing (``dpg chain sweep
--dry-run`` shows a plan and stops). What is swept, per asset:

- Bitcoin: every confirmed, unreserved output of the issued addresses (receiving and
  change) of every Bitcoin key account the node holds keys for, in one transaction per
  ``MAX_INPUTS`` outputs, paying everything but the fee to the treasury (no change);
- an EVM coin: each *used* address (one the watcher saw paid) of every EVM key account the
  node holds keys for, its balance less the most its transfer's gas may cost;
- an EVM token: each used address's whole token balance; when its coin balance cannot pay
  the transfer's gas, a top-up from the chain's gas hot key comes first.

Watch-only keychains cannot be swept (the node has no key): they are left out. An address
is skipped, with the reason, when moving its value would cost more than the value, when
its gas cannot be paid, or when a Bitcoin sweep would leave only dust.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from dpgnode.domain.chains.outgoing import gas_top_up, native_sweep_units
from dpgnode.domain.chains.sweeps import SweepInput
from dpgnode.domain.custody.addresses import address_from_script, parse_address
from dpgnode.domain.custody.btc_spend import FeeRate, Utxo, estimate_vsize
from dpgnode.domain.custody.btc_tx import dust_threshold
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.domain.custody.evm_tx import erc20_transfer_data
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import EXTERNAL_BRANCH, Chain, KeyAccount
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import ConfigError, DpgError, NotFoundError, ValidationError
from dpgnode.ports.custody import CustodyStore
from dpgnode.ports.sweeps import EvmFees, SweepChain

MAX_INPUTS = 400
"""Outputs spent by one Bitcoin sweep (about 27,000 vB: far below the standard size limit)."""
NATIVE_TRANSFER_GAS = 21_000
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class SweepTarget:
    """Where one chain's deposits go (``[chains]`` settings), checked when used."""

    chain: str
    family: str
    """``bitcoin`` or ``evm``."""
    treasury: Mapping[str, str]
    """Treasury address per asset code; an asset without one is not swept."""
    gas_source: str = ""
    """``hot:<label>`` paying gas top-ups before token sweeps (EVM); empty: none."""
    setting: str = ""
    """The settings path, for messages (``chains.evm.ethereum``)."""


@dataclass(frozen=True, slots=True)
class PlannedSweep:
    """One transaction to sign: ``units`` of ``asset`` from ``inputs`` to the treasury."""

    chain: str
    asset: str
    to_address: str
    units: int
    inputs: tuple[SweepInput, ...]
    fee: int
    """The fee it pays (Bitcoin, exact) or may pay at most (EVM: gas * max fee)."""
    gas: int = 0
    """EVM gas limit."""
    top_up: int = 0
    """EVM token sweeps: wei the gas hot key sends first."""
    utxos: tuple[Utxo, ...] = ()
    """Bitcoin: the outputs spent, in input order."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """An address (or account) left alone, and why."""

    address: str
    units: int
    reason: str


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """What sweeping one asset of one chain would do."""

    chain: str
    asset: str
    treasury: str
    sweeps: tuple[PlannedSweep, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    fee_rate: FeeRate | None = None
    evm_fees: EvmFees | None = None
    gas_source: str = ""
    fee_asset: str = ""
    """The chain's coin, in which fees and gas top-ups are paid."""

    @property
    def units(self) -> int:
        """Everything the treasury would receive."""
        return sum(s.units for s in self.sweeps)


@dataclass
class SweepPlanner:
    """Builds :class:`SweepPlan` s from custody records and chain reads (see the module)."""

    targets: Mapping[str, SweepTarget]
    custody: CustodyStore
    assets: AssetRegistry
    network: Network
    """The node's Bitcoin network (``custody.network``)."""
    _accounts: list[KeyAccount] = field(default_factory=list)

    def selected(self, selector: str | None) -> list[tuple[SweepTarget, str]]:
        """``(target, asset)`` pairs a selector names: a chain, an asset, or every one.

        Tokens come before their chain's coin, so a chain-wide sweep moves them while the
        coin still pays their gas.

        Raises:
            ValidationError: the selector names neither a configured chain nor an asset.
            ConfigError: it names a chain or asset without a treasury address.
        """
        if selector is not None and selector in self.assets:
            asset = self.assets.require(selector)
            target = self.targets.get(asset.network or "")
            if target is None or selector not in target.treasury:
                raise ConfigError(f"no treasury address for {selector}: set "
                                  f"{_setting(target, asset.network)}.treasury_address")
            return [(target, selector)]
        if selector is not None and selector not in self.targets:
            raise ValidationError(f"{selector[:40]!r} is neither a chain with a treasury "
                                  "address nor an asset code", field="target")
        chosen = [self.targets[selector]] if selector is not None else list(self.targets.values())
        pairs = [(t, code) for t in chosen for code in sorted(
            t.treasury, key=lambda c: (self.assets.require(c).kind is not AssetKind.TOKEN, c))]
        if selector is not None and not pairs:
            raise ConfigError(f"no treasury address for {selector}: set "
                              f"{_setting(self.targets[selector], selector)}.treasury_address")
        return pairs

    def plan(self, target: SweepTarget, asset: str, chain: SweepChain) -> SweepPlan:
        """What sweeping ``asset`` of ``target``'s chain would do now."""
        if target.family == "bitcoin":
            return self._bitcoin(target, asset, chain)
        return self._evm(target, asset, chain)

    # -- Bitcoin -------------------------------------------------------------------------------

    def _bitcoin(self, target: SweepTarget, asset: str, chain: SweepChain) -> SweepPlan:
        treasury = self._treasury(target, asset)
        script = parse_address(treasury, self.network).script_pubkey
        utxos: list[Utxo] = []
        skipped: list[Skipped] = []
        fee_rate: FeeRate | None = None
        for account in self._spendable(Chain.BITCOIN):
            try:
                funds = chain.bitcoin_funds(account.id, account.network)
            except ValidationError as exc:  # e.g. a legacy or nested-segwit account
                skipped.append(Skipped(account.id, 0, exc.message))
                continue
            fee_rate = funds.fee_rate
            utxos.extend(u for u in funds.utxos if u.script_pubkey != script)
        sweeps: list[PlannedSweep] = []
        if fee_rate is not None:
            for start in range(0, len(utxos), MAX_INPUTS):
                found = _bitcoin_sweep(target.chain, asset, treasury, script,
                                       utxos[start:start + MAX_INPUTS], fee_rate, self.network)
                if isinstance(found, Skipped):
                    skipped.append(found)
                else:
                    sweeps.append(found)
        return SweepPlan(target.chain, asset, treasury, tuple(sweeps), tuple(skipped),
                         fee_rate=fee_rate, fee_asset=asset)

    # -- EVM -----------------------------------------------------------------------------------

    def _evm(self, target: SweepTarget, asset_code: str, chain: SweepChain) -> SweepPlan:
        treasury = self._treasury(target, asset_code)
        asset = self.assets.require(asset_code)
        fees = chain.fees(target.chain)
        native = [c for c, a in self.assets.items()
                  if a.network == target.chain and a.kind is AssetKind.CRYPTO]
        if not native:
            raise ConfigError(f"no coin asset moves on {target.chain}")
        sweeps: list[PlannedSweep] = []
        skipped: list[Skipped] = []
        token = chain.token_contract(asset_code) if asset.kind is AssetKind.TOKEN else None
        recipient = parse_evm_address(treasury, field="treasury").raw
        for address, key_id in self._used_evm_addresses():
            if address.lower() == treasury.lower():
                continue
            units = chain.balance(asset_code, address)
            if units <= 0:
                continue
            if token is None:
                gas = chain.estimate_gas(target.chain, sender=address, to=treasury)
                amount = native_sweep_units(units, gas, fees.max_fee_per_gas)
                if amount < gas * fees.max_fee_per_gas:
                    skipped.append(Skipped(address, units, "the balance barely covers the "
                                           "transfer's gas: sweeping would cost more than it "
                                           "moves"))
                    continue
                sweeps.append(PlannedSweep(target.chain, asset_code, treasury, amount,
                                           (SweepInput(address, amount, key_id),),
                                           gas * fees.max_fee_per_gas, gas))
                continue
            gas = chain.estimate_gas(target.chain, sender=address, to=token,
                                     data=erc20_transfer_data(recipient, units))
            top_up = gas_top_up(chain.balance(native[0], address), gas, fees.max_fee_per_gas)
            if top_up and not target.gas_source:
                skipped.append(Skipped(address, units, "its coin balance cannot pay the "
                                       f"transfer's gas; set {target.setting}.gas_source"))
                continue
            sweeps.append(PlannedSweep(target.chain, asset_code, treasury, units,
                                       (SweepInput(address, units, key_id),),
                                       gas * fees.max_fee_per_gas, gas, top_up))
        return SweepPlan(target.chain, asset_code, treasury, tuple(sweeps), tuple(skipped),
                         evm_fees=fees, gas_source=target.gas_source, fee_asset=native[0])

    # -- custody records -----------------------------------------------------------------------

    def _spendable(self, chain: Chain) -> Iterator[KeyAccount]:
        if not self._accounts:
            self._accounts = list(self.custody.accounts())
        for account in self._accounts:
            if account.chain is not chain:
                continue
            if chain is Chain.BITCOIN and account.network is not self.network:
                continue
            keychain = self.custody.keychain(account.keychain_id)
            if keychain is not None and keychain.can_spend:
                yield account

    def _used_evm_addresses(self) -> Iterator[tuple[str, str]]:
        for account in self._spendable(Chain.EVM):
            offset = 0
            while True:
                page = self.custody.addresses(account.id, EXTERNAL_BRANCH, used=True,
                                              offset=offset, limit=_PAGE)
                for issued in page:
                    yield issued.address, f"{account.id}/{issued.branch}/{issued.index}"
                if len(page) < _PAGE:
                    break
                offset += _PAGE

    def _treasury(self, target: SweepTarget, asset: str) -> str:
        text = target.treasury.get(asset)
        if not text:
            raise ConfigError(f"no treasury address for {asset}: set "
                              f"{target.setting}.treasury_address")
        try:
            if target.family == "bitcoin":
                return parse_address(text, self.network, field="treasury").text
            return parse_evm_address(text, field="treasury").text
        except DpgError as exc:
            raise ConfigError(f"{target.setting}: the treasury address of {asset} is not "
                              f"usable: {exc.message}") from exc


def _bitcoin_sweep(
    chain: str, asset: str, treasury: str, script: bytes, utxos: Sequence[Utxo],
    fee_rate: FeeRate, network: Network,
) -> PlannedSweep | Skipped:
    total = sum(u.value_sats for u in utxos)
    fee = fee_rate.fee(estimate_vsize([u.kind for u in utxos], [script]))
    if total - fee < max(dust_threshold(script), fee):
        return Skipped(f"{len(utxos)} outputs", total, "their value does not cover the fee "
                       "of sweeping them with something left")
    inputs = tuple(SweepInput(_address(u, network), u.value_sats, u.key_id,
                              f"{u.txid}:{u.vout}") for u in utxos)
    return PlannedSweep(chain, asset, treasury, total - fee, inputs, fee, utxos=tuple(utxos))


def _address(utxo: Utxo, network: Network) -> str:
    found = address_from_script(utxo.script_pubkey, network)
    if found is None:
        raise NotFoundError(f"output {utxo.txid}:{utxo.vout} pays no address")
    return found


def _setting(target: SweepTarget | None, chain: str | None) -> str:
    if target is not None:
        return target.setting
    return "chains.bitcoin" if chain == "bitcoin" else f"chains.evm.{chain}"
