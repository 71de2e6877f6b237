"""The blockchain seed endpoints (``/api/v1/blockchain``).

Permissions, narrowest first: ``dpg.blockchain.view`` reads balances, transactions, fee
estimates and incidents; ``dpg.blockchain.addresses`` issues addresses; ``dpg.blockchain.send``
requests payouts. A send also needs an operator token (``X-Operator-Token``): the spend
policy's four-eyes rule names operators, not API keys. The API holds no signer (R22): a send
answers 202 with the payout waiting for an approval given where the signer runs (``dpg payout
approve``), whatever the policy's threshold. Every POST takes an ``Idempotency-Key``.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.blockchain import (
    AddressBalanceData,
    AddressData,
    FeeEstimateData,
    GenerateAddressRequest,
    IncidentData,
    PaymentData,
    SendData,
    SendRequest,
    SentPayoutData,
    TransactionData,
)
from dpgnode.domain.access import BLOCKCHAIN_ADDRESSES, BLOCKCHAIN_SEND, BLOCKCHAIN_VIEW
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.ledger import AccountRef
from dpgnode.domain.money import parse_units
from dpgnode.errors import AuthenticationError, NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.services.chains.blockchain import BlockchainService
from dpgnode.services.custody.payout_records import PayoutRequest
from dpgnode.services.idempotency import is_valid_key

_TAGS = ["Blockchain"]
_MAX_KEY = 150
"""Room for the ``api:<operator id>:`` scope in a payout's 200-character request key."""
OPERATOR_TOKEN_HEADER = "X-Operator-Token"  # noqa: S105 - a header's name, not a token
Address = Annotated[str, PathParameter(name="address", min_length=1, max_length=128)]
Txid = Annotated[str, PathParameter(name="txid", min_length=1, max_length=80)]
IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", description="Retry-safe key (Stripe semantics)"),
]
OperatorToken = Annotated[
    str | None,
    HeaderParameter(
        name=OPERATOR_TOKEN_HEADER,
        description="The requesting operator's token (`dpg operator add` issues it); never "
                    "logged",
    ),
]


def _service(node: Node) -> BlockchainService:
    if node.chains.blockchain is None:  # pragma: no cover - build_node always wires it
        raise NotFoundError("this node serves no blockchain API", details={"field": "chain"})
    return node.chains.blockchain


def _operator(node: Node, token: str | None) -> Operator:
    if token is None or not token.strip():
        raise AuthenticationError(
            f"an operator token is required: send the header {OPERATOR_TOKEN_HEADER} "
            "(`dpg operator add NAME` issues one)"
        )
    return node.custody.operators.authenticate(token.strip())


