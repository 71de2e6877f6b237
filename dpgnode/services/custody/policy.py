"""Who may move money and within which limits: operators and the spend policy.

Operators (``dpg operator add``) are the identities that request and approve payouts. Each
gets a random 256-bit token, shown once; the node stores only its SHA-256 digest, and a
command proves the operator by presenting the token (``DPG_OPERATOR_TOKEN`` or a file).

The spend policy comes from the configuration (``[custody.payout_policies.<ASSET>]``) and is
turned into the domain's :class:`~dpgnode.domain.custody.policy.SpendPolicy` here: amounts
parsed exactly in the asset's units, allow-list entries normalised the way destinations are
(bech32 lower case, EIP-55), so comparing them is comparing strings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator, check_operator_name
from dpgnode.domain.custody.policy import AssetPolicy, SpendPolicy
from dpgnode.domain.money import Asset, AssetKind, AssetRegistry, parse_units
from dpgnode.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import OperatorStore
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.custody.audit import AuditService

TOKEN_PREFIX = "dpgop_"  # noqa: S105 - a prefix that makes leaked tokens greppable


@dataclass(frozen=True, slots=True)
class IssuedOperator:
    """A new operator and its token: show ``token`` once, it is never stored."""

    operator: Operator
    token: str

    def __repr__(self) -> str:
        return f"IssuedOperator(operator={self.operator!r}, token=<hidden>)"


def hash_token(token: str) -> str:
    """SHA-256 digest under which an operator token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class OperatorService:
    """Registers operators and recognises them by their token."""

    def __init__(
        self, store: OperatorStore, writer: Writer, ids: IdGenerator, clock: Clock,
        audit: AuditService,
    ) -> None:
        self._store = store
        self._writer = writer
        self._ids = ids
        self._clock = clock
        self._audit = audit

    def add(self, name: str, *, actor: str = "cli") -> IssuedOperator:
        """Register ``name`` and issue its token (``ConflictError`` if the name is taken)."""
        check_operator_name(name)
        token = TOKEN_PREFIX + secrets.token_hex(32)
        operator = Operator(
            id=self._ids.new("op"), name=name, token_hash=hash_token(token),
            created_at=self._clock.now(),
        )

        def command(tx: Tx) -> Operator:
            if self._store.operator_in(tx, name=name) is not None:
                raise ConflictError(f"an operator named {name} exists", details={"field": "name"})
            self._store.save_operator(tx, operator)
            self._audit.append(tx, AuditEvent(
                actor, AuditAction.OPERATOR_ADDED, operator.id, AuditResult.OK,
                details={"name": name},
            ))
            return operator

        return IssuedOperator(self._writer.run(command), token)

    def disable(self, name: str, *, actor: str = "cli") -> Operator:
        """Disable an operator: their token stops working; disabling twice is a no-op."""
        at = self._clock.now()

        def command(tx: Tx) -> Operator:
            operator = self._store.operator_in(tx, name=name)
            if operator is None:
                raise NotFoundError(f"no operator {name[:64]}", details={"field": "name"})
            if not operator.active:
                return operator
            disabled = replace(operator, disabled_at=at)
            self._store.save_operator(tx, disabled)
            self._audit.append(tx, AuditEvent(
                actor, AuditAction.OPERATOR_DISABLED, operator.id, AuditResult.OK,
                details={"name": name},
            ))
            return disabled

        return self._writer.run(command)

    def authenticate(self, token: str) -> Operator:
        """The active operator this token belongs to, else ``AuthenticationError``."""
        token = token.strip() if isinstance(token, str) else ""
        operator = self._store.operator_by_token_hash(hash_token(token)) if token else None
        # The lookup is by digest; compare again in constant time for good measure.
        if (
            operator is None
            or not hmac.compare_digest(operator.token_hash, hash_token(token))
            or not operator.active
        ):
            raise AuthenticationError("invalid or disabled operator token")
        return operator

    def operators(self) -> list[Operator]:
        """Every operator, oldest first (tokens are never stored, so never shown)."""
        return list(self._store.operators())


@dataclass(frozen=True, slots=True)
class AssetPolicyInput:
    """One asset's policy as configured: amounts are decimal strings in the asset's units."""

    max_per_transaction: str | None = None
    max_per_day: str | None = None
    max_payouts_per_hour: int | None = None
    approval_threshold: str | None = None
    approvals_required: int = 1
    allowed_destinations: tuple[str, ...] = ()
    require_allowlist: bool = True


def build_spend_policy(
    configured: Mapping[str, AssetPolicyInput], assets: AssetRegistry, network: Network
) -> SpendPolicy:
    """The domain policy from the configuration; ``ValidationError`` names the bad field."""
    policies: dict[str, AssetPolicy] = {}
    for code, given in configured.items():
        where = f"custody.payout_policies.{code}"
        asset = assets.require(code, field=where)
        policies[code] = AssetPolicy(
            asset=code,
            max_per_transaction=_units(given, "max_per_transaction", asset, where),
            max_per_day=_units(given, "max_per_day", asset, where),
            max_payouts_per_hour=given.max_payouts_per_hour,
            approval_threshold=_units(given, "approval_threshold", asset, where),
            approvals_required=given.approvals_required,
            allowed_destinations=frozenset(
                normalize_destination(d, asset, network, field=f"{where}.allowed_destinations")
                for d in given.allowed_destinations
            ),
            require_allowlist=given.require_allowlist,
        )
    return SpendPolicy(policies)


def _units(given: AssetPolicyInput, name: str, asset: Asset, where: str) -> int | None:
    text: str | None = getattr(given, name)
    return None if text is None else parse_units(text, asset.decimals, field=f"{where}.{name}")


def is_bitcoin(asset: Asset) -> bool:
    """Whether ``asset`` moves on the Bitcoin chain (else on an EVM chain)."""
    return asset.network == "bitcoin"


def normalize_destination(
    text: str, asset: Asset, network: Network, *, field: str = "destination"
) -> str:
    """The canonical form of a destination for ``asset`` (the form allow-lists hold).

    Raises:
        ValidationError: the address is malformed or of another network, or the asset
            cannot be paid out on chain (fiat, or an asset without a network).
    """
    if asset.kind is AssetKind.FIAT or not asset.network:
        raise ValidationError(f"{asset.code} cannot be paid out on chain", field="asset")
    if is_bitcoin(asset):
        return parse_address(text, network, field=field).text
    return parse_evm_address(text.strip() if isinstance(text, str) else text, field=field).text


def operators_named(operators: Iterable[Operator]) -> dict[str, str]:
    """Operator id -> name, for showing approvals and audit records."""
    return {op.id: op.name for op in operators}
