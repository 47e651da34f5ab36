"""Settings and inputs checked before a command creates anything.

A command that will fail on its settings must fail before it makes the data directory, the
store, the controller's SSH keys or the fleet lock: otherwise a typo in `inventory:` leaves a
fresh store and three new keys behind (and a later run trusts them). `check_settings` runs
for every command: every path the settings name is of the right kind, or can be made where it
says; each command then checks what it reads (`inventory`, `controller_key`) before it opens
anything. Nothing here creates or changes a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ConfigError, UsageError
from orchestrator.settings import Settings


def check_settings(settings: Settings) -> None:
    """Every path of the settings: a directory where one is made, a file where one is read or
    written, and for a path that does not exist yet, a directory above it to make it in."""
    try:
        _check_paths(settings)
    except ConfigError as exc:
        if exc.line is not None:
            raise
        raise exc.at_line(setting_line(settings, exc.field)) from None


def _check_paths(settings: Settings) -> None:
    source = settings.source
    _directory(source, "data_dir", settings.data_dir)
    url = settings.store_url
    if url.startswith("sqlite:///"):
        _file(source, "store_url", Path(url.removeprefix("sqlite://")))
    elif not url.startswith(("postgresql://", "postgres://")):
        # Only the scheme is shown: the rest of a URL may hold a password.
        scheme = url.split(":", 1)[0] if ":" in url else url[:20]
        raise ConfigError(
            source, "store_url", f"{scheme}:...", "expected sqlite:///PATH or postgresql://..."
        )
    for name in ("deploy_key", "collector_key", "push_key"):
        _file(source, f"ssh.{name}", getattr(settings.ssh, name))
    # Read, and written only by `lab up` and `nodes trust`: the commands that need it say so.
    if settings.ssh.known_hosts.is_dir():
        raise ConfigError(
            source, "ssh.known_hosts", str(settings.ssh.known_hosts), "is a directory, not a file"
        )
    if settings.inventory.exists() and not (
        settings.inventory.is_dir() or settings.inventory.is_file()
    ):
        raise ConfigError(source, "inventory", str(settings.inventory), "not a file or directory")


def lab_machine() -> None:
    """The lab drives namespaces, mounts and nspawn as root: said first, before the settings'
    paths (a non-root user's default data directory may not be makeable either, and the
    missing root is what there is to fix)."""
    from orchestrator.adapters.proc import require_root

    require_root("the lab")


def inventory(settings: Settings) -> None:
    """The inventory exists and every host in it is valid (see service/deploy._read_hosts)."""
    from orchestrator.service.deploy import node_host_vars

    if not settings.inventory.exists():
        raise ConfigError(
            settings.source,
            "inventory",
            str(settings.inventory),
            "no such file or directory (run `wgfleet lab up` for a lab fleet)",
            line=setting_line(settings, "inventory"),
        )
    node_host_vars(settings)


def setting_line(settings: Settings, field: str) -> int | None:
    """The line of the settings file where ``field`` is written (None: not written there, or
    no file). Read again only to name a line in an error."""
    from orchestrator.adapters.input_files import read_text
    from orchestrator.core import yaml_input
    from orchestrator.core.input_limits import SETTINGS_MAX_BYTES

    if settings.source == "defaults" or not Path(settings.source).is_file():
        return None
    try:
        text = read_text(settings.source, SETTINGS_MAX_BYTES, "a settings file")
        return yaml_input.field_lines(yaml_input.compose(text)).get(field)
    except (ConfigError, ValueError):
        return None


def controller_key(settings: Settings, purpose: str) -> None:
    """The controller key ``purpose`` (deploy, collector, push) exists already."""
    path = getattr(settings.ssh, f"{purpose}_key", None)
    if path is None:
        raise UsageError(f"ssh key {purpose}: one of deploy, collector, push")
    if not Path(path).is_file():
        raise UsageError(f"{path} does not exist yet: deploy first")


def _directory(source: str, field: str, path: Path) -> None:
    if path.exists():
        if not path.is_dir():
            raise ConfigError(source, field, str(path), "exists and is not a directory")
        return
    _creatable(source, field, path)


def _file(source: str, field: str, path: Path) -> None:
    if path.exists():
        if path.is_dir():
            raise ConfigError(source, field, str(path), "is a directory, not a file")
        return
    _creatable(source, field, path)


def _creatable(source: str, field: str, path: Path) -> None:
    """The nearest existing directory above ``path``, where it would be made, is one."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ConfigError(
                    source, field, str(path), f"cannot be made: {parent} is not a directory"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(
                    source, field, str(path), f"cannot be made: {parent} is not writable"
                )
            return
