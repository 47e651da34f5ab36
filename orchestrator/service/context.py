"""The unit of work: one session on the fleet for one use case, whoever calls it.

Every caller (a CLI command, a TUI action, the Python API, a server) reaches the fleet through
:func:`open_fleet`, and every service function takes the :class:`Fleet` it yields. A session
holds the settings (with the policies a fleet file stored laid over them), ONE store
connection, the fleet lock when it writes, and the record of what ran. Nothing else in the
code opens the store or takes the lock (tests/unit/test_unit_of_work.py checks it).

Errors the pure core raises about the data it was given (``core.errors.CoreError``) are
translated here, once, into the ``WgfleetError`` a caller can print and exit with.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar, Unpack

from orchestrator.adapters import ssh
from orchestrator.adapters.private_files import private_dir
from orchestrator.adapters.secrets import SecretStore
from orchestrator.adapters.store import SqlStore, open_store
from orchestrator.core.errors import CoreError
from orchestrator.core.metrics import NO_OBSERVER, RunObserver
from orchestrator.core.models import Node, Operation
from orchestrator.core.shard import Shard
from orchestrator.errors import NotFound, StoreError, WgfleetError
from orchestrator.service import shared_files
from orchestrator.service.errors import translated
from orchestrator.service.fleet_keyring import LOCAL_SECRETS, import_local_secrets, load_keyring
from orchestrator.service.lock import fleet_lock
from orchestrator.settings import Settings, with_policies

P = ParamSpec("P")
T = TypeVar("T")

# How long a writer queues behind another run by default (cron, the TUI, a pipeline).
WRITE_WAIT_SECONDS = 300.0


@dataclass
class Fleet:
    """One session on the fleet: what a use case reads, writes and reaches nodes with."""

    settings: Settings
    store: SqlStore
    secrets: SecretStore
    # Kept-open sessions of a long-running controller (`sync --every`, the TUI); None: every
    # command opens a session and closes it after (a cron run keeps nothing between runs).
    connections: ssh.ConnectionPool | None = None
    # True when this session holds the fleet lock: only then may a use case change the fleet.
    writes: bool = False
    # True when this session may make store-only changes without the lock (see `writes_store`).
    store_writes: bool = False
    # The shard this session's lock covers (None: the whole fleet).
    shard: Shard | None = None
    # The use case this session was opened for ("peers add", "sync", ...), and what it did.
    operation: str = ""
    trail: list[str] = field(default_factory=list)
    # The settings as the caller gave them, before the store's policies were laid over them.
    given_settings: Settings | None = None
    # Who asked, when not the operator at this controller: the HTTP API's token name (never
    # its secret), kept with the session's row in the operations trail.
    actor: str | None = None
    # Where sync and push report their durations and failures (a process exposing metrics).
    observer: RunObserver = NO_OBSERVER

    def reload_policies(self) -> None:
        """Lay the store's policies over the given settings again (after a use case stored
        new ones: the rest of the session enforces what was just applied)."""
        self.settings = with_stored_policies(self.given_settings or self.settings, self.store)

    def record(self, what: str) -> None:
        """Note a step this session took (`-v` prints the trail; nothing here is secret)."""
        self.trail.append(what)

    def nodes(self, names: Iterable[str] | None = None) -> dict[str, Node]:
        """The named nodes (all when None), by name; a name the store lacks is an error."""
        known = {n.name: n for n in self.store.nodes()}
        if names is None:
            return known
        wanted = set(names)
        unknown = sorted(wanted - set(known))
        if unknown:
            raise NotFound(f"no node(s) {', '.join(unknown)} in the store")
        return {name: known[name] for name in wanted}

    def target(
        self, node: Node, user: str, key_file: Path, *, kex: str = "post-quantum"
    ) -> ssh.Target:
        """How to reach ``node`` as ``user``: pinned host keys, the settings' timeout."""
        return ssh.Target(
            name=node.name,
            address=node.address,
            user=user,
            key_file=key_file,
            known_hosts=self.settings.ssh.known_hosts,
            timeout=self.settings.ssh.connect_timeout,
            kex=kex,
        )

    def run(
        self,
        target: ssh.Target,
        argv: Sequence[str] | str,
        **options: Unpack[ssh.CommandOptions],
    ) -> ssh.CommandResult:
        """One command on a node, on a kept session when this fleet keeps them; the caller
        judges its exit status."""
        if self.connections is not None:
            return self.connections.run(target, argv, check=False, **options)
        with ssh.NodeConnection(target) as connection:
            return connection.run(argv, check=False, **options)


class ReadOnlySession(RuntimeError):
    """A use case that changes the fleet ran in a session opened without ``write=True``: a
    bug in its caller (the lock that keeps cron, the TUI and pipelines apart was not held)."""


