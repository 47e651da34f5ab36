from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, ExitCode
from orchestrator.settings import load_settings
from tests.unit.test_settings_input import refusal


def test_defaults_work_with_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WGFLEET_CONFIG", raising=False)
    monkeypatch.setenv("WGFLEET_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.source == "defaults"
    assert settings.store_url == f"sqlite:///{tmp_path / 'data' / 'wgfleet.db'}"
    assert settings.inventory == settings.project_root / "inventory" / "lab"
    assert settings.ssh.known_hosts == settings.inventory / "known_hosts"
    assert settings.ssh.deploy_key == tmp_path / "data" / "keys" / "deploy_ed25519"
    assert settings.lab.subnet == ipaddress.ip_network("198.18.0.0/20")


def test_file_from_environment_with_relative_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "fleet" / "settings.yml"
    config.parent.mkdir()
    config.write_text(
        "store_url: postgresql://wgfleet@db/wgfleet\n"
        "inventory: inv/prod\n"
        "ssh:\n  deploy_key: keys/deploy\n  connect_timeout: 3\n"
        "lab:\n  name: ci\n  subnet: 198.18.16.0/24\n"
    )
    monkeypatch.setenv("WGFLEET_CONFIG", str(config))
    settings = load_settings()
    assert settings.source == str(config)
    assert settings.store_url == "postgresql://wgfleet@db/wgfleet"
    assert settings.inventory == config.parent / "inv" / "prod"
    assert settings.ssh.deploy_key == config.parent / "keys" / "deploy"
    assert settings.ssh.known_hosts == config.parent / "inv" / "prod" / "known_hosts"
    assert settings.ssh.connect_timeout == 3.0
    assert settings.lab.name == "ci"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stor_url: x\n", ":1: stor_url: 'x': unknown setting"),
        ("ssh:\n  deploy_key: 7\n", ":2: ssh.deploy_key: 7: expected a path"),
        (
            "ssh:\n  connect_timeout: -1\n",
            ":2: ssh.connect_timeout: -1: expected a positive number",
        ),
        (
            "lab:\n  subnet: 10.0.0.0/24\n",
            ":2: lab.subnet: '10.0.0.0/24': must lie inside 198.18.0.0/16",
        ),
        (
            "lab:\n  subnet: 198.19.0.0/24\n",
            ":2: lab.subnet: '198.19.0.0/24': must lie inside 198.18.0.0/16",
        ),
        (
            "lab:\n  subnet: 198.18.0.0/28\n",
            ":2: lab.subnet: '198.18.0.0/28': must be a /24 or larger",
        ),
        ("lab:\n  name: My-Lab\n", ":2: lab.name: 'My-Lab': must be 1-6 lowercase"),
        ("lab: [1, 2]\n", ":1: lab: [1, 2]: expected a mapping"),
        ("- a list\n", ": (top level): ['a list']: expected a mapping"),
        ("a: [unclosed\n", ":2: (file): '': not YAML"),
        (
            "usage:\n  retention_days: 7\n",
            ":2: usage.retention_days: 7: a whole number of days, at least 31",
        ),
        ("usage:\n  warn_percent: 150\n", ":2: usage.warn_percent: 150: 1..100"),
        (
            "deploy:\n  full_every_days: -1\n",
            ":2: deploy.full_every_days: -1: a whole number of days, 0 for always",
        ),
        ("deploy:\n  every: 1\n", ":2: deploy.every: 1: unknown setting"),
        (
            "tui:\n  refresh_interval: 2h\n",
            ":2: tui.refresh_interval: '2h': 0 (never), or a duration from 1s to 60m",
        ),
        ("tui:\n  refresh_interval: soon\n", ":2: tui.refresh_interval: 'soon': 0 (never)"),
        ("tui:\n  theme: dark\n", ":2: tui.theme: 'dark': unknown setting"),
        (
            "usage:\n  expiry_warn_days: 400\n",
            ":2: usage.expiry_warn_days: 400: a whole number of days, 0..365",
        ),
    ],
)
def test_bad_settings_name_file_line_field_and_value(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "bad.yml"
    assert refusal(config, text.encode()).startswith(f"{config}{message}")


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yml: \(file\): .*No such file"):
        load_settings(tmp_path / "missing.yml")


def test_notify_settings_are_checked_and_a_webhook_token_is_never_shown(tmp_path) -> None:
    from orchestrator.errors import ConfigError
    from orchestrator.settings import settings_from_mapping

    built = settings_from_mapping(
        {
            "notify": {
                "command": "/usr/local/bin/tell --quiet",
                "webhook": "https://hooks.example.invalid/T0KEN/x",
            }
        },
        "s.yml",
        tmp_path,
    )
    assert built.notify.command == ("/usr/local/bin/tell", "--quiet")
    shown = built.describe()["notify"]
    assert "T0KEN" not in str(shown) and shown["webhook"] == "https://hooks.example.invalid/..."
    with pytest.raises(ConfigError, match=r"notify\.webhook"):
        settings_from_mapping({"notify": {"webhook": "file:///etc/passwd"}}, "s.yml", tmp_path)
    with pytest.raises(ConfigError, match=r"notify\.command"):
        settings_from_mapping({"notify": {"command": 5}}, "s.yml", tmp_path)


def test_deploy_fast_path_period(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text("deploy:\n  full_every_days: 0\n")
    assert load_settings(config).deploy.full_every_days == 0
    assert load_settings(config).describe()["deploy"] == {"full_every_days": 0}


def test_tui_refresh_and_expiry_window(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    assert load_settings(None).tui.refresh_seconds == 10  # the default
    config.write_text("tui:\n  refresh_interval: 0\nusage:\n  expiry_warn_days: 14\n")
    settings = load_settings(config)
    assert (settings.tui.refresh_seconds, settings.usage.expiry_warn_days) == (0, 14)
    assert settings.describe()["tui"] == {"refresh_interval": "0"}


def test_dns_forwarders_settings(tmp_path: Path) -> None:
    from orchestrator.core.dns_upstream import resolver_extravars
    from orchestrator.settings import settings_from_mapping

    default = settings_from_mapping({}, "s.yml", tmp_path)
    assert default.dns.forwarders == () and default.dns.forward_tls is False
    built = settings_from_mapping(
        {"dns": {"forwarders": ["198.18.0.53@853#dns.example.net"], "forward_tls": True}},
        "s.yml",
        tmp_path,
    )
    assert built.describe()["dns"] == {
        "servers": [],
        "forwarders": ["198.18.0.53@853#dns.example.net"],
        "forward_tls": True,
    }
    assert resolver_extravars(built.dns.forwarders, built.dns.forward_tls) == {
        "wgfleet_dns_forwarders": ["198.18.0.53@853#dns.example.net"],
        "wgfleet_dns_forward_tls": True,
    }


@pytest.mark.parametrize(
    ("dns", "field"),
    [
        ({"forwarders": ["dns.example.net"]}, "dns.forwarders"),
        ({"forwarders": ["198.18.0.53@99999"]}, "dns.forwarders"),
        ({"forwarders": ["198.18.0.53#bad name"]}, "dns.forwarders"),
        ({"forwarders": ["198.18.0.53", "198.18.0.53"]}, "dns.forwarders"),
        ({"forwarders": "198.18.0.53"}, "dns.forwarders"),
        ({"forwarders": ["198.18.0.53\nlog-queries: yes"]}, "dns.forwarders"),
        ({"forward_tls": True}, "dns.forward_tls"),
        ({"forward_tls": "yes", "forwarders": ["198.18.0.53"]}, "dns.forward_tls"),
    ],
)
def test_bad_dns_settings_name_the_field(tmp_path: Path, dns: dict, field: str) -> None:
    from orchestrator.settings import settings_from_mapping

    with pytest.raises(ConfigError) as raised:
        settings_from_mapping({"dns": dns}, "s.yml", tmp_path)
    assert field in str(raised.value) and "s.yml" in str(raised.value)
    assert raised.value.exit_code == ExitCode.USAGE
