"""The fleet's settings: where the store, the inventory and the controller's keys live.

Every value has a default that works with no file at all (an SQLite store under the data
directory, the lab inventory in the checkout). A YAML file named by ``--config`` or
``WGFLEET_CONFIG`` overrides them; relative paths in it are relative to the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.adapters.input_files import read_text
from orchestrator.core import yaml_input
from orchestrator.core.addressing import LAB_PREFIX, prefix_problem
from orchestrator.core.dns_upstream import forwarders_problem
from orchestrator.core.input_limits import SETTINGS_MAX_BYTES
from orchestrator.core.keys import parse_duration
from orchestrator.core.notify import webhook_problem
from orchestrator.core.redaction import redact_url, webhook_origin
from orchestrator.errors import ConfigError

CONFIG_ENV = "WGFLEET_CONFIG"
DATA_DIR_ENV = "WGFLEET_DATA_DIR"
CACHE_DIR_ENV = "WGFLEET_CACHE_DIR"
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
# The lab underlay: inside 198.18.0.0/15 but clear of 198.19.0.0/16, which tunnels use.
LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")


def project_root() -> Path:
    """The checkout holding ``playbooks/`` and ``roles/``; the working directory otherwise."""
    candidate = Path(__file__).resolve().parent.parent
    if (candidate / "playbooks").is_dir() and (candidate / "orchestrator").is_dir():
        return candidate
    return Path.cwd()


def _default_data_dir() -> Path:
    if env := os.environ.get(DATA_DIR_ENV):
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wgfleet"


def _default_cache_dir() -> Path:
    if env := os.environ.get(CACHE_DIR_ENV):
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wgfleet"


@dataclass(frozen=True)
class SshSettings:
    deploy_key: Path
    collector_key: Path
    push_key: Path
    known_hosts: Path
    connect_timeout: float = 10.0
    # Key exchange for the collector's minute-by-minute sessions (they carry byte counters
    # only): "curve25519" costs the controller ~6x less CPU per fresh connection than the
    # post-quantum hybrid; pushes, which carry preshared keys, always prefer post-quantum.
    collector_kex: str = "curve25519"
    # Sessions `sync --every` keeps open between runs, at most; the nodes past it connect
    # afresh every run. Each costs the controller about 70 kB and a paramiko thread, asleep
    # while idle (ssh.KEPT_SESSION_POLL_SECONDS), and its node two sshd processes; each saves
    # a key exchange (about 4.6 ms of controller CPU) per run. 500 keep 35 MB.
    kept_sessions: int = 500


@dataclass(frozen=True)
class LabSettings:
    name: str
    subnet: ipaddress.IPv4Network
    state_dir: Path
    rootfs_cache: Path
    suite: str = "bookworm"
    mirror: str | None = None  # None: read from the host's apt sources


@dataclass(frozen=True)
class UsageSettings:
    # Closed billing periods older than this are erased on every sync (never the current one).
    retention_days: int = 400
    warn_percent: int = 80
    sync_interval: str = "5m"  # how often the cron and timer examples run `wgfleet sync`
    # Configurations whose validity ends within this many days are named on the dashboard.
    expiry_warn_days: int = 7


@dataclass(frozen=True)
class TuiSettings:
    """The operator's terminal UI."""

    # How often an open screen reads the store again (a run made elsewhere shows up); 0: never.
    refresh_interval: str = "10s"

    @property
    def refresh_seconds(self) -> int:
        return parse_duration(self.refresh_interval)


@dataclass(frozen=True)
class PrivacySettings:
    """What usage the store may keep beyond each configuration's total per billing period."""

    # A daily byte total per node (a location), never per user: off unless the provider's
    # published policy says it keeps one. Turning it off erases what was kept on the next sync.
    node_daily_totals: bool = False
    node_daily_retention_days: int = 90
    # Top-up transactions whose bytes no longer count (bought before a monthly plan's current
    # period) are erased this many days after purchase; 0 keeps them (accounting law often
    # asks for years). The ledger of deleted accounts (top-ups with no configuration) has its
    # own limit, 0 keeps it.
    topup_retention_days: int = 0
    deleted_ledger_retention_days: int = 0
    # Whether an account may hold a contact number (for notifications). Turned off, the next
    # sync erases every stored number and new ones are refused.
    allow_contact: bool = True