def writes(func: Callable[Concatenate[Fleet, P], T]) -> Callable[Concatenate[Fleet, P], T]:
    """Mark a use case that changes the fleet: it refuses a session that does not hold the lock."""

    @functools.wraps(func)
    def guarded(fleet: Fleet, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not fleet.writes:
            raise ReadOnlySession(
                f"{func.__module__}.{func.__qualname__} changes the fleet: "
                "open the session with open_fleet(settings, write=True)"
            )
        return func(fleet, *args, **kwargs)

    return guarded


def writes_store(
    func: Callable[Concatenate[Fleet, P], T],
) -> Callable[Concatenate[Fleet, P], T]:
    """Mark a use case that changes the store only (a top-up): it reaches no node and its
    store transactions keep it correct beside a running sync, so it runs in a session holding
    the fleet lock or in a store-only one (``open_fleet(settings, store_only=True)``), which
    never waits behind the lock; a read session is refused."""

    @functools.wraps(func)
    def guarded(fleet: Fleet, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not (fleet.writes or fleet.store_writes):
            raise ReadOnlySession(
                f"{func.__module__}.{func.__qualname__} changes the store: open the session "
                "with open_fleet(settings, store_only=True) or write=True"
            )
        return func(fleet, *args, **kwargs)

    return guarded


def with_stored_policies(settings: Settings, store: SqlStore) -> Settings:
    """Policies applied from a fleet file win over the settings file: every controller sharing
    this store then enforces the same key ages, grace and usage rules."""
    stored = {name: json.loads(value) for name, value in store.policies().items()}
    return with_policies(settings, stored)


@contextmanager
def open_fleet(
    settings: Settings,
    *,
    write: bool = False,
    wait: bool = True,
    timeout: float | None = WRITE_WAIT_SECONDS,
    shard: Shard | None = None,
    connections: ssh.ConnectionPool | None = None,
    operation: str = "",
    upgrade: bool = True,
    actor: str | None = None,
    observer: RunObserver = NO_OBSERVER,
    store_only: bool = False,
) -> Iterator[Fleet]:
    """Open a session on the fleet for one use case.

    ``write``: take the fleet lock first (queueing up to ``timeout`` seconds when ``wait``,
    else failing at once with FleetBusy, exit 3); a sharded run holds its shard's lock. The
    store is then opened once (a fresh embedded one brought to the current schema) and closed
    when the block ends, whatever happens. ``actor``: the API token's name a writing session
    is recorded with in the operations trail. ``observer``: where the session's syncs and
    pushes report their durations and failures (`service/metrics.py`).

    ``store_only``: a session for store-only writes (`writes_store` use cases: top-ups) that
    takes no lock, so it never queues behind a sync that holds the lock for minutes; it is
    recorded in the operations trail like any writing session.
    """
    if write and store_only:
        raise ValueError("a session either holds the fleet lock (write) or writes the store only")
    with ExitStack() as stack:
        if write:
            stack.enter_context(fleet_lock(settings, wait=wait, timeout=timeout, shard=shard))
        store = stack.enter_context(_store(settings))
        started = int(time.time())
        with translated():
            if upgrade and store.schema_version() == 0:
                store.upgrade(ipv6_prefix=settings.network.ipv6_prefix)
            store.require_current()
            secrets = SecretStore(store, functools.partial(load_keyring, settings, store))
            if (settings.data_dir / LOCAL_SECRETS).is_dir():
                import_local_secrets(settings, store, secrets.keyring())
            elif write:
                # A session that may push needs the fleet secret: refused here, before it
                # changes anything, rather than after its store change at its first push.
                secrets.keyring()
            # PostgreSQL: the pins, deploy fingerprints and node settings every controller
            # shares, brought up to the store's version before anything reads them.
            shared_files.pull(settings, store)
            fleet = Fleet(
                with_stored_policies(settings, store),
                store,
                secrets,
                connections,
                writes=write,
                store_writes=store_only,
                shard=shard,
                operation=operation,
                given_settings=settings,
                actor=actor,
                observer=observer,
            )
        outcome = "ok"
        try:
            with translated():
                yield fleet
        except BaseException as error:
            outcome = outcome_of(error)
            raise
        finally:
            if write:
                _push_shared_files(settings, store, failing=outcome != "ok")
            if write or store_only:
                _record_operation(fleet, started, outcome)


def _push_shared_files(settings: Settings, store: SqlStore, *, failing: bool) -> None:
    """A writing session's changes to the shared files, put back under its lock; when the
    session already fails, a store that cannot take them too does not hide that error (the
    next session pushes them)."""
    try:
        with translated():
            shared_files.push(settings, store)
    except StoreError:
        if not failing:
            raise


@contextmanager
def _store(settings: Settings) -> Iterator[SqlStore]:
    """The store, closed when the block ends."""
    # Keys, preshared keys and the embedded store live here: 0700, this user's (see
    # adapters/private_files: a looser one is tightened, another user's refused).
    private_dir(settings.data_dir, follow=True)
    store = open_store(settings.store_url, source=settings.source)
    try:
        yield store
    finally:
        store.close()


def outcome_of(error: BaseException) -> str:
    """How a session ended, for the trail: the error's kind and exit code, never its message
    (a message may name an account or a configuration)."""
    if isinstance(error, WgfleetError):
        return f"{type(error).__name__} (exit {int(error.exit_code)})"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"bug: {type(error).__name__}"


def _record_operation(fleet: Fleet, started: int, outcome: str) -> None:
    """Keep the writing session in the store's operations trail. A store that cannot take it
    (it is the store that failed) does not hide the session's own error."""
    with suppress(StoreError):
        fleet.store.record_operation(
            Operation(
                fleet.operation or "python api",
                platform.node() or "controller",
                started,
                int(time.time()),
                outcome,
                len(fleet.trail),
                fleet.actor,
            )
        )


def upgrade_store(settings: Settings) -> tuple[list[int], int]:
    """Apply the store's pending schema migrations under the fleet lock (`db upgrade`): the
    one session that opens a store not yet at the current schema. Returns (applied, version)."""
    with (
        fleet_lock(settings, wait=True, timeout=WRITE_WAIT_SECONDS),
        _store(settings) as store,
        translated(),
    ):
        applied = store.upgrade(ipv6_prefix=settings.network.ipv6_prefix)
        return applied, store.schema_version()


__all__ = [
    "CoreError",
    "Fleet",
    "ReadOnlySession",
    "open_fleet",
    "upgrade_store",
    "writes",
    "writes_store",
]
