"""The store's password and a webhook's token never leave the settings file: config show, db
output, error lines and tracebacks hide them; webhooks must be https (http on loopback only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.notify import webhook_problem
from orchestrator.core.redaction import (
    database_target,
    redact_text,
    redact_url,
    url_problem,
    url_secrets,
)
from orchestrator.errors import ConfigError
from orchestrator.settings import settings_from_mapping

PASSWORD = "Cn4ry-pw-7Q"


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        (
            f"postgresql://wg:{PASSWORD}@db.example/wgfleet",
            "postgresql://wg:***@db.example/wgfleet",
            {PASSWORD},
        ),
        (
            "postgresql://wg:Can%40ry%20x@db:5433/fleet?sslmode=require",
            "postgresql://wg:***@db:5433/fleet?sslmode=require",
            {"Can%40ry%20x", "Can@ry x"},
        ),
        (
            "postgresql://wg@db/fleet?sslmode=require&password=Se%2Fcret&sslpassword=k3y",
            "postgresql://wg@db/fleet?sslmode=require&password=***&sslpassword=***",
            {"Se%2Fcret", "Se/cret", "k3y"},
        ),
        ("postgresql://wg:p?w@db/fleet?port=5", "postgresql://wg:***@db/fleet?port=5", {"p?w"}),
        ("postgresql:///fleet?host=/run/pg", "postgresql:///fleet?host=/run/pg", set()),
        ("sqlite:////var/lib/wgfleet/wgfleet.db", "sqlite:////var/lib/wgfleet/wgfleet.db", set()),
    ],
)
def test_a_store_url_is_shown_without_its_password(url: str, shown: str, secrets: set) -> None:
    assert redact_url(url) == shown
    assert url_secrets(url) == secrets
    assert url_problem(url) is None
    for secret in secrets:
        assert secret not in redact_url(url)
        assert secret not in database_target(url)


def test_a_password_libpq_would_split_differently_is_refused_before_the_driver() -> None:
    # libpq stops the user information at the first '@' or '/': it would read a piece of this
    # password as the host and quote it in its error.
    for url in ("postgresql://wg:pa/ss@db/fleet", "postgresql://wg:a@b@db/fleet"):
        assert url_problem(url) is not None
        assert "pa/ss" not in redact_url(url) and "a@b" not in redact_url(url)


def test_the_database_and_server_are_named_for_error_lines() -> None:
    assert database_target("postgresql://wg:x@db.example:6432/fleet") == (
        "database 'fleet' on db.example:6432"
    )
    assert database_target("postgresql://wg:x@/fleet?host=/run/postgresql") == (
        "database 'fleet' on /run/postgresql"
    )


def test_redact_text_hides_the_longest_secret_whole() -> None:
    assert redact_text("a Se/cret and Se%2Fcret", {"Se/cret", "Se%2Fcret", ""}) == ("a *** and ***")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.org/T0KEN", True),
        ("http://127.0.0.1:8080/hook", True),
        ("http://127.9.9.9/hook", True),
        ("http://[::1]:8080/hook", True),
        ("http://localhost/hook", True),
        ("http://LOCALHOST/hook", True),
        ("http://hooks.example.org/T0KEN", False),
        ("http://198.18.0.1/hook", False),
        ("http://[::ffff:7f00:1]/hook", False),
        ("http://localhost.example.org/hook", False),
        ("ftp://hooks.example.org/x", False),
        ("file:///etc/passwd", False),
        ("https:///no-host", False),
    ],
)
def test_a_webhook_is_https_or_loopback(url: str, allowed: bool, tmp_path: Path) -> None:
    assert (webhook_problem(url) is None) is allowed
    if allowed:
        settings_from_mapping({"notify": {"webhook": url}}, "s.yml", tmp_path)
        return
    with pytest.raises(ConfigError) as refused:
        settings_from_mapping({"notify": {"webhook": url}}, "s.yml", tmp_path)
    message = str(refused.value)
    assert message.startswith("s.yml: notify.webhook: ")
    assert "T0KEN" not in message  # the value is named by its origin only


def _settings_file(tmp_path: Path, store_url: str, **extra: str) -> Path:
    config = tmp_path / "settings.yml"
    lines = [f"data_dir: {tmp_path / 'data'}", f"store_url: '{store_url}'"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    config.write_text("\n".join(lines) + "\n")
    return config


def test_config_show_and_its_json_hide_the_password_and_the_webhook_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://wg:{PASSWORD}@/wgfleet?host={tmp_path}/nosocket"
    config = _settings_file(tmp_path, url, notify="{webhook: 'https://hooks.example/T0KEN'}")
    assert main(["--config", str(config), "config", "show"]) == 0
    assert main(["--config", str(config), "--json", "config", "show"]) == 0
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert PASSWORD not in text and "T0KEN" not in text
    shown = json.loads(captured.out[captured.out.index("{") :])
    assert shown["store_url"] == f"postgresql://wg:***@/wgfleet?host={tmp_path}/nosocket"


def test_settings_repr_holds_no_password(tmp_path: Path) -> None:
    built = settings_from_mapping(
        {
            "store_url": f"postgresql://wg:{PASSWORD}@db/wgfleet",
            "notify": {"webhook": "https://hooks.example/T0KEN"},
        },
        "s.yml",
        tmp_path,
    )
    assert PASSWORD not in repr(built) and "T0KEN" not in repr(built)


@pytest.mark.parametrize(
    ("url", "code", "expected"),
    [
        # No server behind the socket: the machine's surroundings, exit 4.
        (
            "postgresql://wg:{pw}@/wgfleet?host={tmp}/nosocket",
            4,
            "cannot use the PostgreSQL store (database 'wgfleet' on {tmp}/nosocket): ",
        ),
        # URLs libpq cannot read: bad settings, exit 2, the value shown without its password.
        (
            "postgresql://wg:{pw} x@/wgfleet?host={tmp}",
            2,
            "store_url: 'postgresql://wg:***@/wgfleet?host={tmp}': unexpected spaces found in "
            '"***"',
        ),
        (
            "postgresql://wg:{pw}@/wgfleet?host={tmp}&bogus=1",
            2,
            "store_url: 'postgresql://wg:***@/wgfleet?host={tmp}&bogus=1': invalid URI query",
        ),
        ("postgresql://wg:{pw}/x@db/wgfleet", 2, "percent-encode it"),
        ("mysql://wg:{pw}@db/wgfleet", 2, "store_url: 'mysql:...': expected sqlite"),
    ],
)
def test_a_store_that_cannot_be_used_is_one_line_without_the_password(
    tmp_path: Path, url: str, code: int, expected: str
) -> None:
    config = _settings_file(tmp_path, url.format(pw=PASSWORD, tmp=tmp_path))
    for argv in (["peers", "list"], ["db", "upgrade"], ["--json", "db", "upgrade"]):
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--config", str(config), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == code, result.stderr
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert expected.format(tmp=tmp_path) in result.stderr
        assert PASSWORD not in result.stderr


def test_a_bug_s_traceback_never_shows_the_settings_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import cli

    url = f"postgresql://wg:{PASSWORD}@db/wgfleet"
    config = _settings_file(tmp_path, url, notify="{webhook: 'https://hooks.example/T0KEN'}")

    def buggy(args, settings, output) -> int:
        raise RuntimeError(f"unexpected: {settings.store_url} {settings.notify.webhook}")

    monkeypatch.setattr(cli, "cmd_config_show", buggy)
    assert main(["--config", str(config), "config", "show"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "RuntimeError: unexpected: postgresql://wg:***@db/wgfleet ***" in err
    assert PASSWORD not in err and "T0KEN" not in err
