"""``IdempotencyStore`` over the ``idempotency_records`` table, through the group-commit writer.

Every operation is one writer command: the writer runs commands one after another, so a
claim's read-then-write cannot interleave with another claim in this process; across
processes the unique ``(scope, key)`` constraint makes the loser fail with
``ConflictError`` (the service retries it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.adapters.storage.writer import SqlWriter
from dpgnode.ports.idempotency import ClaimRequest, ClaimResult, ClaimStatus, StoredResponse

T = TypeVar("T")
_IN_PROGRESS = "in_progress"
_COMPLETED = "completed"
_t = tables.idempotency_records


class SqlIdempotencyStore:
    def __init__(self, writer: SqlWriter) -> None:
        self._writer = writer

    async def _run(self, command: Callable[[SqlTx], T]) -> T:
        return await self._writer.run_sql_async(command)

    async def claim(self, request: ClaimRequest) -> ClaimResult:
        return await self._run(lambda tx: _claim(tx, request))

    async def complete(
        self, scope: str, key: str, request_hash: str, response: StoredResponse
    ) -> None:
        statement = (
            update(_t)
            .where(*_mine(scope, key, request_hash))
            .values(
                state=_COMPLETED, status_code=response.status_code,
                content_type=response.content_type, response_body=response.body,
            )
        )
        await self._run(lambda tx: tx.execute(statement))

    async def release(self, scope: str, key: str, request_hash: str) -> None:
        statement = delete(_t).where(*_mine(scope, key, request_hash))
        await self._run(lambda tx: tx.execute(statement))

    async def purge(self, expired_before: datetime) -> int:
        statement = delete(_t).where(_t.c.created_at < expired_before)
        return await self._run(lambda tx: int(tx.execute(statement).rowcount))


def _mine(scope: str, key: str, request_hash: str) -> tuple[Any, ...]:
    return (
        _t.c.scope == scope, _t.c.key == key,
        _t.c.request_hash == request_hash, _t.c.state == _IN_PROGRESS,
    )


def _claim(tx: SqlTx, request: ClaimRequest) -> ClaimResult:
    where = (_t.c.scope == request.scope, _t.c.key == request.key)
    row = tx.execute(
        select(
            _t.c.request_hash, _t.c.state, _t.c.status_code, _t.c.content_type,
            _t.c.response_body, _t.c.created_at, _t.c.locked_until,
        ).where(*where)
    ).mappings().first()
    fresh = {
        "request_hash": request.request_hash, "state": _IN_PROGRESS, "status_code": None,
        "content_type": None, "response_body": None, "created_at": request.now,
        "locked_until": request.locked_until,
    }
    if row is None:
        tx.execute(insert(_t).values(scope=request.scope, key=request.key, **fresh))
        return ClaimResult(ClaimStatus.CLAIMED)
    if row["created_at"] < request.expired_before:
        tx.execute(update(_t).where(*where).values(**fresh))
        return ClaimResult(ClaimStatus.CLAIMED)
    if row["request_hash"] != request.request_hash:
        return ClaimResult(ClaimStatus.MISMATCH)
    if row["state"] == _COMPLETED:
        response = StoredResponse(
            int(row["status_code"]), str(row["content_type"] or ""),
            bytes(row["response_body"] or b""),
        )
        return ClaimResult(ClaimStatus.REPLAY, response)
    if row["locked_until"] <= request.now:
        tx.execute(update(_t).where(*where).values(locked_until=request.locked_until))
        return ClaimResult(ClaimStatus.CLAIMED)
    return ClaimResult(ClaimStatus.IN_PROGRESS)