@dataclass(frozen=True)
class NotifySettings:
    """Where events go: a command given the event as JSON on stdin, and/or an HTTP webhook
    that receives it as a JSON POST. Neither set: events are not queued at all."""

    command: tuple[str, ...] = ()
    webhook: str | None = field(default=None, repr=False)  # its path may be a token
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.webhook)


@dataclass(frozen=True)
class DeploySettings:
    """When a deploy may skip Ansible on a node whose state it verified unchanged."""

    # A converged node still gets the full run this often, for drift the state probe cannot
    # see; 0 turns the fast path off.
    full_every_days: int = 7


@dataclass(frozen=True)
class DnsSettings:
    """The node resolver's upstream (role resolver): recursion when no forwarders are set."""

    forwarders: tuple[str, ...] = ()  # ADDRESS, ADDRESS@PORT or ADDRESS@PORT#TLS-NAME
    forward_tls: bool = False  # DNS over TLS to the forwarders


@dataclass(frozen=True)
class KeySettings:
    """How old each kind of key may grow, and how long a replaced key keeps working."""

    node_max_age_days: int = 180
    peer_max_age_days: int = 365
    psk_max_age_days: int = 365
    ssh_max_age_days: int = 365
    grace: str = "7d"  # default grace of a peer or node key rotation (s, m, h or d)


