"""No secret leaves its file: a demo-style run through the `wgfleet` command, then canaries
grepped for in everything it left.

On the session lab (SQLite store): an account with a canary password, configurations whose
client private keys and preshared keys are the canary keys, traffic, sync, apply, audit,
usage, rotations, exports, config show, db commands, refused calls and `--json` variants.
Every stdout and stderr is kept; then every file under the lab's base directory (data
directory, store with its -wal and -shm, Ansible's artifacts, inventory, the nodes' disks)
and the test's own directory is read as bytes. A client private key may be found only in the
file it was delivered to; a preshared key there and on the nodes' /etc/wireguard (where
WireGuard needs it: the store holds it sealed under the fleet secret); the fleet secret only
in its own file, also after its rotation; the account password nowhere.

A second controller given only the settings, the fleet secret, its own copy of the SSH keys
and the store's URL pushes a configuration the first made, with its preshared key, and a
client's tunnel through it carries traffic; one without the secret is refused before it
changes anything.

Against a real PostgreSQL whose role needs a password: the same for the store password (no
output, no file, no error line), and a pg_dump of the store holds no key.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator.adapters.lab.clients import ping_from
from tests.conftest import Lab
from tests.integration.fleet_lab import wgfleet_with
from tests.worker_space import unreached_node_address

KEY_LINE = re.compile(r"^(PrivateKey|PresharedKey) = ([A-Za-z0-9+/]{43}=)$", re.MULTILINE)


@dataclass
class Run:
    """The `wgfleet` command against one settings file; every output kept for the grep."""

    config: Path
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (command, stdout+stderr)
    asked: list[str] = field(default_factory=list)  # stdout asked for with `--out -`
    seconds: list[tuple[float, str]] = field(default_factory=list)  # shown with `pytest -s`

    def __call__(
        self, *args: str | Path, code: int | tuple[int, ...] = 0, stdin: str | None = None
    ) -> str:
        argv = [str(a) for a in args]
        started = time.monotonic()
        result = wgfleet_with(self.config, *argv, stdin=stdin, timeout=300)
        self.seconds.append((round(time.monotonic() - started, 2), " ".join(argv)))
        codes = (code,) if isinstance(code, int) else code
        assert result.returncode in codes, f"{argv}: {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        if "--out" in argv and argv[argv.index("--out") + 1] == "-":
            self.asked.append(result.stdout)  # the destination the caller chose
            self.outputs.append((" ".join(argv), result.stderr))
        else:
            self.outputs.append((" ".join(argv), result.stdout + result.stderr))
        return result.stdout


def key_lines(texts: Iterable[str]) -> dict[str, str]:
    """Every PrivateKey / PresharedKey value in ``texts``, with its kind."""
    return {value: kind for text in texts for kind, value in KEY_LINE.findall(text)}


def files_holding(roots: Iterable[Path], needle: bytes) -> list[Path]:
    """Files under ``roots`` holding ``needle``; overlay mount points are skipped (a node's
    writes are walked in its upper directory)."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if {"merged", "work"} & set(path.parts) or not path.is_file() or path.is_symlink():
                continue
            try:
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def outputs_holding(run: Run, needle: str) -> list[str]:
    return [command for command, text in run.outputs if needle in text]


