"""A typed client of the node's own HTTP API, for the dashboard and shop-side Python tools.

    from dpgnode.client import DpgClient

    with DpgClient("http://127.0.0.1:8080", api_key) as node:
        for pair in node.pairs():
            print(pair.symbol, pair.status)

:class:`AsyncDpgClient` is the same for asyncio, plus the trading WebSocket. Answers are
frozen :mod:`msgspec` structs (:mod:`dpgnode.client.models`) with amounts as decimal
strings; failures raise the node's own error types (:mod:`dpgnode.errors`), mapped from the
API's problem documents by :mod:`dpgnode.client.errors`. The client needs nothing of the
node but its error types: it never opens a database.
"""

from dpgnode.client import calls, models
from dpgnode.client.asynchronous import AsyncDpgClient
from dpgnode.client.errors import ServerError
from dpgnode.client.feed import TradingFeed
from dpgnode.client.sync import DpgClient

__all__ = ["AsyncDpgClient", "DpgClient", "ServerError", "TradingFeed", "calls", "models"]
