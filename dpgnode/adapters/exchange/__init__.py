"""Durable storage of the matching engines: command journal and snapshots on local files."""

from dpgnode.adapters.exchange.codec import MsgpackBatchCodec, MsgpackStateCodec
from dpgnode.adapters.exchange.journal import FileExchangeJournal, journal_directory

__all__ = ["FileExchangeJournal", "MsgpackBatchCodec", "MsgpackStateCodec", "journal_directory"]
