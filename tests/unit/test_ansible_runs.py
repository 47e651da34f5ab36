"""What an Ansible run may keep and see on the controller: only the environment it needs (the
operator's may hold a database password), and nothing left behind by a run that was killed or
by an older version's artifacts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.adapters import ansible


def test_a_run_sees_only_the_environment_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "canary-password")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:canary-url@db/x")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("ANSIBLE_CALLBACK_PLUGINS", "/home/op/callbacks")
    monkeypatch.setenv("ANSIBLE_LOG_PATH", "/home/op/ansible.log")
    monkeypatch.setenv("HOME", "/home/op")
    prepared = {
        **os.environ,  # ansible-runner starts from a copy of the controller's environment
        "ANSIBLE_CALLBACK_PLUGINS": "/home/op/callbacks:/venv/ansible_runner/callbacks",
        "ANSIBLE_STDOUT_CALLBACK": "awx_display",
        "ORIGINAL_STDOUT_CALLBACK": "yaml",
        "AWX_ISOLATED_DATA_DIR": "/data/ansible/run-1/artifacts/x",
        "RUNNER_OMIT_EVENTS": "False",
        "RUNNER_ONLY_FAILED_EVENTS": "False",
    }
    ours = {"ANSIBLE_CONFIG": "/data/ansible/run-1/ansible.cfg", "LC_ALL": "C.UTF-8"}
    env = ansible._environment(prepared, ours)
    assert "canary" not in repr(env)
    for name in ("PGPASSWORD", "DATABASE_URL", "SSH_AUTH_SOCK", "ANSIBLE_LOG_PATH"):
        assert name not in env
    assert "ORIGINAL_STDOUT_CALLBACK" not in env
    assert env["ANSIBLE_CALLBACK_PLUGINS"] == "/venv/ansible_runner/callbacks"
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "awx_display"
    assert env["AWX_ISOLATED_DATA_DIR"] == "/data/ansible/run-1/artifacts/x"
    assert env["HOME"] == "/home/op"
    assert env["ANSIBLE_CONFIG"] == "/data/ansible/run-1/ansible.cfg"


def test_what_killed_runs_and_older_versions_left_is_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    for name in ("artifacts/1234/command", "cp/sock", "tmp/x", "env/envvars"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("secret")
    (tmp_path / f"run-{dead.pid}-abc" / "artifacts").mkdir(parents=True)
    (tmp_path / f"run-{os.getpid()}-def").mkdir()  # a run of this process, still going
    (tmp_path / "unrelated").mkdir()
    ansible._sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run-{os.getpid()}-def", "unrelated"]
