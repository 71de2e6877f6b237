"""Conversion between assets: aggregated rates, quotes, execution against inventory, limits."""

from dpgnode.services.conversion.execution import Executed
from dpgnode.services.conversion.limits import ConversionLimits, check_owner
from dpgnode.services.conversion.rates import BoardLine, BookMidRateSource, MedianRates
from dpgnode.services.conversion.service import ConversionPolicy, ConversionService, QuoteRequest

__all__ = [
    "BoardLine",
    "BookMidRateSource",
    "ConversionLimits",
    "ConversionPolicy",
    "ConversionService",
    "Executed",
    "MedianRates",
    "QuoteRequest",
    "check_owner",
]
