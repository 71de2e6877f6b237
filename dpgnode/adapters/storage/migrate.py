"""Schema migrations and database checks (``dpg db upgrade|current|check``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from dpgnode.adapters.storage.tables import metadata


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(files("dpgnode") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string()))
    return script.get_current_head()


@dataclass(frozen=True, slots=True)
class DbCheck:
    """What ``dpg db check`` found; ``ok`` only when every list is empty."""

    current: str | None
    head: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(engine: Engine) -> DbCheck:
    """Integrity (SQLite), foreign keys, pending migrations and schema drift."""
    current, head = current_revision(engine), head_revision(engine)
    problems: list[str] = []
    if current != head:
        problems.append(
            f"database is at revision {current}, code expects {head}: run `dpg db upgrade`"
        )
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems.extend(f"integrity_check: {line}" for line in result)
            fk = list(conn.exec_driver_sql("PRAGMA foreign_key_check"))
            if fk:
                problems.append(f"foreign_key_check: {len(fk)} dangling references")
        if current == head:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
            problems.extend(f"schema drift: {d}" for d in diff)
        conn.execute(text("select 1"))
    return DbCheck(current, head, problems)
