"""The store: runs and their frames (SQLAlchemy; SQLite by default, PostgreSQL via DATABASE_URL)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import (JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, create_engine, event)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from pinwheel import protocol


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    preset: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict] = mapped_column(JSON)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer)
    wall_time: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    environment: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_id: Mapped[str | None] = mapped_column(String(32))
    # sharing and organising (issue #6)
    launched_by: Mapped[str | None] = mapped_column(String(100), index=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    notes_html: Mapped[str] = mapped_column(Text, default="")  # sanitised server-side (backend/app/markdown.py)
    provenance: Mapped[dict] = mapped_column(JSON, default=dict)  # code version, seed, import origin
    # fault tolerance (issue #10): [{attempt, host, worker, started_at, ended_at, resumed_from_step, ended}]
    attempts: Mapped[list | None] = mapped_column(JSON, default=list)
    attempt: Mapped[int | None] = mapped_column(Integer, default=0)  # the attempt whose frames are current


class User(Base):
    """A lab member's named bearer token; only the SHA-256 of the token is stored."""
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Share(Base):
    """A read-only link to one run; only the SHA-256 of its token is stored."""
    __tablename__ = "shares"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Frame(Base):
    __tablename__ = "frames"
    __table_args__ = (UniqueConstraint("run_id", "event_id"), Index("ix_frames_run_step", "run_id", "step"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(32))  # the Redis Stream entry id
    step: Mapped[int] = mapped_column(Integer)
    wall_time: Mapped[float] = mapped_column(Float)
    time: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict] = mapped_column(JSON)
    panels: Mapped[str] = mapped_column(Text)  # JSON text; large (image atlases), loaded only when asked


class StoredFile(Base):
    """A run's file (checkpoint, weights) kept in the database, so that every web process can serve it
    whichever one a worker handed it to: no disk is shared between web hosts (backend/app/run_files.py)."""
    __tablename__ = "run_files"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[float] = mapped_column(Float)  # time.time() of the write that stored it


def make_sessionmaker(database_url: str) -> sessionmaker:
    kwargs: dict = {}
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if database_url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(database_url, **kwargs)
    if database_url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(conn, _):  # WAL: the persister writes while pages read
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    return sessionmaker(engine, expire_on_commit=False)


def add_missing_columns(engine) -> None:
    """create_all makes missing tables only: columns added to a model since a database was made are
    added here, nullable (the code reads NULL as the empty value). Not a migration tool: no renames."""
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=engine.dialect)
                try:
                    with engine.begin() as conn:
                        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                except DBAPIError:  # a peer process added it first
                    if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                        raise


def frame_event(frame: Frame, total_steps: int, with_panels: bool = True) -> protocol.Frame:
    """A stored frame in the contract's shape (pinwheel/protocol.py), as SSE and /frames hand it out.
    Validated when it was persisted, so not again; panels (large) are parsed only when asked for."""
    fields = dict(event_id=frame.event_id, step=frame.step, total_steps=total_steps, wall_time=frame.wall_time,
                  time=frame.time, attempt=None, metrics=frame.metrics)
    if with_panels:
        fields["panels"] = protocol.parse_panels(frame.panels)
    return protocol.Frame.model_construct(**fields)
