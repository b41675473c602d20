"""What the server remembers across restarts: API keys (hashed), autonomous runs, recorded episodes.

SQLAlchemy over SQLite by default (a file beside the dataset) and PostgreSQL in production:
the same tables, the URL decides. The dataset stays the source of truth for episodes: a row
here is an index into it, and on start-up `Recorder.reconcile` adds the rows of episodes
the dataset has and the store missed (a kill between the two writes).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection

from sqlalchemy import Boolean, DateTime, Integer, String, Text, create_engine, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public part of the key
    secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the whole key; the key itself is never stored
    scope: Mapped[str] = mapped_column(String(16))
    robots: Mapped[str] = mapped_column(String(256), default="*")
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class TaskRun(Base):
    __tablename__ = "task_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task: Mapped[str] = mapped_column(String(256))
    policy: Mapped[str] = mapped_column(Text)
    robots: Mapped[str] = mapped_column(Text)  # comma-separated robot ids
    episodes: Mapped[int] = mapped_column(Integer)
    episodes_done: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|finished|cancelled|failed|interrupted
    error: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class EpisodeRecord(Base):
    __tablename__ = "episodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # the dataset's episode_index
    robot: Mapped[str] = mapped_column(String(128), default="")
    task: Mapped[str] = mapped_column(Text)
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    length: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(32), default="")
    end_reason: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class LastAdminKey(ValueError):
    """Revoking this key would leave no admin key (or none for every robot): the API would be locked for good."""


@dataclass(frozen=True)
class KeyInfo:
    """What a request's key may do; a plain value, safe to cache outside a session."""

    id: str
    scope: str
    robots: str
    name: str
    revoked: bool


class Store:
    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"check_same_thread": False}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        self.engine = create_engine(url, **kwargs)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()  # SQLite allows one writer; serialise ours rather than retry

    def close(self) -> None:
        self.engine.dispose()

    def _write(self):
        return _Locked(self._lock, self.sessions)

    # -- keys -----------------------------------------------------------------------------
    def add_key(self, key_id: str, secret_hash: str, scope: str, robots: str, name: str) -> KeyInfo:
        with self._write() as session:
            session.add(ApiKey(id=key_id, secret_hash=secret_hash, scope=scope, robots=robots, name=name))
        return KeyInfo(key_id, scope, robots, name, False)

    def find_key(self, key_id: str) -> tuple[KeyInfo, str] | None:
        with self.sessions() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return None
            return KeyInfo(row.id, row.scope, row.robots, row.name, row.revoked), row.secret_hash

    def list_keys(self) -> list[KeyInfo]:
        with self.sessions() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
            return [KeyInfo(r.id, r.scope, r.robots, r.name, r.revoked) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key; False if there is none. The last active admin key, and the last active admin key whose
        pattern is "*", are refused (LastAdminKey): checked and written under the store's lock, so two revocations in
        one process cannot both pass the check."""
        with self._write() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return False
            if row.scope == "admin" and not row.revoked:
                admins = session.scalars(select(ApiKey.robots).where(ApiKey.scope == "admin", ApiKey.revoked.is_(False))).all()
                if len(admins) <= 1:
                    raise LastAdminKey(f"key {key_id} is the last admin key; create another admin key before revoking it")
                if row.robots == "*" and list(admins).count("*") <= 1:
                    raise LastAdminKey(f"key {key_id} is the last admin key for every robot ('*'); create another "
                                       "before revoking it")
            row.revoked = True
            return True

    # -- runs -----------------------------------------------------------------------------
    def add_run(self, run_id: str, task: str, policy: str, robots: list[str], episodes: int, owner: str) -> TaskRun:
        run = TaskRun(id=run_id, task=task, policy=policy, robots=",".join(robots), episodes=episodes, owner=owner)
        with self._write() as session:
            session.add(run)
        return run

    def get_run(self, run_id: str) -> TaskRun | None:
        with self.sessions() as session:
            return session.get(TaskRun, run_id)

    def list_runs(self, limit: int = 100, visible: Callable[[TaskRun], bool] | None = None) -> list[TaskRun]:
        """The newest `limit` runs, only those `visible` accepts (read in pages until `limit` are found)."""
        query = select(TaskRun).order_by(TaskRun.created_at.desc(), TaskRun.id)
        if visible is None:
            with self.sessions() as session:
                return list(session.scalars(query.limit(limit)).all())
        found: list[TaskRun] = []
        offset, page = 0, max(limit, 500)
        with self.sessions() as session:
            while len(found) < limit:
                rows = session.scalars(query.offset(offset).limit(page)).all()
                found += [r for r in rows if visible(r)]
                if len(rows) < page:
                    break
                offset += page
        return found[:limit]

    def update_run(self, run_id: str, **values) -> None:
        with self._write() as session:
            session.execute(update(TaskRun).where(TaskRun.id == run_id).values(updated_at=_now(), **values))

    def count_run_episode(self, run_id: str, success: bool) -> None:
        with self._write() as session:
            session.execute(update(TaskRun).where(TaskRun.id == run_id).values(
                episodes_done=TaskRun.episodes_done + 1, successes=TaskRun.successes + int(success), updated_at=_now()))

    def interrupt_running(self) -> int:
        """Runs a killed server left "running" are marked interrupted (their finished episodes stay)."""
        with self._write() as session:
            return session.execute(update(TaskRun).where(TaskRun.status == "running").values(
                status="interrupted", error="the server stopped while this run was running", updated_at=_now())).rowcount

    # -- episodes -------------------------------------------------------------------------
    def add_episode(self, record: EpisodeRecord) -> None:
        with self._write() as session:
            session.merge(record)

    def episode_ids(self) -> set[int]:
        with self.sessions() as session:
            return set(session.scalars(select(EpisodeRecord.id)).all())

    def get_episode(self, episode_id: int) -> EpisodeRecord | None:
        with self.sessions() as session:
            return session.get(EpisodeRecord, episode_id)

    def episode_robots(self) -> list[str]:
        """Every robot id that has a recorded episode (a fleet's worth: small)."""
        with self.sessions() as session:
            return list(session.scalars(select(EpisodeRecord.robot).distinct()).all())

    def list_episodes(self, robot: str | None = None, run_id: str | None = None, task: str | None = None,
                      offset: int = 0, limit: int = 100, robots: Collection[str] | None = None) -> list[EpisodeRecord]:
        """Episodes by id; `robots`, when given, keeps only the episodes of those robots (a key's visible ones)."""
        query = select(EpisodeRecord).order_by(EpisodeRecord.id)
        if robots is not None:
            query = query.where(EpisodeRecord.robot.in_(list(robots)))
        if robot:
            query = query.where(EpisodeRecord.robot == robot)
        if run_id:
            query = query.where(EpisodeRecord.run_id == run_id)
        if task:
            query = query.where(EpisodeRecord.task == task)
        with self.sessions() as session:
            return list(session.scalars(query.offset(offset).limit(limit)).all())


class _Locked:
    """A write session under the store's lock, committed on success and rolled back on error."""

    def __init__(self, lock: threading.Lock, sessions: sessionmaker):
        self.lock, self.sessions = lock, sessions

    def __enter__(self) -> Session:
        self.lock.acquire()
        self.session = self.sessions()
        return self.session

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
            self.lock.release()
