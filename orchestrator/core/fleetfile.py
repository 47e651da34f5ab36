"""The declarative fleet file: what a provider versions in its repository and `plan`/`apply` read.

Parsing is strict and complete: every error names the file, the line, the field and the value,
and all of them are reported at once, before anything is touched. The same rules produce the
file's JSON Schema (`wgfleet schema`), so editors and CI can check a file without wgfleet.
The YAML itself is read by core/yaml_input: no key twice, no anchors or aliases (a reviewed
file means what its lines say), no tab indentation, bounded nesting.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import yaml

from orchestrator.core import yaml_input
from orchestrator.core.addressing import prefix_problem
from orchestrator.core.dns_upstream import MAX_FORWARDERS, forwarders_problem
from orchestrator.core.errors import InvalidInput
from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.keys import parse_duration
from orchestrator.core.node_names import NODE_NAME_PATTERN, node_name_problem
from orchestrator.core.peers import NAME_RE, USERNAME_RE, valid_key
from orchestrator.core.quoting import quote, sanitize
from orchestrator.core.units import SIZE_PATTERN, parse_size

VERSION = 1
PRICE_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,4})?$")
DURATION_PATTERN = r"^(0|[0-9]{1,6}[smhd])$"
# Free text a file may carry (a device id, a contact, a path): a bound, not a format.
TEXT_MAX = 255


@dataclass(frozen=True)
class FleetFileError:
    source: str
    line: int
    field: str
    value: object
    problem: str

    def __str__(self) -> str:
        where = f"{sanitize(self.source, 300)}:{self.line}: {sanitize(self.field, 200)}"
        return f"{where}: {quote(self.value)}: {self.problem}"


class FleetFileInvalid(InvalidInput):
    def __init__(self, errors: list[FleetFileError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str | None = None
    tunnel_network: str | None = None
    port: int | None = None
    implementation: str | None = None
    # Dual-stack: where clients' IPv6 goes (wireguard_ipv6_egress) and which underlay address
    # client Endpoints name (wgfleet_client_endpoint; ipv6 needs the inventory's
    # wgfleet_underlay_address6).
    ipv6_egress: str | None = None
    client_endpoint: str | None = None


@dataclass(frozen=True)
class PlanSpec:
    name: str
    quota_bytes: int
    reset: str = "never"
    anchor_day: int = 1
    price: str | None = None
    validity_days: int | None = None
    valid_until: str | None = None  # YYYY-MM-DD


@dataclass(frozen=True)
class AccountSpec:
    username: str
    device_id: str
    contact: str | None = None


@dataclass(frozen=True)
class ConfigurationSpec:
    """A static configuration (a site link, operator access): it brings its own public key."""

    name: str
    account: str
    nodes: tuple[str, ...]
    public_key: str
    plan: str | None = None
    quota_bytes: int | None = None  # None: unmetered unless a plan says otherwise
    enabled: bool = True


@dataclass(frozen=True)
class Policies:
    keys: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    sync_interval: str | None = None
    privacy: dict[str, Any] = field(default_factory=dict)
    # The DNS servers every client config names (None: the nodes' own resolvers).
    dns_servers: tuple[str, ...] | None = None
    # The fleet file's top-level dns section (the nodes' resolver upstream): forwarders,
    # forward_tls. Kept with the policies (store names dns.forwarders, dns.forward_tls).
    dns: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetFile:
    source: str
    inventory: str | None = None
    nodes: tuple[NodeSpec, ...] = ()
    plans: tuple[PlanSpec, ...] = ()
    accounts: tuple[AccountSpec, ...] = ()
    configurations: tuple[ConfigurationSpec, ...] = ()
    policies: Policies = field(default_factory=Policies)
    # The fleet's IPv6 tunnel prefix (a /48: unique local, or the provider's own); None: the
    # store's stays.
    ipv6_prefix: str | None = None


# --- the rules, written once: the parser and the JSON Schema both read them --------------------

_STR = {"type": "string", "maxLength": TEXT_MAX}
_PATH = {"type": "string", "maxLength": 4096, "description": "Ansible inventory path"}
_NAME = {"type": "string", "pattern": NAME_RE.pattern}
_NODE = {
    "type": "string",
    "pattern": NODE_NAME_PATTERN,
    "not": {"enum": ["all", "ungrouped", "localhost"]},
}
_SIZE = {
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_BYTES},
        {"type": "string", "pattern": SIZE_PATTERN},
    ]
}
_DURATION = {"type": "string", "pattern": DURATION_PATTERN}
_DAYS = {"type": "integer", "minimum": 1}

NODE_FIELDS: dict[str, dict[str, Any]] = {
    "address": {"type": "string", "format": "ipv4"},
    "tunnel_network": {"type": "string", "description": "IPv4 network, e.g. 198.19.1.0/24"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "implementation": {"enum": ["kernel", "userspace"]},
    "ipv6_egress": {"enum": ["nat66", "routed", "off"]},
    "client_endpoint": {"enum": ["ipv4", "ipv6"]},
}
PLAN_FIELDS: dict[str, dict[str, Any]] = {
    "quota": _SIZE,
    "reset": {"enum": ["never", "monthly"]},
    "anchor_day": {"type": "integer", "minimum": 1, "maximum": 28},
    "price": {"type": "string", "pattern": PRICE_RE.pattern},
    "validity_days": {"type": "integer", "minimum": 1},
    "valid_until": {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
}
ACCOUNT_FIELDS: dict[str, dict[str, Any]] = {"device_id": _STR, "contact": _STR}
CONFIGURATION_FIELDS: dict[str, dict[str, Any]] = {
    "name": _NAME,
    "account": {"type": "string", "pattern": USERNAME_RE.pattern},
    "nodes": {"type": "array", "items": _NODE, "minItems": 1, "uniqueItems": True},
    "public_key": {"type": "string", "pattern": "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"},
    "plan": _NAME,
    "quota": {"oneOf": [_SIZE, {"const": "unmetered"}]},
    "enabled": {"type": "boolean"},
}
KEY_POLICY_FIELDS: dict[str, dict[str, Any]] = {
    "node_max_age_days": _DAYS,
    "peer_max_age_days": _DAYS,
    "psk_max_age_days": _DAYS,
    "ssh_max_age_days": _DAYS,
    "grace": _DURATION,
}
USAGE_POLICY_FIELDS: dict[str, dict[str, Any]] = {
    "retention_days": {"type": "integer", "minimum": 31},
    "warn_percent": {"type": "integer", "minimum": 1, "maximum": 100},
}
PRIVACY_POLICY_FIELDS: dict[str, dict[str, Any]] = {
    "node_daily_totals": {"type": "boolean"},
    "node_daily_retention_days": _DAYS,
    "topup_retention_days": {"type": "integer", "minimum": 0},
    "deleted_ledger_retention_days": {"type": "integer", "minimum": 0},
    "allow_contact": {"type": "boolean"},
}
# The nodes' resolver upstream (role resolver); settings dns.* give the same.
DNS_FIELDS: dict[str, dict[str, Any]] = {
    "forwarders": {
        "type": "array",
        "items": {"type": "string", "maxLength": 300},
        "maxItems": MAX_FORWARDERS,
        "description": "ADDRESS, ADDRESS@PORT or ADDRESS@PORT#TLS-NAME; empty: recursion",
    },
    "forward_tls": {"type": "boolean"},
}

REQUIRED = {
    "plan": ["quota"],
    "account": ["device_id"],
    "configuration": ["name", "account", "nodes", "public_key"],
}


def json_schema() -> dict[str, Any]:
    def obj(
        props: dict[str, Any], required: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return {**schema, **extra}

    def named(item: dict[str, Any], names: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "type": "object",
            "propertyNames": names or {"pattern": NAME_RE.pattern},
            "additionalProperties": item,
        }

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://wgfleet.invalid/fleet-file.schema.json",
        "title": "wgfleet fleet file",
        **obj(
            {
                "version": {"const": VERSION},
                "inventory": _PATH,
                "nodes": named(obj(NODE_FIELDS), _NODE),
                "plans": named(obj(PLAN_FIELDS, REQUIRED["plan"])),
                "accounts": named(obj(ACCOUNT_FIELDS, REQUIRED["account"])),
                "configurations": {
                    "type": "array",
                    "items": obj(CONFIGURATION_FIELDS, REQUIRED["configuration"]),
                },
                "ipv6": obj(
                    {
                        "prefix": {
                            "type": "string",
                            "description": "the fleet's IPv6 tunnel /48 (unique local or the "
                            "provider's own), e.g. "
                            "fd12:3456:789a::/48; fixed once a node has its /64",
                        }
                    }
                ),
                "dns": obj(DNS_FIELDS),
                "policies": obj(
                    {
                        "keys": obj(KEY_POLICY_FIELDS),
                        "usage": obj(USAGE_POLICY_FIELDS),
                        "privacy": obj(PRIVACY_POLICY_FIELDS),
                        "dns": obj(
                            {
                                "servers": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                    "maxItems": 8,
                                    "description": "IP addresses client configs name as DNS "
                                    "(default: each node's tunnel addresses, its resolver)",
                                }
                            }
                        ),
                        "sync_interval": _DURATION,
                    }
                ),
            },
            ["version"],
        ),
    }


# --- parsing with line numbers -----------------------------------------------------------------


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[FleetFileError] = []

    def error(self, node: yaml.Node, where: str, value: object, problem: str) -> None:
        self.errors.append(
            FleetFileError(self.source, node.start_mark.line + 1, where, value, problem)
        )

    def mapping(
        self, node: yaml.Node | None, where: str, allowed: Collection[str] | None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """key -> (key node, value node); unknown keys are errors when ``allowed`` is given."""
        if node is None:
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where or "(top level)", _plain(node), "expected a mapping")
            return {}
        found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            name = f"{where}.{key}" if where else key
            if key in found:
                self.error(key_node, name, key, "given twice")
            elif allowed is not None and key not in allowed:
                known = ", ".join(sorted(allowed))
                self.error(key_node, name, key, f"unknown field (known: {known})")
            else:
                found[key] = (key_node, value_node)
        return found

    def scalar(self, node: yaml.Node, where: str, rule: dict[str, Any]) -> Any:
        value = _plain(node)
        problem = _check(value, rule)
        if problem:
            self.error(node, where, value, problem)
            return None
        return value


def _plain(node: yaml.Node) -> Any:
    """The node's value; a date stays its text (the rules check dates as YYYY-MM-DD strings),
    and a scalar YAML cannot build (a timestamp such as 2026-13-45) is kept as written, for
    the rules to refuse with its line instead of a traceback."""
    if node is None:
        return None
    try:
        value = yaml_input.construct(node)
    except ValueError:
        return node.value if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, date):
        return value.isoformat()
    return value


def _check(value: Any, rule: dict[str, Any]) -> str | None:
    """The subset of JSON Schema the rules above use, checked on one value."""
    if "oneOf" in rule:
        problems = [_check(value, option) for option in rule["oneOf"]]
        if any(p is None for p in problems):
            return None
        # Explain against the option of the value's own kind (a string against the pattern).
        wanted = "string" if isinstance(value, str) else "integer"
        for option, problem in zip(rule["oneOf"], problems, strict=True):
            if option.get("type") == wanted or "oneOf" in option:
                return problem
        return problems[0]
    if "const" in rule:
        return None if value == rule["const"] else f"must be {rule['const']!r}"
    if "enum" in rule:
        return None if value in rule["enum"] else f"one of {', '.join(rule['enum'])}"
    kind = rule.get("type")
    if kind == "string":
        if not isinstance(value, str) or not value:
            return "expected a non-empty string"
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            return f"at most {rule['maxLength']} characters"
        # fullmatch: a pattern's `$` alone would let a trailing newline through.
        if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
            return _PATTERN_HINTS.get(rule["pattern"], f"does not match {rule['pattern']}")
        if rule.get("format") == "ipv4":
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                return "expected an IPv4 address"
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected a whole number"
        if "minimum" in rule and value < rule["minimum"]:
            return f"at least {rule['minimum']}"
        if "maximum" in rule and value > rule["maximum"]:
            return f"at most {rule['maximum']}"
    elif kind == "boolean" and not isinstance(value, bool):
        return "expected true or false"
    return None


_PATTERN_HINTS = {
    NAME_RE.pattern: "use lowercase letters, digits, '.', '_' or '-'",
    DURATION_PATTERN: "a duration such as 30s, 15m, 12h or 7d",
    SIZE_PATTERN: "a size such as 10GiB, 500MB or a number of bytes",
    PRICE_RE.pattern: "a decimal amount such as 4.99",
    "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$": "not a WireGuard public key",
}


def parse_fleet_file(text: str, source: str) -> FleetFile:
    """The fleet file in ``text``; raises FleetFileInvalid listing every error at once."""
    reader = _Reader(source)
    try:
        root = yaml_input.compose(text, aliases=False)
    except yaml_input.YamlInputError as exc:
        raise FleetFileInvalid(
            [FleetFileError(source, exc.line, "(file)", exc.value, exc.problem)]
        ) from None
    if root is None:
        raise FleetFileInvalid([FleetFileError(source, 1, "version", None, "missing")])
    top_fields = {"version", "inventory", "nodes", "plans", "accounts", "configurations"}
    top = reader.mapping(root, "", {*top_fields, "policies", "ipv6", "dns"})
    if "version" not in top:
        reader.error(root, "version", None, f"missing (write version: {VERSION})")
    else:
        reader.scalar(top["version"][1], "version", {"const": VERSION})
    inventory = None
    if "inventory" in top:
        inventory = reader.scalar(top["inventory"][1], "inventory", _PATH)
    nodes = _nodes(reader, top.get("nodes"))
    plans = _plans(reader, top.get("plans"))
    accounts = _accounts(reader, top.get("accounts"))
    configurations = _configurations(reader, top.get("configurations"))
    policies = replace(_policies(reader, top.get("policies")), dns=_dns(reader, top.get("dns")))
    ipv6_prefix = _ipv6_prefix(reader, top.get("ipv6"))
    _cross_check(reader, top, plans, accounts, configurations, nodes, inventory)
    if reader.errors:
        raise FleetFileInvalid(sorted(reader.errors, key=lambda e: (e.line, e.field)))
    return FleetFile(
        source, inventory, nodes, plans, accounts, configurations, policies, ipv6_prefix
    )


def _ipv6_prefix(reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None) -> str | None:
    """``ipv6.prefix``: the fleet's IPv6 tunnel /48 (unique local or global unicast), canonical."""
    node = _only_field(reader, entry, "ipv6", "prefix")
    if node is None:
        return None
    value = _plain(node)
    problem = prefix_problem(value)
    if problem is not None:
        reader.error(node, "ipv6.prefix", value, problem)
        return None
    return str(ipaddress.IPv6Network(str(value)))


