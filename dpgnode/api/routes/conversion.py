"""Conversion for trading users (``/api/v1/conversion``): rates, quotes, convert, limits.

A user is the ledger owner ``user:<id>`` an API key is bound to (``dpg.trading.trade:<id>``,
see :mod:`dpgnode.domain.access`). Users quote and convert with ``dpg.trading.trade`` and
read rates, their quotes, conversions and limits with ``dpg.trading.view``; operators set
limits, and read any user's, with ``dpg.conversion.limits.manage``.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from dpgnode.api.errors import PROBLEM_JSON, READ_ERRORS, WRITE_ERRORS, Problem, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.conversion import (
    ConversionData,
    ConvertRequestBody,
    LimitData,
    LimitsData,
    LimitStatusData,
    QuoteData,
    QuoteRequestBody,
    RatesData,
    SetLimitBody,
)
from dpgnode.domain.access import (
    CONVERSION_LIMITS_MANAGE,
    TRADING_TRADE,
    TRADING_VIEW,
    ApiKey,
)
from dpgnode.domain.conversion.limits import DEFAULT_OWNER, LimitKind, Period
from dpgnode.domain.conversion.quote import Route
from dpgnode.errors import PermissionDeniedError, ValidationError
from dpgnode.node import Node
from dpgnode.services.conversion import QuoteRequest, check_owner

_TAGS = ["Conversion"]
_UNAVAILABLE = {
    503: ResponseSpec(
        data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
        description="No fresh rate for the pair (never priced from a default); retry later",
    )
}


def _user(api_key: ApiKey, permission: str) -> str:
    """The trading user the key acts for with ``permission``; else 403.

    The permission must come from the grant bound to the user: a key holding
    ``dpg.trading.view:alice`` and an unbound ``dpg.trading.trade`` (market data) may read
    alice's conversions but not convert her money.
    """
    user = api_key.trading_user
    if user is None:
        raise PermissionDeniedError(
            "this API key is not bound to a trading user: create it with "
            f"{TRADING_TRADE}:<userId>",
            details={"permission": permission},
        )
    acting = api_key.acting_user(permission)
    if acting is None:
        bound = next(g for g in api_key.permissions if g.user_id is not None)
        raise PermissionDeniedError(
            f"this API key acts for user {user} only with {bound}: "
            f"this needs {permission}:{user}",
            details={"permission": permission},
        )
    return acting


@get(
    "/conversion/rates", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses={**problems(*READ_ERRORS, 422), **_UNAVAILABLE},
)
def rates(
    node: NamedDependency[Node],
    base: Annotated[str | None, QueryParameter(name="from", description="One asset")] = None,
    quote: Annotated[
        str | None, QueryParameter(name="to", description="Default: the reference currency")
    ] = None,
) -> RatesData:
    """Aggregated rates (median of the fresh sources) of every asset, or of one, in ``to``."""
    service = node.conversion
    target = quote or service.policy.reference_asset
    if target is None:
        raise ValidationError("name the asset to price in with `to`", field="to")
    return RatesData.of(service.board(target, [base] if base is not None else None))


@post(
    "/conversion/quotes", opt=requires(TRADING_TRADE), sync_to_thread=True, tags=_TAGS,
    status_code=201, responses={**problems(*WRITE_ERRORS), **_UNAVAILABLE},
)
def create_quote(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey], data: JSONBody[QuoteRequestBody]
) -> QuoteData:
    """Quote a conversion: rate, spread, fee and both amounts, locked until ``expiresTime``."""
    quote = node.conversion.quote(
        QuoteRequest(
            owner_id=_user(api_key, TRADING_TRADE), from_asset=data.from_asset,
            to_asset=data.to_asset,
            from_amount=data.from_amount, to_amount=data.to_amount,
            route=Route(data.route or Route.INVENTORY),
        )
    )
    return QuoteData.of(quote, node.clock.now())


@get(
    "/conversion/quotes/{quoteId:str}", opt=requires(TRADING_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def get_quote(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    quote_id: Annotated[str, PathParameter(name="quoteId")],
) -> QuoteData:
    """One of the user's quotes."""
    quote = node.conversion.quote_of(_user(api_key, TRADING_VIEW), quote_id)
    return QuoteData.of(quote, node.clock.now())


@post(
    "/conversion/convert", opt=requires(TRADING_TRADE), sync_to_thread=True, tags=_TAGS,
    responses=problems(*WRITE_ERRORS, 404),
)
def convert(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    data: JSONBody[ConvertRequestBody],
) -> Response[ConversionData]:
    """Accept a quote before it expires: 201 when executed now, 200 when it already was.

    Executed as one journal entry against the operator's inventory; a quote executes once,
    however often it is accepted. Expired: 409 ``quote_expired``; over a limit: 422
    ``policy_denied``; short balance or inventory: 422 ``insufficient_funds``.
    """
    executed = node.conversion.execute(_user(api_key, TRADING_TRADE), data.quote_id)
    return Response(
        ConversionData.of(executed.conversion), status_code=201 if executed.created else 200
    )


@get(
    "/conversion/conversions/{conversionId:str}", opt=requires(TRADING_VIEW),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def get_conversion(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    conversion_id: Annotated[str, PathParameter(name="conversionId")],
) -> ConversionData:
    """One of the user's conversions."""
    owner = _user(api_key, TRADING_VIEW)
    return ConversionData.of(node.conversion.conversion_of(owner, conversion_id))


@get(
    "/conversion/limits", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS, 422),
)
def get_limits(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    user_id: Annotated[
        str | None,
        QueryParameter(name="userId", description=f"Any user's (needs {CONVERSION_LIMITS_MANAGE})"),
    ] = None,
) -> LimitsData:
    """The limits in force for the user, with what is used and what remains this period."""
    if user_id is None:
        owner = _user(api_key, TRADING_VIEW)
    elif api_key.allows(CONVERSION_LIMITS_MANAGE):
        owner = check_owner(user_id)
    else:
        raise PermissionDeniedError(
            f"reading another user's limits needs {CONVERSION_LIMITS_MANAGE}",
            details={"permission": CONVERSION_LIMITS_MANAGE},
        )
    statuses = node.conversion.limits.status(owner)
    return LimitsData(
        user_id=owner, limits=[LimitStatusData.of(s, node.assets) for s in statuses]
    )


@put(
    "/conversion/limits", opt=requires(CONVERSION_LIMITS_MANAGE), sync_to_thread=True,
    tags=_TAGS, responses=problems(*WRITE_ERRORS),
)
def set_limit(node: NamedDependency[Node], data: JSONBody[SetLimitBody]) -> LimitData:
    """Set a user's limit (or, with ``userId`` null, every user's default); null removes it."""
    kind, period = LimitKind(data.kind), Period(data.period)
    limit = node.conversion.limits.set(data.user_id, kind, data.asset, period, data.limit)
    return LimitData(
        user_id=data.user_id or DEFAULT_OWNER, kind=str(kind), asset=data.asset,
        period=str(period),
        limit=None if limit is None else node.assets.format(limit.units, limit.asset),
    )


ROUTES = [rates, create_quote, get_quote, convert, get_conversion, get_limits, set_limit]
