"""Rate sources: fixed configured rates, and later live feeds (``RateSource`` port)."""
