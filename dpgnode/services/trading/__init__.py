"""The exchange's trading service: order books per pair, settled in the ledger.

See :mod:`dpgnode.services.trading.service` for the use cases and
:mod:`dpgnode.services.trading.commands` for what each write does.
"""

from dpgnode.services.trading.commands import NewOrder, Placed
from dpgnode.services.trading.feed import FeedMessage, FeedOverflowError, Subscription, TradingFeed
from dpgnode.services.trading.requests import OrderRequest
from dpgnode.services.trading.service import Depth, PositionValue, Ticker, TradingService

__all__ = [
    "Depth",
    "FeedMessage",
    "FeedOverflowError",
    "NewOrder",
    "OrderRequest",
    "Placed",
    "PositionValue",
    "Subscription",
    "Ticker",
    "TradingFeed",
    "TradingService",
]