def _only_field(
    reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None, where: str, field: str
) -> yaml.Node | None:
    """The value node of a section that holds one setting (``ipv6: {prefix: ...}``); any other
    key in it is an error."""
    if entry is None:
        return None
    values = reader.mapping(entry[1], where, {field: 1})
    return values[field][1] if field in values else None


def _named(
    reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None, section: str
) -> list[tuple[str, yaml.Node, dict[str, tuple[yaml.Node, yaml.Node]]]]:
    if entry is None:
        return []
    fields = {
        "nodes": NODE_FIELDS,
        "plans": PLAN_FIELDS,
        "accounts": ACCOUNT_FIELDS,
    }[section]
    found = []
    for name, (key_node, value_node) in reader.mapping(entry[1], section, None).items():
        if section == "nodes":
            problem = node_name_problem(name)
        else:
            pattern = USERNAME_RE if section == "accounts" else NAME_RE
            problem = None if pattern.fullmatch(name) else _PATTERN_HINTS[NAME_RE.pattern]
        if problem is not None:
            reader.error(key_node, f"{section}.{name}", name, problem)
            continue
        found.append((name, key_node, reader.mapping(value_node, f"{section}.{name}", fields)))
    return found


def _fields(
    reader: _Reader,
    values: dict[str, tuple[yaml.Node, yaml.Node]],
    where: str,
    rules: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        key: reader.scalar(value_node, f"{where}.{key}", rules[key])
        for key, (_k, value_node) in values.items()
        if key in rules and rules[key].get("type") != "array"
    }


