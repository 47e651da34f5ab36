from __future__ import annotations

from orchestrator.core.playbook_events import PlayRecap, apply_event


def event(kind: str, host: str | None = None, **data: object) -> dict[str, object]:
    payload: dict[str, object] = dict(data)
    if host:
        payload["host"] = host
    return {"event": kind, "event_data": payload}


def fold(*events: dict[str, object]) -> PlayRecap:
    recap = PlayRecap()
    for item in events:
        recap = apply_event(recap, item)
    return recap


def test_counts_and_current_task_per_host() -> None:
    recap = fold(
        event("runner_on_start", "node1", task="write config"),
        event("runner_on_ok", "node1", task="write config", res={"changed": True}),
        event("runner_on_start", "node1", task="enable unit"),
        event("runner_on_ok", "node2", task="write config", res={"changed": False}),
    )
    node1, node2 = recap.host("node1"), recap.host("node2")
    assert (node1.ok, node1.changed, node1.current_task, node1.status) == (
        1,
        1,
        "enable unit",
        "changed",
    )
    assert node1.changed_tasks == ("write config",)
    assert (node2.ok, node2.changed, node2.status) == (1, 0, "ok")
    assert recap.failed_hosts == []


def test_failures_and_unreachable_hosts_are_named_with_one_line_reasons() -> None:
    recap = fold(
        event(
            "runner_on_failed",
            "node1",
            task="restart ssh",
            res={"msg": "Unable to restart\nservice ssh"},
        ),
        event(
            "runner_on_unreachable",
            "node3",
            task="Gathering Facts",
            res={"msg": "ssh: connect to host 198.18.0.12 port 22: No route"},
        ),
        event(
            "runner_on_failed", "node2", task="optional", ignore_errors=True, res={"msg": "fine"}
        ),
    )
    assert recap.failed_hosts == ["node1", "node3"]
    assert recap.host("node1").error == "restart ssh: Unable to restart service ssh"
    assert recap.host("node3").status == "unreachable"
    assert recap.host("node2").status == "ok"


def test_a_censored_failure_never_reveals_its_output() -> None:
    recap = fold(
        event(
            "runner_on_failed",
            "node1",
            task="write key",
            res={"censored": "hidden", "msg": "k3y-material"},
        ),
    )
    assert "k3y-material" not in recap.host("node1").error
    assert "no_log" in recap.host("node1").error


def test_final_stats_are_authoritative() -> None:
    recap = fold(
        event("runner_on_ok", "node1", task="a", res={"changed": True}),
        {
            "event": "playbook_on_stats",
            "event_data": {
                "ok": {"node1": 12, "node2": 12},
                "changed": {"node1": 0},
                "failures": {},
                "dark": {"node3": 1},
                "skipped": {"node2": 2},
            },
        },
    )
    assert recap.finished
    assert recap.host("node1").changed == 0 and recap.host("node1").ok == 12
    assert recap.host("node3").status == "unreachable"
    assert recap.changed_total == 0
    assert recap.failed_hosts == ["node3"]


def test_unknown_events_change_nothing() -> None:
    recap = fold(event("playbook_on_play_start", name="site"), event("verbose", stdout="x"))
    assert recap == PlayRecap()


def test_check_mode_diffs_are_kept_as_unified_text() -> None:
    recap = fold(
        event(
            "runner_on_ok",
            "node1",
            task="journald drop-in",
            res={
                "changed": True,
                "diff": [
                    {
                        "before": "Storage=persistent\n",
                        "after": "Storage=volatile\n",
                        "before_header": "/etc/systemd/journald.conf.d/00-nolog.conf",
                        "after_header": "/etc/systemd/journald.conf.d/00-nolog.conf",
                    }
                ],
            },
        )
    )
    (diff,) = recap.host("node1").diffs
    assert "-Storage=persistent\n+Storage=volatile\n" in diff
    assert diff.startswith("--- /etc/systemd/journald.conf.d/00-nolog.conf")