@post(
    "/blockchain/wallet/generate", opt=requires(BLOCKCHAIN_ADDRESSES), sync_to_thread=True,
    status_code=201, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def generate_address(
    node: NamedDependency[Node], data: JSONBody[GenerateAddressRequest]
) -> AddressData:
    """Issue the next receiving address of a key account (watched from now on).

    With an ``Idempotency-Key`` a retry returns the same address instead of a new one.
    """
    issued = _service(node).generate(
        data.account_id[:64], owner=data.owner or "", reference=data.reference or "")
    account = node.custody.store.account(issued.address.account_id)
    if account is None:  # pragma: no cover - issuing checked it in the same transaction
        raise NotFoundError("the key account vanished", details={"field": "accountId"})
    return AddressData.of(issued.address, account, gap_exceeded=issued.gap_exceeded)


@get(
    "/blockchain/wallet/{address:str}/balance", opt=requires(BLOCKCHAIN_VIEW),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def address_balance(node: NamedDependency[Node], address: Address) -> AddressBalanceData:
    """What an issued address holds per chain and asset: the ledger's view and the chain's.

    Both are taken at the settled height (the newest block the confirmation policy
    credited); payments on their way are listed as ``pending``. A chain node that cannot be
    read gives ``onChain: null`` with the reason in ``error``.
    """
    balance = _service(node).address_balance(address)
    return AddressBalanceData.of(balance, node.assets)


@post(
    "/blockchain/transaction/send", opt=requires(BLOCKCHAIN_SEND), sync_to_thread=True,
    status_code=202, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def send_transaction(
    node: NamedDependency[Node],
    data: JSONBody[SendRequest],
    idempotency_key: IdempotencyHeader = None,
    operator_token: OperatorToken = None,
) -> Response[SendData]:
    """Request a payout: policy, hold, then 202 with the payout waiting for approval.

    Nothing is signed here: an operator other than the requester approves it where the
    signer runs (``dpg payout approve``). Refused by policy: 422 ``policy_denied`` (nothing
    held); not enough funds on the debit account: 422 ``insufficient_funds``.
    """
    operator = _operator(node, operator_token)
    key = data.idempotency_key or idempotency_key
    if key is None or not is_valid_key(key) or len(key) > _MAX_KEY:
        raise ValidationError(
            "an idempotency key (1-150 printable ASCII) is required: send idempotencyKey "
            "or the Idempotency-Key header", field="idempotencyKey",
        )
    asset = node.assets.require(data.asset, field="asset")
    if not asset.network:
        raise ValidationError(f"{asset.code} does not move on a chain", field="asset")
    units = parse_units(data.amount, asset.decimals, field="amount")
    debit = AccountRef.parse(data.debit_account, field="debitAccount")
    request = PayoutRequest(
        asset=asset.code, units=units, destination=data.destination, debit_account=debit,
        source=data.source, request_key=f"api:{operator.id}:{key}", memo=(data.memo or "")[:500],
    )
    payout = _service(node).send(operator, request)
    return Response(SendData.of(payout, node.assets), status_code=202)


@get(
    "/blockchain/transaction/{txid:str}", opt=requires(BLOCKCHAIN_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404, 422),
)
def get_transaction(node: NamedDependency[Node], txid: Txid) -> TransactionData:
    """What the node knows of a transaction: payments to its addresses, its own payouts.

    Payments come with their confirmations under the watcher's height.
    """
    view = _service(node).transaction(txid)
    return TransactionData(
        txid=view.txid,
        payments=[PaymentData.of(p, node.assets) for p in view.payments],
        payouts=[SentPayoutData(
            payout_id=p.id, status=str(p.status), asset=p.asset,
            amount=node.assets.format(p.units, p.asset), destination=p.destination,
            txid=p.txid,
        ) for p in view.payouts],
    )


@get(
    "/blockchain/gas/estimate", opt=requires(BLOCKCHAIN_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404, 422, 503),
)
def gas_estimate(
    node: NamedDependency[Node],
    chain: Annotated[str, QueryParameter(
        min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="The chain, as `[chains]` names it: `bitcoin`, `ethereum`, `polygon`…",
    )],
) -> FeeEstimateData:
    """Fees to pay now, slow to fast.

    EIP-1559 levels from ``eth_feeHistory`` on EVM chains; ``estimatesmartfee`` rates on
    Bitcoin (never below the node's mempool minimum).
    """
    return FeeEstimateData.of(_service(node).estimate_fees(chain))


@get(
    "/blockchain/incidents", opt=requires(BLOCKCHAIN_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def incidents(
    node: NamedDependency[Node],
    chain: Annotated[str | None, QueryParameter(max_length=40)] = None,
    include_resolved: Annotated[bool, QueryParameter(
        name="all", description="Resolved incidents too")] = False,
) -> list[IncidentData]:
    """Chain incidents, newest first.

    Pauses (deep reorganisations, lost history) and reconciliation mismatches (with the
    addresses and amounts that disagree).
    """
    found = node.chains.store.incidents(chain, open_only=not include_resolved)
    return [IncidentData.of(i) for i in found[:500]]


ROUTES = [generate_address, address_balance, send_transaction, get_transaction, gas_estimate,
          incidents]