@pytest.mark.lab
def test_canary_keys_and_password_stay_in_their_own_files(
    lab: Lab, deployed: None, layout, tmp_path: Path
) -> None:
    run = Run(lab.config_file)
    password = f"canary-account-{secrets.token_hex(8)}"
    client, node = layout.clients[0], layout.nodes[0]
    own = {name: tmp_path / name for name in ("c1.conf", "c1.psk", "c2.json", "c2b.conf")}

    add_account = ("accounts", "add", "canary", "--device-id", "dev-canary", "--password-stdin")
    run(*add_account, stdin=password + "\n")
    run("peers", "add", "canary", "--nodes", "node1", "--name", "canary-1", "--out", own["c1.conf"])
    run("--json", "peers", "add", "canary", "--nodes", "node2", "--name", "canary-2", "--out", "-")
    own["c2.json"].write_text(run.asked[-1])  # as a pipeline saves what it asked for
    # Refused before any change: a pipe, --json without --out, an unknown node.
    before = run("--json", "peers", "list")
    run("peers", "add", "canary", "--nodes", "node1", code=2)
    run("--json", "keys", "rotate", "peer", "canary-1", code=2)
    run("keys", "rotate", "psk", "canary-1", code=2)
    run("peers", "add", "canary", "--nodes", "nosuch", "--out", str(tmp_path / "x.conf"), code=2)
    assert run("--json", "peers", "list") == before and not (tmp_path / "x.conf").exists()

    run("lab", "tunnel", "up", client.name, str(own["c1.conf"]))
    try:
        assert ping_from(client.netns, str(node.tunnel_address), count=3, wait=2).returncode == 0
        run("sync", "-v")
        run("--json", "sync")
    finally:
        run("lab", "tunnel", "down", client.name)
    run("--json", "apply", "--dry-run")
    run("apply")
    run("--json", "audit", "--limit", "node1", code=(0, 1))
    run("usage", "list")
    run("--json", "usage", "list")
    run("usage", "check")
    first_secret = (lab.settings.fleet_secret_file).read_text().strip()
    run("--json", "keys", "rotate", "fleet-secret")
    fleet_secret = (lab.settings.fleet_secret_file).read_text().strip()
    assert fleet_secret != first_secret
    run("keys", "rotate", "psk", "canary-1", "--out", str(own["c1.psk"]))
    run("keys", "rotate", "peer", "canary-2", "--grace", "0s", "--out", str(own["c2b.conf"]))
    public_key = json.loads(run("--json", "peers", "show", "canary-1"))["public_key"]
    run("accounts", "export", "canary")
    run("accounts", "export", "canary", "-o", str(tmp_path / "export.json"))
    run("export")
    run("--json", "export")
    run("config", "show")
    run("--json", "config", "show")
    run("db", "upgrade")
    run("--json", "db", "scrub")
    run("--json", "privacy", "report", code=(0, 1))

    delivered = json.loads(own["c2.json"].read_text())["client_configs"].values()
    keys = key_lines([*(p.read_text() for p in own.values() if p.suffix != ".json"), *delivered])
    assert sorted(keys.values()).count("PrivateKey") == 3  # canary-1, canary-2 and its rotation
    assert sorted(keys.values()).count("PresharedKey") == 4
    roots = [lab.base, tmp_path]
    data = lab.settings.data_dir
    nodes_dir = lab.settings.lab.state_dir / "nodes"
    # The grep sees what it must: the store's raw files, the secrets, the nodes' disks.
    assert {p.name for p in files_holding(roots, public_key.encode())} & {
        "wgfleet.db",
        "wgfleet.db-wal",
    }
    (current_psk,) = key_lines([own["c1.psk"].read_text()])
    holders = files_holding(roots, current_psk.encode())
    assert any(nodes_dir / "node1" in p.parents for p in holders), holders
    for secret in (first_secret, fleet_secret):
        assert outputs_holding(run, secret) == []
        assert files_holding(roots, secret.encode()) == (
            [lab.settings.fleet_secret_file] if secret == fleet_secret else []
        )
    try:
        for value, kind in keys.items():
            needle = value.encode()
            allowed = {p for p in own.values() if needle in p.read_bytes()}
            assert allowed, f"a canary {kind} is in none of its own files"
            stray = []
            for path in files_holding(roots, needle):
                on_node = nodes_dir in path.parents
                if path in allowed:
                    continue
                if kind == "PresharedKey" and on_node and "wireguard" in path.parts:
                    continue  # the node's own copy (the controller's is sealed in the store)
                stray.append(path)
            assert stray == [], f"a canary {kind} escaped into {stray}"
            assert outputs_holding(run, value) == [], f"a canary {kind} was printed"
        assert files_holding(roots, password.encode()) == []
        assert outputs_holding(run, password) == []
    finally:
        run("accounts", "delete", "canary", "--yes")
        print(*sorted(run.seconds, reverse=True)[:10], sep="\n")  # where the time goes
    assert outputs_holding(run, password) == []
    for value in keys:
        assert outputs_holding(run, value) == []
    assert not (data / "secrets").exists()


@pytest.mark.lab
def test_a_second_controller_with_the_fleet_secret_pushes_the_first_ones_preshared_key(
    lab: Lab, deployed: None, layout, tmp_path: Path
) -> None:
    """The second controller has a data directory of its own: the settings, a copy of the
    fleet secret and of the SSH keys, the store's URL; no secrets/ file, nothing else."""
    first = Run(lab.config_file)
    client, node = layout.clients[0], layout.nodes[0]
    conf = tmp_path / "relay.conf"
    first(
        "accounts",
        "add",
        "relay",
        "--device-id",
        "dev-relay",
        "--password-stdin",
        stdin="relay-password\n",
    )
    first("peers", "add", "relay", "--nodes", "node1", "--name", "relay-1", "--out", conf)
    first("peers", "disable", "relay-1")  # off node1: only the second controller puts it back

    def controller(name: str, *, with_secret: bool) -> Run:
        data = tmp_path / name
        data.mkdir(mode=0o700)
        shutil.copytree(lab.settings.data_dir / "keys", data / "keys")
        if with_secret:
            shutil.copy2(lab.settings.fleet_secret_file, data / "fleet-secret")
        config = tmp_path / f"{name}.yml"
        config.write_text(
            lab.config_file.read_text().replace(f"data_dir: {lab.settings.data_dir}", "")
            + f"data_dir: {data}\nstore_url: '{lab.settings.store_url}'\n"
        )
        return Run(config)

    try:
        refused = controller("third", with_secret=False)
        before = first("--json", "peers", "show", "relay-1")
        refused("peers", "enable", "relay-1", code=2)
        assert "fleet_secret" in refused.outputs[-1][1] and "missing" in refused.outputs[-1][1]
        assert first("--json", "peers", "show", "relay-1") == before  # nothing changed
        second = controller("second", with_secret=True)
        second("peers", "enable", "relay-1")
        assert not (tmp_path / "second" / "secrets").exists()
        first("lab", "tunnel", "up", client.name, str(conf))
        assert ping_from(client.netns, str(node.tunnel_address), count=3, wait=2).returncode == 0
    finally:
        first("lab", "tunnel", "down", client.name, code=(0, 1, 2))
        first("accounts", "delete", "relay", "--yes")