def _nodes(reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[NodeSpec, ...]:
    specs = []
    for name, _key, values in _named(reader, entry, "nodes"):
        got = _fields(reader, values, f"nodes.{name}", NODE_FIELDS)
        network = got.get("tunnel_network")
        if network is not None:
            try:
                ipaddress.IPv4Network(network, strict=True)
            except ValueError as exc:
                reader.error(
                    values["tunnel_network"][1], f"nodes.{name}.tunnel_network", network, str(exc)
                )
        specs.append(
            NodeSpec(
                name,
                got.get("address"),
                network,
                got.get("port"),
                got.get("implementation"),
                got.get("ipv6_egress"),
                got.get("client_endpoint"),
            )
        )
    return tuple(specs)


def _giving(
    reader: _Reader,
    entry: tuple[yaml.Node, yaml.Node] | None,
    section: str,
    required: str,
    fields: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, dict[str, tuple[yaml.Node, yaml.Node]], dict[str, Any]]]:
    """Each named entry of ``section`` that gives ``required``: its name, its nodes and its
    fields as read. An entry without ``required`` is an error and is passed over."""
    for name, key, values in _named(reader, entry, section):
        if required not in values:
            reader.error(key, f"{section}.{name}.{required}", None, "missing")
            continue
        yield name, values, _fields(reader, values, f"{section}.{name}", fields)