@dataclass(frozen=True)
class NetworkSettings:
    """The tunnels' IPv6 prefix and the DNS servers client configs name."""

    # The fleet's IPv6 tunnel prefix (a /48: unique local, or the provider's own) for a store
    # created or upgraded with these settings; None: a random RFC 4193 prefix. The store keeps
    # the prefix it started with.
    ipv6_prefix: ipaddress.IPv6Network | None = None
    # DNS servers every client config names; empty: the node's own tunnel addresses (its
    # resolver), IPv4 and IPv6.
    dns_servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    source: str  # the file the settings came from, or "defaults"
    project_root: Path
    data_dir: Path
    # May carry the PostgreSQL password: shown only through redact_url, never in a repr.
    store_url: str = field(repr=False)
    inventory: Path
    ssh: SshSettings
    lab: LabSettings
    usage: UsageSettings = field(default_factory=UsageSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    # The fleet secret's file (None: ``fleet-secret`` in the data directory); a systemd
    # credential ``wgfleet-fleet-secret`` wins over it (adapters/fleet_secret.py).
    fleet_secret: Path | None = None

    @property
    def fleet_secret_file(self) -> Path:
        return self.fleet_secret or self.data_dir / "fleet-secret"

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view for `wgfleet config show`: paths only, never key material."""
        return {
            "source": self.source,
            "project_root": str(self.project_root),
            "data_dir": str(self.data_dir),
            "store_url": redact_url(self.store_url),
            "fleet_secret": str(self.fleet_secret_file),
            "inventory": str(self.inventory),
            "ssh": {
                "deploy_key": str(self.ssh.deploy_key),
                "collector_key": str(self.ssh.collector_key),
                "push_key": str(self.ssh.push_key),
                "known_hosts": str(self.ssh.known_hosts),
                "connect_timeout": self.ssh.connect_timeout,
                "collector_kex": self.ssh.collector_kex,
                "kept_sessions": self.ssh.kept_sessions,
            },
            "usage": {
                "retention_days": self.usage.retention_days,
                "warn_percent": self.usage.warn_percent,
                "sync_interval": self.usage.sync_interval,
                "expiry_warn_days": self.usage.expiry_warn_days,
            },
            "tui": {"refresh_interval": self.tui.refresh_interval},
            "privacy": {
                "node_daily_totals": self.privacy.node_daily_totals,
                "node_daily_retention_days": self.privacy.node_daily_retention_days,
                "topup_retention_days": self.privacy.topup_retention_days,
                "deleted_ledger_retention_days": self.privacy.deleted_ledger_retention_days,
                "allow_contact": self.privacy.allow_contact,
            },
            "notify": {
                "command": list(self.notify.command),
                # A webhook URL may carry a token: only its scheme and host are shown.
                "webhook": webhook_origin(self.notify.webhook),
                "timeout": self.notify.timeout,
            },
            "keys": {
                "node_max_age_days": self.keys.node_max_age_days,
                "peer_max_age_days": self.keys.peer_max_age_days,
                "psk_max_age_days": self.keys.psk_max_age_days,
                "ssh_max_age_days": self.keys.ssh_max_age_days,
                "grace": self.keys.grace,
            },
            "deploy": {"full_every_days": self.deploy.full_every_days},
            "ipv6": {
                "prefix": str(self.network.ipv6_prefix) if self.network.ipv6_prefix else "random"
            },
            "dns": {
                "servers": list(self.network.dns_servers),
                "forwarders": list(self.dns.forwarders),
                "forward_tls": self.dns.forward_tls,
            },
            "lab": {
                "name": self.lab.name,
                "subnet": str(self.lab.subnet),
                "state_dir": str(self.lab.state_dir),
                "rootfs_cache": str(self.lab.rootfs_cache),
                "suite": self.lab.suite,
                "mirror": self.lab.mirror,
            },
        }


_TOP_KEYS = {
    "data_dir",
    "fleet_secret",
    "store_url",
    "inventory",
    "ssh",
    "lab",
    "usage",
    "keys",
    "privacy",
    "notify",
    "deploy",
    "ipv6",
    "dns",
    "tui",
}
_NOTIFY_KEYS = {"command", "webhook", "timeout"}


def _notify_settings(reader: _Reader, raw: object) -> NotifySettings:
    data = reader.mapping(raw, "notify", _NOTIFY_KEYS)
    command = data.get("command", [])
    if isinstance(command, str):
        command = shlex.split(command)
    if not isinstance(command, list) or not all(isinstance(c, str) and c for c in command):
        raise ConfigError(
            reader.source, "notify.command", data.get("command"), "a command line or a list"
        )
    webhook = data.get("webhook")
    if webhook is not None:
        problem = webhook_problem(str(webhook))
        if problem:
            raise ConfigError(
                reader.source, "notify.webhook", webhook_origin(str(webhook)), problem
            )
    timeout = reader.number(data, "timeout", "notify.", 10.0)
    return NotifySettings(tuple(command), str(webhook) if webhook else None, timeout)


def _tui_settings(reader: _Reader, raw: object) -> TuiSettings:
    data = reader.mapping(raw, "tui", {"refresh_interval"})
    interval = data.get("refresh_interval", TuiSettings.refresh_interval)
    low, high = REFRESH_BOUNDS
    meaning = f"0 (never), or a duration from {low}s to {high // 60}m such as 10s or 1m"
    try:
        seconds = parse_duration(str(interval))
    except ValueError:
        raise ConfigError(reader.source, "tui.refresh_interval", interval, meaning) from None
    if seconds and not low <= seconds <= high:
        raise ConfigError(reader.source, "tui.refresh_interval", interval, meaning)
    return TuiSettings(str(interval))


def _dns_settings(reader: _Reader, raw: object) -> DnsSettings:
    data = reader.mapping(raw, "dns", _DNS_KEYS)
    forwarders = data.get("forwarders", [])
    problem = forwarders_problem(forwarders)
    if problem:
        raise ConfigError(reader.source, "dns.forwarders", forwarders, problem)
    forward_tls = data.get("forward_tls", False)
    if not isinstance(forward_tls, bool):
        raise ConfigError(reader.source, "dns.forward_tls", forward_tls, "true or false")
    if forward_tls and not forwarders:
        raise ConfigError(reader.source, "dns.forward_tls", forward_tls, "needs dns.forwarders")
    return DnsSettings(tuple(forwarders), forward_tls)


_PRIVACY_KEYS = {
    "node_daily_totals",
    "node_daily_retention_days",
    "topup_retention_days",
    "deleted_ledger_retention_days",
    "allow_contact",
}
# One `dns` section: the clients' servers (NetworkSettings) and the nodes' upstream (DnsSettings).
_DNS_KEYS = {"servers", "forwarders", "forward_tls"}
_KEY_AGE_FIELDS = ("node_max_age_days", "peer_max_age_days", "psk_max_age_days", "ssh_max_age_days")
_USAGE_KEYS = {"retention_days", "warn_percent", "sync_interval", "expiry_warn_days"}
REFRESH_BOUNDS = (1, 3600)  # the TUI's refresh: at least a second, at most an hour
_SSH_KEYS = {
    "deploy_key",
    "collector_key",
    "push_key",
    "known_hosts",
    "connect_timeout",
    "collector_kex",
    "kept_sessions",
}
KEX_CHOICES = ("curve25519", "post-quantum")
_LAB_KEYS = {"name", "subnet", "state_dir", "rootfs_cache", "suite", "mirror"}


WHOLE_DAYS = "a whole number of days"


class _Reader:
    """Reads typed fields out of the parsed YAML, naming file and field on every error."""

    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def mapping(self, value: object, where: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(self.source, where or "(top level)", value, "expected a mapping")
        for key in value:
            if key not in allowed:
                name = f"{where}.{key}" if where else str(key)
                raise ConfigError(
                    self.source,
                    name,
                    value[key],
                    f"unknown setting (known: {', '.join(sorted(allowed))})",
                )
        return value

    def path(self, data: dict[str, Any], key: str, where: str, default: Path) -> Path:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, str) or not value:
            raise ConfigError(self.source, f"{where}{key}", value, "expected a path")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base / path).resolve()

    def text(self, data: dict[str, Any], key: str, where: str, default: str | None) -> str | None:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, str) or not value:
            raise ConfigError(self.source, f"{where}{key}", value, "expected a non-empty string")
        return value

    def number(self, data: dict[str, Any], key: str, where: str, default: float) -> float:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(self.source, f"{where}{key}", value, "expected a positive number")
        return float(value)

    def whole(
        self,
        data: dict[str, Any],
        key: str,
        where: str,
        default: int,
        *,
        span: tuple[int, int | None],
        meaning: str,
    ) -> int:
        """A whole number within ``span`` (inclusive; None: no upper end), or ConfigError with
        ``meaning``. 30.0 reads as 30: YAML writers put a dot where they mean none."""
        if key not in data:
            return default
        value = data[key]
        low, high = span
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value != int(value)
            or value < low
            or (high is not None and value > high)
        ):
            raise ConfigError(self.source, f"{where}{key}", value, meaning)
        return int(value)


def _lab_subnet(reader: _Reader, data: dict[str, Any]) -> ipaddress.IPv4Network:
    raw = data.get("subnet", "198.18.0.0/20")
    try:
        subnet = ipaddress.ip_network(str(raw), strict=True)
    except ValueError as exc:
        raise ConfigError(reader.source, "lab.subnet", raw, str(exc)) from None
    if not isinstance(subnet, ipaddress.IPv4Network) or not subnet.subnet_of(LAB_NETWORK):
        raise ConfigError(
            reader.source,
            "lab.subnet",
            raw,
            f"must lie inside {LAB_NETWORK} (198.19/16 is for tunnels)",
        )
    if subnet.prefixlen > 24:
        raise ConfigError(reader.source, "lab.subnet", raw, "must be a /24 or larger")
    return subnet


def _network_settings(
    reader: _Reader, ipv6_raw: object, dns_raw: object, lab_inventory: bool
) -> NetworkSettings:
    ipv6 = reader.mapping(ipv6_raw, "ipv6", {"prefix"})
    # The defaults describe the lab fleet (../shared/LAB.md: lab tunnels only in
    # fd00:198:19::/48); any other inventory gets a random prefix unless one is set.
    prefix = LAB_PREFIX if lab_inventory else None
    if "prefix" in ipv6:
        problem = prefix_problem(ipv6["prefix"])
        if problem is not None:
            raise ConfigError(reader.source, "ipv6.prefix", ipv6["prefix"], problem)
        prefix = ipaddress.IPv6Network(str(ipv6["prefix"]))
    dns = reader.mapping(dns_raw, "dns", _DNS_KEYS)
    servers = dns.get("servers", [])
    problem = dns_servers_problem(servers)
    if problem is not None:
        raise ConfigError(reader.source, "dns.servers", servers, problem)
    return NetworkSettings(prefix, tuple(str(ipaddress.ip_address(s)) for s in servers))


def dns_servers_problem(servers: object) -> str | None:
    """Why ``servers`` cannot be the DNS servers of client configs (None: it can)."""
    if not isinstance(servers, list) or len(servers) > 8:
        return "a list of at most 8 IP addresses"
    for server in servers:
        try:
            ipaddress.ip_address(str(server))
        except ValueError:
            return f"{str(server)[:64]!r} is not an IP address"
        if not isinstance(server, str):
            return f"{server!r}: write each address as a string"
    return None


def _key_settings(reader: _Reader, raw: object) -> KeySettings:
    data = reader.mapping(raw, "keys", {*_KEY_AGE_FIELDS, "grace"})
    defaults = KeySettings()
    ages: dict[str, int] = {}
    for name in _KEY_AGE_FIELDS:
        ages[name] = reader.whole(
            data, name, "keys.", getattr(defaults, name), span=(1, None), meaning=WHOLE_DAYS
        )
    grace = str(data.get("grace", defaults.grace))
    try:
        parse_duration(grace)
    except ValueError as exc:
        raise ConfigError(reader.source, "keys.grace", data.get("grace"), str(exc)) from None
    return KeySettings(**ages, grace=grace)


def settings_from_mapping(raw: object, source: str, base: Path) -> Settings:
    """Build settings from parsed YAML (or ``None`` for all defaults)."""
    reader = _Reader(source, base)
    top = reader.mapping(raw, "", _TOP_KEYS)
    root = project_root()
    data_dir = reader.path(top, "data_dir", "", _default_data_dir())
    store_url = reader.text(top, "store_url", "", None) or f"sqlite:///{data_dir / 'wgfleet.db'}"
    inventory = reader.path(top, "inventory", "", root / "inventory" / "lab")

    ssh_raw = reader.mapping(top.get("ssh"), "ssh", _SSH_KEYS)
    keys_dir = data_dir / "keys"
    ssh = SshSettings(
        deploy_key=reader.path(ssh_raw, "deploy_key", "ssh.", keys_dir / "deploy_ed25519"),
        collector_key=reader.path(ssh_raw, "collector_key", "ssh.", keys_dir / "collector_ed25519"),
        push_key=reader.path(ssh_raw, "push_key", "ssh.", keys_dir / "push_ed25519"),
        known_hosts=reader.path(ssh_raw, "known_hosts", "ssh.", inventory / "known_hosts"),
        connect_timeout=reader.number(ssh_raw, "connect_timeout", "ssh.", 10.0),
        collector_kex=reader.text(ssh_raw, "collector_kex", "ssh.", "curve25519") or "curve25519",
        kept_sessions=reader.whole(
            ssh_raw,
            "kept_sessions",
            "ssh.",
            SshSettings.kept_sessions,
            span=(0, None),
            meaning="a whole number of sessions, 0 or more",
        ),
    )
    if ssh.collector_kex not in KEX_CHOICES:
        raise ConfigError(
            source,
            "ssh.collector_kex",
            ssh.collector_kex,
            f"expected one of {', '.join(KEX_CHOICES)}",
        )

    lab_raw = reader.mapping(top.get("lab"), "lab", _LAB_KEYS)
    name = reader.text(lab_raw, "name", "lab.", "lab") or "lab"
    if not LAB_NAME_RE.match(name):
        raise ConfigError(
            source,
            "lab.name",
            name,
            "must be 1-6 lowercase letters or digits, starting with a letter",
        )
    lab = LabSettings(
        name=name,
        subnet=_lab_subnet(reader, lab_raw),
        state_dir=reader.path(lab_raw, "state_dir", "lab.", data_dir / "lab" / name),
        rootfs_cache=reader.path(lab_raw, "rootfs_cache", "lab.", _default_cache_dir() / "rootfs"),
        suite=reader.text(lab_raw, "suite", "lab.", "bookworm") or "bookworm",
        mirror=reader.text(lab_raw, "mirror", "lab.", None),
    )
    usage_raw = reader.mapping(top.get("usage"), "usage", _USAGE_KEYS)
    retention = reader.whole(
        usage_raw,
        "retention_days",
        "usage.",
        400,
        span=(31, None),
        meaning=f"{WHOLE_DAYS}, at least 31 (a monthly period must close before it goes)",
    )
    warn = reader.whole(usage_raw, "warn_percent", "usage.", 80, span=(1, 100), meaning="1..100")
    interval = str(usage_raw.get("sync_interval", UsageSettings.sync_interval))
    try:
        if parse_duration(interval) < 60:
            raise ValueError("at least 1m (cron's resolution)")
    except ValueError as exc:
        raise ConfigError(
            source, "usage.sync_interval", usage_raw.get("sync_interval"), str(exc)
        ) from None
    expiry_warn = reader.whole(
        usage_raw,
        "expiry_warn_days",
        "usage.",
        UsageSettings.expiry_warn_days,
        span=(0, 365),
        meaning=f"{WHOLE_DAYS}, 0..365",
    )
    privacy_raw = reader.mapping(top.get("privacy"), "privacy", _PRIVACY_KEYS)
    daily = privacy_raw.get("node_daily_totals", False)
    if not isinstance(daily, bool):
        raise ConfigError(source, "privacy.node_daily_totals", daily, "true or false")
    kept = reader.whole(
        privacy_raw,
        "node_daily_retention_days",
        "privacy.",
        90,
        span=(1, None),
        meaning=f"{WHOLE_DAYS}, at least 1",
    )
    flags = {}
    for flag in ("allow_contact",):
        flags[flag] = privacy_raw.get(flag, True)
        if not isinstance(flags[flag], bool):
            raise ConfigError(source, f"privacy.{flag}", flags[flag], "true or false")
    ledger_days = {
        name: reader.whole(
            privacy_raw, name, "privacy.", 0, span=(0, None), meaning=f"{WHOLE_DAYS}, 0 to keep"
        )
        for name in ("topup_retention_days", "deleted_ledger_retention_days")
    }
    notify = _notify_settings(reader, top.get("notify"))
    deploy_raw = reader.mapping(top.get("deploy"), "deploy", {"full_every_days"})
    full_every = reader.whole(
        deploy_raw,
        "full_every_days",
        "deploy.",
        DeploySettings.full_every_days,
        span=(0, None),
        meaning=f"{WHOLE_DAYS}, 0 for always",
    )
    return Settings(
        network=_network_settings(
            reader, top.get("ipv6"), top.get("dns"), inventory == root / "inventory" / "lab"
        ),
        notify=notify,
        deploy=DeploySettings(full_every),
        dns=_dns_settings(reader, top.get("dns")),
        privacy=PrivacySettings(
            daily,
            kept,
            topup_retention_days=ledger_days["topup_retention_days"],
            deleted_ledger_retention_days=ledger_days["deleted_ledger_retention_days"],
            allow_contact=flags["allow_contact"],
        ),
        usage=UsageSettings(retention, warn, interval, expiry_warn),
        tui=_tui_settings(reader, top.get("tui")),
        keys=_key_settings(reader, top.get("keys")),
        source=source,
        project_root=root,
        data_dir=data_dir,
        store_url=store_url,
        fleet_secret=reader.path(top, "fleet_secret", "", data_dir / "fleet-secret"),
        inventory=inventory,
        ssh=ssh,
        lab=lab,
    )


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from ``path``, else from ``$WGFLEET_CONFIG``, else the defaults.

    The file is refused by its size before it is read (``SETTINGS_MAX_BYTES``), then read as
    strict YAML (no key twice, no aliases, no tab indentation); every error names the line.
    """
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    if not chosen:
        return settings_from_mapping(None, "defaults", Path.cwd())
    file = Path(chosen).expanduser()
    text = read_text(file, SETTINGS_MAX_BYTES, "a settings file")
    try:
        root = yaml_input.compose(text)
        raw = yaml_input.construct(root)
    except yaml_input.YamlInputError as exc:
        raise ConfigError(str(file), "(file)", exc.value, exc.problem, line=exc.line) from None
    try:
        return settings_from_mapping(raw, str(file), file.resolve().parent)
    except ConfigError as exc:
        if exc.line is not None or exc.source != str(file):
            raise
        raise exc.at_line(yaml_input.field_lines(root).get(exc.field)) from None


# Policies a fleet file applies to the store; they override the settings file so that every
# controller sharing one store enforces the same rules.
POLICY_NAMES = (
    "keys.node_max_age_days",
    "keys.peer_max_age_days",
    "keys.psk_max_age_days",
    "keys.ssh_max_age_days",
    "keys.grace",
    "usage.retention_days",
    "usage.warn_percent",
    "usage.sync_interval",
    "privacy.node_daily_totals",
    "privacy.node_daily_retention_days",
    "privacy.topup_retention_days",
    "privacy.deleted_ledger_retention_days",
    "privacy.allow_contact",
    "dns.servers",
)


def policy_values(settings: Settings) -> dict[str, Any]:
    """The policies in force, by their dotted names."""
    sections = {"keys": settings.keys, "usage": settings.usage, "privacy": settings.privacy}
    values: dict[str, Any] = {}
    for name in POLICY_NAMES:
        section, key = name.split(".")
        if section == "dns":
            values[name] = list(settings.network.dns_servers)
            continue
        values[name] = getattr(sections[section], key)
    return values


def with_policies(settings: Settings, policies: Mapping[str, Any]) -> Settings:
    """``settings`` with the store's policies laid over it (unknown names are ignored)."""
    keys = {k.split(".", 1)[1]: v for k, v in policies.items() if k.startswith("keys.")}
    usage = {k.split(".", 1)[1]: v for k, v in policies.items() if k.startswith("usage.")}
    privacy = {k.split(".", 1)[1]: v for k, v in policies.items() if k.startswith("privacy.")}
    network = settings.network
    if isinstance(policies.get("dns.servers"), list):
        network = replace(network, dns_servers=tuple(str(s) for s in policies["dns.servers"]))
    # A fleet file's dns upstream replaces the settings' whole (its forwarders and TLS); its
    # dns.servers (the clients' DNS) is the network's, above.
    upstream = {
        k.split(".", 1)[1]: v
        for k, v in policies.items()
        if k in ("dns.forwarders", "dns.forward_tls")
    }
    return replace(
        settings,
        network=network,
        dns=DnsSettings(
            tuple(upstream.get("forwarders", ())), bool(upstream.get("forward_tls", False))
        )
        if upstream
        else settings.dns,
        privacy=replace(
            settings.privacy,
            **{k: v for k, v in privacy.items() if hasattr(PrivacySettings, k)},
        ),
        keys=replace(settings.keys, **{k: v for k, v in keys.items() if hasattr(KeySettings, k)}),
        usage=replace(
            settings.usage, **{k: v for k, v in usage.items() if hasattr(UsageSettings, k)}
        ),
    )