PG_PASSWORD = f"Cn4ry{secrets.token_hex(10)}"


def test_the_store_password_and_keys_stay_out_of_a_postgresql_run(
    postgres_server: str, tmp_path: Path
) -> None:
    """No lab needed: the store's nodes are pinned nowhere, so every push is refused before
    a packet leaves (exit 1), while the store, the secrets and every output are real."""
    import base64
    import ipaddress
    from datetime import date

    from orchestrator.adapters.store import open_store
    from orchestrator.core.models import Node
    from tests.pgserver import password_database, pg_dump

    url = password_database(postgres_server, PG_PASSWORD)
    config = tmp_path / "settings.yml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nstore_url: '{url}'\ninventory: {tmp_path}\n"
        f"ssh: {{known_hosts: {tmp_path / 'pinned-nowhere'}, connect_timeout: 1}}\n"
    )
    run = Run(config)
    run("db", "upgrade")
    store = open_store(url)
    try:
        for index in (1, 2):
            store.upsert_node(
                Node(
                    f"node{index}",
                    unreached_node_address(index),
                    ipaddress.IPv4Network(f"198.19.{200 + index}.0/24"),
                    public_key=base64.b64encode(bytes([index]) * 32).decode(),
                    key_created_on=date.today(),
                )
            )
    finally:
        store.close()
    account_password = f"canary-account-{secrets.token_hex(8)}"
    conf = tmp_path / "pg.conf"
    add_account = ("accounts", "add", "pgcanary", "--device-id", "d", "--password-stdin")
    run(*add_account, stdin=account_password + "\n")
    run("peers", "add", "pgcanary", "--all-nodes", "--out", str(conf), code=1)
    run("--json", "peers", "add", "pgcanary", "--nodes", "node1", "--out", "-", code=1)
    run("keys", "rotate", "psk", "pgcanary-1", "--out", str(tmp_path / "pg.psk"), code=1)
    run("--json", "sync", code=1)
    for argv in (
        ("config", "show"),
        ("--json", "config", "show"),
        ("--json", "db", "upgrade"),
        ("db", "scrub"),
        ("--json", "peers", "list"),
        ("usage", "list"),
        ("usage", "check"),
        ("accounts", "export", "pgcanary"),
        ("export",),
        ("--json", "keys", "status"),
    ):
        run(*argv)
    wrong = tmp_path / "wrong.yml"
    wrong.write_text(config.read_text().replace(PG_PASSWORD, PG_PASSWORD[::-1]))
    refused = Run(wrong)
    refused("peers", "list", code=4)
    refused("db", "upgrade", code=4)
    run.outputs += refused.outputs

    dump = pg_dump(url.replace(f"wgfleet_pw:{PG_PASSWORD}@", "postgres@"))
    assert "pgcanary" in dump and "psk:pgcanary-1" in dump  # the store's rows are in it
    assert "sealed_secrets" in dump
    fleet_secret = (tmp_path / "data" / "fleet-secret").read_text().strip()
    assert fleet_secret not in dump and outputs_holding(run, fleet_secret) == []

    keys = key_lines(
        [
            Path(f"{conf}.node1.conf").read_text(),
            Path(f"{conf}.node2.conf").read_text(),
            (tmp_path / "pg.psk").read_text(),
            *json.loads(run.asked[0])["client_configs"].values(),
        ]
    )
    assert sorted(keys.values()) == ["PresharedKey"] * 3 + ["PrivateKey"] * 2
    for secret, home in ((PG_PASSWORD, [config]), (account_password, [])):
        assert outputs_holding(run, secret) == [] and secret not in dump
        assert files_holding([tmp_path], secret.encode()) == home
    for value, kind in keys.items():
        assert value not in dump, f"pg_dump holds a {kind}"
        assert outputs_holding(run, value) == []
        for path in files_holding([tmp_path], value.encode()):
            assert path.parent == tmp_path, path  # the files it was delivered to