def _plans(reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[PlanSpec, ...]:
    specs = []
    for name, values, got in _giving(reader, entry, "plans", "quota", PLAN_FIELDS):
        if got.get("quota") is None:
            continue
        try:
            quota = parse_size(got["quota"])
        except ValueError as exc:
            reader.error(values["quota"][1], f"plans.{name}.quota", got["quota"], str(exc))
            continue
        if got.get("valid_until") is not None:
            try:
                date.fromisoformat(got["valid_until"])
            except ValueError:
                reader.error(
                    values["valid_until"][1],
                    f"plans.{name}.valid_until",
                    got["valid_until"],
                    "not a calendar date (YYYY-MM-DD)",
                )
                continue
        specs.append(
            PlanSpec(
                name,
                quota,
                got.get("reset") or "never",
                got.get("anchor_day") or 1,
                got.get("price"),
                got.get("validity_days"),
                got.get("valid_until"),
            )
        )
    return tuple(specs)


def _accounts(
    reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None
) -> tuple[AccountSpec, ...]:
    specs = []
    for name, _values, got in _giving(reader, entry, "accounts", "device_id", ACCOUNT_FIELDS):
        if got.get("device_id") is not None:
            specs.append(AccountSpec(name, got["device_id"], got.get("contact")))
    return tuple(specs)


def _configurations(
    reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None
) -> tuple[ConfigurationSpec, ...]:
    if entry is None:
        return ()
    node = entry[1]
    if not isinstance(node, yaml.SequenceNode):
        reader.error(node, "configurations", _plain(node), "expected a list")
        return ()
    specs = []
    for index, item in enumerate(node.value):
        where = f"configurations[{index}]"
        values = reader.mapping(item, where, CONFIGURATION_FIELDS)
        named = _plain(values["name"][1]) if "name" in values else None
        if isinstance(named, str) and NAME_RE.fullmatch(named):
            where = f"configurations.{named}"
        missing = [f for f in REQUIRED["configuration"] if f not in values]
        for name in missing:
            reader.error(item, f"{where}.{name}", None, "missing")
        got = _fields(reader, values, where, CONFIGURATION_FIELDS)
        nodes: list[str] = []
        if "nodes" in values:
            nodes_node = values["nodes"][1]
            plain = _plain(nodes_node)
            if not isinstance(plain, list) or not plain:
                reader.error(nodes_node, f"{where}.nodes", plain, "a list of node names")
            elif any(node_name_problem(n) for n in plain):
                bad = next(n for n in plain if node_name_problem(n))
                reader.error(nodes_node, f"{where}.nodes", bad, str(node_name_problem(bad)))
            elif len(set(plain)) != len(plain):
                reader.error(nodes_node, f"{where}.nodes", plain, "a node is listed twice")
            else:
                nodes = [str(n) for n in plain]
        quota = got.get("quota")
        try:
            quota_bytes = None if quota in (None, "unmetered") else parse_size(quota)
        except ValueError as exc:
            reader.error(values["quota"][1], f"{where}.quota", quota, str(exc))
            continue
        if got.get("public_key") and not valid_key(got["public_key"]):
            continue
        if missing or None in (got.get("name"), got.get("account"), got.get("public_key")):
            continue
        specs.append(
            ConfigurationSpec(
                got["name"],
                got["account"],
                tuple(sorted(nodes)),
                got["public_key"],
                got.get("plan"),
                quota_bytes,
                True if got.get("enabled") is None else bool(got["enabled"]),
            )
        )
    return tuple(specs)


def _policies(reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None) -> Policies:
    if entry is None:
        return Policies()
    sections = {"keys": 1, "usage": 1, "privacy": 1, "sync_interval": 1, "dns": 1}
    values = reader.mapping(entry[1], "policies", sections)
    dns_servers = _dns_servers(reader, values.get("dns"))
    keys = _fields(
        reader,
        reader.mapping(values.get("keys", (None, None))[1], "policies.keys", KEY_POLICY_FIELDS),
        "policies.keys",
        KEY_POLICY_FIELDS,
    )
    usage = _fields(
        reader,
        reader.mapping(values.get("usage", (None, None))[1], "policies.usage", USAGE_POLICY_FIELDS),
        "policies.usage",
        USAGE_POLICY_FIELDS,
    )
    privacy = _fields(
        reader,
        reader.mapping(
            values.get("privacy", (None, None))[1], "policies.privacy", PRIVACY_POLICY_FIELDS
        ),
        "policies.privacy",
        PRIVACY_POLICY_FIELDS,
    )
    interval = None
    if "sync_interval" in values:
        interval = reader.scalar(values["sync_interval"][1], "policies.sync_interval", _DURATION)
        if interval is not None:
            parse_duration(interval)
    return Policies(
        {k: v for k, v in keys.items() if v is not None},
        {k: v for k, v in usage.items() if v is not None},
        interval,
        {k: v for k, v in privacy.items() if v is not None},
        dns_servers,
    )


def _dns_servers(
    reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None
) -> tuple[str, ...] | None:
    """``policies.dns.servers``: at most 8 IP addresses, each in its canonical form."""
    node = _only_field(reader, entry, "policies.dns", "servers")
    if node is None:
        return None
    plain = _plain(node)
    if not isinstance(plain, list) or len(plain) > 8:
        reader.error(node, "policies.dns.servers", plain, "a list of at most 8 IP addresses")
        return None
    servers = []
    for server in plain:
        try:
            servers.append(str(ipaddress.ip_address(str(server))))
        except ValueError:
            reader.error(node, "policies.dns.servers", server, "not an IP address")
            return None
    return tuple(servers)


def _dns(reader: _Reader, entry: tuple[yaml.Node, yaml.Node] | None) -> dict[str, Any]:
    if entry is None:
        return {}
    values = reader.mapping(entry[1], "dns", DNS_FIELDS)
    found = {k: v for k, v in _fields(reader, values, "dns", DNS_FIELDS).items() if v is not None}
    if "forwarders" in values:
        node = values["forwarders"][1]
        forwarders = _plain(node)
        problem = forwarders_problem(forwarders)
        if problem:
            reader.error(node, "dns.forwarders", forwarders, problem)
        else:
            found["forwarders"] = forwarders
    if found.get("forward_tls") and not found.get("forwarders"):
        reader.error(entry[1], "dns.forward_tls", True, "needs dns.forwarders")
    return found


def _cross_check(
    reader: _Reader,
    top: dict[str, tuple[yaml.Node, yaml.Node]],
    plans: tuple[PlanSpec, ...],
    accounts: tuple[AccountSpec, ...],
    configurations: tuple[ConfigurationSpec, ...],
    nodes: tuple[NodeSpec, ...],
    inventory: str | None,
) -> None:
    """References between sections: plans, accounts and nodes a configuration names."""
    if "configurations" not in top or not isinstance(top["configurations"][1], yaml.SequenceNode):
        return
    items = top["configurations"][1].value
    plan_names = {p.name for p in plans}
    account_names = {a.username for a in accounts}
    node_names = {n.name for n in nodes}
    seen: dict[str, int] = {}
    keys: dict[str, int] = {}
    by_name = {c.name: c for c in configurations}
    for item in items:
        values = (
            {str(k.value): v for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
        )
        name = _plain(values["name"]) if "name" in values else None
        config = by_name.get(str(name)) if name is not None else None
        if config is None:
            continue
        where = f"configurations.{config.name}"
        if config.name in seen:
            reader.error(values["name"], f"{where}.name", config.name, "given twice")
        seen[config.name] = 1
        if config.public_key in keys:
            reader.error(
                values["public_key"],
                f"{where}.public_key",
                config.public_key,
                "used by another configuration",
            )
        keys[config.public_key] = 1
        if config.plan is not None and config.plan not in plan_names:
            reader.error(values["plan"], f"{where}.plan", config.plan, "no such plan in this file")
        if "plan" in values and "quota" in values:
            reader.error(
                values["quota"],
                f"{where}.quota",
                _plain(values["quota"]),
                "give a plan or a quota, not both",
            )
        if config.account not in account_names:
            reader.error(
                values["account"],
                f"{where}.account",
                config.account,
                "no such account in this file",
            )
        if node_names and inventory is None:
            for node in config.nodes:
                if node not in node_names:
                    reader.error(
                        values["nodes"], f"{where}.nodes", node, "no such node in this file"
                    )
