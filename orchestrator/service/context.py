"""What every use case works with: the settings, the quota store and the secret store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters import ssh
from orchestrator.adapters.private_files import private_dir
from orchestrator.adapters.secrets import SecretStore
from orchestrator.adapters.store import SqlStore, open_store
from orchestrator.core.models import Node
from orchestrator.errors import NotFound
from orchestrator.settings import Settings, with_policies


@dataclass
class Fleet:
    settings: Settings
    store: SqlStore
    secrets: SecretStore
    # Kept-open sessions of a long-running controller (`sync --every`, the TUI); None: every
    # command opens a session and closes it after (a cron run keeps nothing between runs).
    connections: ssh.ConnectionPool | None = None

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
        *,
        timeout: float = 60.0,
        stdin: str | None = None,
    ) -> ssh.CommandResult:
        """One command on a node, on a kept session when this fleet keeps them."""
        if self.connections is not None:
            return self.connections.run(target, argv, check=False, timeout=timeout, stdin=stdin)
        with ssh.NodeConnection(target) as connection:
            return connection.run(argv, check=False, timeout=timeout, stdin=stdin)


@contextmanager
def open_fleet(
    settings: Settings,
    *,
    upgrade: bool = True,
    connections: ssh.ConnectionPool | None = None,
) -> Iterator[Fleet]:
    """Open the store (bringing a fresh embedded one to the current schema) for one command."""
    # Keys, preshared keys and the embedded store live here: 0700, this user's (see
    # adapters/private_files: a looser one is tightened, another user's refused).
    private_dir(settings.data_dir, follow=True)
    store = open_store(settings.store_url, source=settings.source)
    try:
        if upgrade and store.schema_version() == 0:
            store.upgrade(ipv6_prefix=settings.network.ipv6_prefix)
        store.require_current()
        # Policies applied from a fleet file win over the settings file: every controller
        # sharing this store then enforces the same key ages, grace and usage rules.
        stored = {name: json.loads(value) for name, value in store.policies().items()}
        yield Fleet(
            with_policies(settings, stored),
            store,
            SecretStore(settings.data_dir / "secrets"),
            connections,
        )
    finally:
        store.close()
