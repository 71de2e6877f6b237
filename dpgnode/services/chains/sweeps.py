"""Sweeping deposits to the treasury: sign, record, broadcast (``dpg chain sweep``).

Runs only where a signer is (the CLI process, R22): the API and the watchers never sign.
Each transaction is recorded as a sweep (``signed``) with its audit record and event in one
writer command *before* it is broadcast, so the watcher knows it as the node's own by the
time a block can carry it (its outputs are never taken for deposits), and a crash after
signing leaves a record, not an unknown transaction. The broadcast's outcome is recorded
next: ``broadcast``, or ``failed`` when the node refused it. From there the chain watcher
follows it like a payout (:mod:`.outgoing`): mined, confirmed with its fee in the ledger, or
failed when a conflicting transaction is final.

Order within one run (see :mod:`.sweep_plan` for what each plan holds):

1. Bitcoin: one transaction per planned batch of outputs, signed input by input with the
   HD key of the address each output pays;
2. EVM tokens: every gas top-up first (from the chain's gas hot key, nonces reserved one by
   one), then, once the top-ups are mined, the token transfers from the deposit addresses;
   a deposit whose top-up was refused or not mined in time is left for the next run;
3. EVM coins: after a chain's token sweeps of the same run are mined (they spend the
   addresses' coin as gas), balances are read again and each address sends what is left
   less its transfer's gas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dpgnode.domain.chains.sweeps import Sweep, SweepInput, SweepKind, SweepStatus
from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.btc_spend import Payment, build_spend
from dpgnode.domain.custody.evm import evm_address_from_public_key, parse_evm_address
from dpgnode.domain.custody.evm_tx import erc20_transfer, native_transfer
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import (
    ConfigError,
    DpgError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import KeychainStore
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.outgoing import OutgoingStore, SweptFrom
from dpgnode.ports.signer import HotKeyRef, KeyRef, Signer
from dpgnode.ports.sweeps import EvmFees, SweepChain
from dpgnode.ports.uow import Writer
from dpgnode.services.chains.sweep_plan import (
    NATIVE_TRANSFER_GAS,
    PlannedSweep,
    Skipped,
    SweepPlan,
    SweepPlanner,
)
from dpgnode.services.chains.sweep_records import SweepRecords
from dpgnode.services.custody.audit import AuditService
from dpgnode.services.custody.payout_tx import PayoutSource, resolve_source
from dpgnode.services.custody.tx_signing import SignedTx, sign_bitcoin, sign_evm

_REASON_CHARS = 300
_Step = Callable[..., "Sweep | None"]


class _Lease(Protocol):
    def commit(self) -> None: ...

    def release(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a run signed and broadcast, and what it left for later (with the reasons)."""

    batch: str
    sweeps: tuple[Sweep, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass
class _Run:
    batch: str
    operator: Operator
    signer: Signer
    chain: SweepChain
    sweeps: list[Sweep] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pending_tokens: dict[str, list[str]] = field(default_factory=dict)
    """Txids of token sweeps broadcast this run, by chain (native sweeps wait for them)."""


class SweepService:
    """Plans and performs sweeps (see the module docstring)."""

    def __init__(
        self, planner: SweepPlanner, store: OutgoingStore, keychains: KeychainStore,
        writer: Writer, ids: IdGenerator, clock: Clock, audit: AuditService,
        assets: AssetRegistry, *, wait_seconds: float = 300.0,
    ) -> None:
        self.planner = planner
        self._store = store
        self._keychains = keychains
        self._writer = writer
        self._ids = ids
        self._clock = clock
        self._records = SweepRecords(store, audit, clock)
        self._assets = assets
        self.wait_seconds = wait_seconds

    def plan(self, selector: str | None, chain: SweepChain) -> list[SweepPlan]:
        """What sweeping ``selector`` (a chain, an asset, or everything) would do now.

        Sweeping a whole chain leaves out its tokens that have no contract configured (their
        plan says so); naming such a token is a ``ConfigError``.
        """
        plans: list[SweepPlan] = []
        for target, asset in self.planner.selected(selector):
            try:
                plans.append(self.planner.plan(target, asset, chain))
            except ConfigError as exc:
                if selector == asset or self._assets.require(asset).kind is not AssetKind.TOKEN:
                    raise
                plans.append(SweepPlan(target.chain, asset, target.treasury[asset],
                                       skipped=(Skipped("", 0, exc.message),)))
        return plans

    def sweep(
        self, plans: Sequence[SweepPlan], *, operator: Operator, signer: Signer,
        chain: SweepChain,
    ) -> SweepReport:
        """Sign, record and broadcast every planned sweep, in the module's order."""
        run = _Run(self._ids.new("swb"), operator, signer, chain)
        for plan in plans:
            asset = self._assets.require(plan.asset)
            if not plan.sweeps and (asset.kind is AssetKind.TOKEN
                                    or not run.pending_tokens.get(plan.chain)):
                continue
            if self.planner.targets[plan.chain].family == "bitcoin":
                for planned in plan.sweeps:
                    self._guarded(run, planned, self._bitcoin, plan)
            elif asset.kind is AssetKind.TOKEN:
                self._tokens(run, plan)
            else:
                self._coins(run, plan)
        return SweepReport(run.batch, tuple(run.sweeps), tuple(run.problems))

    # -- reads ---------------------------------------------------------------------------------

    def sweep_record(self, sweep_id: str) -> Sweep:
        """One sweep (``NotFoundError`` when unknown)."""
        found = self._store.sweep(sweep_id)
        if found is None:
            raise NotFoundError(f"no sweep {sweep_id[:64]}", details={"field": "sweep"})
        return found

    def sweeps(self, *, chain: str | None = None, batch: str | None = None,
               status: SweepStatus | None = None, limit: int = 100) -> list[Sweep]:
        """Sweeps and top-ups, newest first (``limit`` 1..1000)."""
        return list(self._store.sweeps(chain=chain, batch=batch, status=status,
                                       limit=max(1, min(limit, 1000))))

    def swept_from(self, address: str) -> list[SweptFrom]:
        """What sweeps took from ``address`` (reconciliation subtracts the live ones)."""
        return list(self._store.swept_from(address))

    def topped_up(self, address: str) -> list[Sweep]:
        """Gas top-ups sent to ``address``."""
        return list(self._store.topped_up(address))

    # -- Bitcoin -------------------------------------------------------------------------------

    def _bitcoin(self, run: _Run, planned: PlannedSweep, plan: SweepPlan) -> Sweep:
        if plan.fee_rate is None:
            raise IntegrityError("a Bitcoin sweep plan without a fee rate")
        destination = parse_address(planned.to_address, self.planner.network).script_pubkey
        spend = build_spend(planned.utxos, [Payment(destination, planned.units)],
                            change_script=destination, fee_rate=plan.fee_rate)
        if spend.change_index is not None or spend.fee_sats != planned.fee:
            raise IntegrityError("the Bitcoin sweep does not come out as planned")
        refs = {u.key_id: self._hd_ref(u.key_id, plan.asset) for u in planned.utxos}
        return self._send(run, planned, SweepKind.SWEEP, sign_bitcoin(run.signer, spend, refs),
                          fee=spend.fee_sats)

    # -- EVM -----------------------------------------------------------------------------------

    def _tokens(self, run: _Run, plan: SweepPlan) -> None:
        fees = _fees(plan)
        ready: list[PlannedSweep] = [p for p in plan.sweeps if not p.top_up]
        topped: dict[str, PlannedSweep] = {}
        for planned in (p for p in plan.sweeps if p.top_up):
            sweep = self._guarded(run, planned, self._top_up, plan)
            if sweep is not None and sweep.status is SweepStatus.BROADCAST:
                topped[sweep.txid] = planned
        if topped:
            mined = run.chain.wait_mined(plan.chain, list(topped), self.wait_seconds)
            for txid, planned in topped.items():
                if txid in mined:
                    ready.append(planned)
                else:
                    run.problems.append(
                        f"{plan.asset} at {planned.inputs[0].address}: its gas top-up {txid} "
                        f"was not mined within {self.wait_seconds:.0f} s; sweep again later")
        contract = parse_evm_address(run.chain.token_contract(plan.asset), field="token").raw
        for planned in ready:
            sweep = self._guarded(run, planned, self._token, plan, contract, fees)
            if sweep is not None and sweep.status is SweepStatus.BROADCAST:
                run.pending_tokens.setdefault(plan.chain, []).append(sweep.txid)

    def _coins(self, run: _Run, plan: SweepPlan) -> None:
        pending = run.pending_tokens.pop(plan.chain, [])
        if pending:  # their gas came from these addresses' coin: read balances again
            run.chain.wait_mined(plan.chain, pending, self.wait_seconds)
            target = self.planner.targets[plan.chain]
            plan = self.planner.plan(target, plan.asset, run.chain)
        for planned in plan.sweeps:
            self._guarded(run, planned, self._coin, plan)

    def _top_up(self, run: _Run, planned: PlannedSweep, plan: SweepPlan) -> Sweep | None:
        fees = _fees(plan)
        ref = HotKeyRef(plan.gas_source)
        sender = evm_address_from_public_key(run.signer.public_key(ref))
        deposit = planned.inputs[0].address
        lease = run.chain.reserve_nonce(plan.chain, sender)
        try:
            tx = native_transfer(
                chain_id=fees.chain_id, nonce=lease.nonce,
                to=parse_evm_address(deposit, field="address").raw, value_wei=planned.top_up,
                max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                max_fee_per_gas=fees.max_fee_per_gas, gas=NATIVE_TRANSFER_GAS)
            signed = sign_evm(run.signer, tx, ref, sender=sender)
        except BaseException:
            lease.release()
            raise
        native = self._native(plan.chain)
        top_up = PlannedSweep(plan.chain, native, deposit, planned.top_up,
                              (SweepInput(sender, planned.top_up, plan.gas_source),),
                              NATIVE_TRANSFER_GAS * fees.max_fee_per_gas, NATIVE_TRANSFER_GAS)
        return self._send(run, top_up, SweepKind.TOP_UP, signed, lease=lease)

    def _token(self, run: _Run, planned: PlannedSweep, plan: SweepPlan, contract: bytes,
               fees: EvmFees) -> Sweep | None:
        deposit = planned.inputs[0]
        lease = run.chain.reserve_nonce(plan.chain, deposit.address)
        try:
            tx = erc20_transfer(
                chain_id=fees.chain_id, nonce=lease.nonce, token=contract,
                recipient=parse_evm_address(planned.to_address, field="treasury").raw,
                units=planned.units, max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                max_fee_per_gas=fees.max_fee_per_gas, gas=planned.gas)
            signed = sign_evm(run.signer, tx, self._hd_ref(deposit.key_id, plan.asset),
                              sender=deposit.address)
        except BaseException:
            lease.release()
            raise
        return self._send(run, planned, SweepKind.SWEEP, signed, lease=lease)

    def _coin(self, run: _Run, planned: PlannedSweep, plan: SweepPlan) -> Sweep | None:
        fees = _fees(plan)
        deposit = planned.inputs[0]
        lease = run.chain.reserve_nonce(plan.chain, deposit.address)
        try:
            tx = native_transfer(
                chain_id=fees.chain_id, nonce=lease.nonce,
                to=parse_evm_address(planned.to_address, field="treasury").raw,
                value_wei=planned.units, max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                max_fee_per_gas=fees.max_fee_per_gas, gas=planned.gas)
            signed = sign_evm(run.signer, tx, self._hd_ref(deposit.key_id, plan.asset),
                              sender=deposit.address)
        except BaseException:
            lease.release()
            raise
        return self._send(run, planned, SweepKind.SWEEP, signed, lease=lease)

    # -- signing, recording, broadcasting ------------------------------------------------------

    def _guarded(self, run: _Run, planned: PlannedSweep, step: _Step, plan: SweepPlan,
                 *args: object) -> Sweep | None:
        """Run one sweep step; a refusal of this one address does not stop the others."""
        try:
            return step(run, planned, plan, *args)
        except (ValidationError, DpgError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            where = ", ".join(sorted({i.address for i in planned.inputs}))[:120]
            run.problems.append(f"{plan.asset} from {where}: {exc.message}"[:_REASON_CHARS])
            return None

    def _send(self, run: _Run, planned: PlannedSweep, kind: SweepKind, signed: SignedTx, *,
              fee: int | None = None, lease: _Lease | None = None) -> Sweep:
        now = self._clock.now()
        sweep = Sweep(
            id=self._ids.new("sw"), batch=run.batch, chain=planned.chain, kind=kind,
            asset=planned.asset, to_address=planned.to_address, units=planned.units,
            inputs=planned.inputs, fee_asset=self._native(planned.chain), txid=signed.txid,
            raw_tx=signed.raw_hex, status=SweepStatus.SIGNED, created_at=now, updated_at=now,
            spends=signed.spends, fee_units=fee,
        )
        try:
            self._writer.run(self._records.signed(sweep, run.operator))
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        try:
            result = run.chain.broadcast(sweep.asset, sweep.raw_tx, sweep.txid)
        except DpgError as exc:  # the outcome is unknown: keep the nonce, keep the record
            if lease is not None:
                lease.commit()
            reason = f"{exc.code}: {exc.message}"[:_REASON_CHARS]
            self._writer.run(self._records.refused(sweep.id, run.operator, reason,
                                                   final=False))
            run.problems.append(f"sweep {sweep.id} ({sweep.txid}) is signed but its broadcast "
                                f"failed: {reason}")
            run.sweeps.append(sweep)
            return sweep
        if lease is not None:
            (lease.commit if result.accepted else lease.release)()
        if result.accepted:
            done = self._writer.run(self._records.accepted(sweep.id, run.operator))
        else:
            reason = (result.reason or "refused without a reason")[:_REASON_CHARS]
            done = self._writer.run(self._records.refused(sweep.id, run.operator, reason,
                                                           final=True))
            run.problems.append(f"sweep {sweep.id} refused by the node: {reason}")
        run.sweeps.append(done)
        return done

    # -- keys ----------------------------------------------------------------------------------

    def _hd_ref(self, key_id: str, asset_code: str) -> KeyRef:
        """The signer key of an issued address: ``<account id>/<branch>/<index>``."""
        account_id, branch, index = _key_parts(key_id)
        source: PayoutSource = resolve_source(account_id, self._keychains,
                                              self._assets.require(asset_code))
        return source.hd_ref(branch, index)

    def _native(self, chain: str) -> str:
        for code, asset in self._assets.items():
            if asset.network == chain and asset.kind is AssetKind.CRYPTO:
                return code
        raise ValidationError(f"no coin asset moves on {chain}", field="chain")


def _key_parts(key_id: str) -> tuple[str, int, int]:
    parts = key_id.split("/")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 10 for p in parts[1:]):
        raise ValidationError(f"not an issued address's key: {key_id[:80]!r}", field="key_id")
    return parts[0], int(parts[1]), int(parts[2])


def _fees(plan: SweepPlan) -> EvmFees:
    if plan.evm_fees is None:
        raise IntegrityError(f"the {plan.asset} sweep plan has no EVM fees")
    return plan.evm_fees
