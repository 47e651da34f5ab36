"""The access audit's rules on recorded probe output: a node as the roles leave it passes every
check, and each way a login account can be widened fails exactly its check, one row per
finding, naming the account and the line, never showing key material beyond a fingerprint."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from orchestrator.core.audit_access import (
    ACCESS_PROBES,
    MAX_ROWS_PER_CHECK,
    ControllerKeys,
    ExpectedKeys,
    access_checks,
    clean,
    parse_authorized_line,
    public_key_blob,
    quote,
)
from orchestrator.core.inventory import public_key_fingerprint
from tests.unit.access_samples import (
    COLLECTOR_ANSWER,
    COLLECTOR_KEY,
    COMPLIANT_ACCESS,
    COUNTERS_LINE,
    COUNTERS_RULE,
    DEPLOY_KEY,
    INTRUDER_KEY,
    KEYS,
    NEXT_KEY,
    PEERS_LINE,
    PEERS_RULE,
    PUSH_ANSWER,
    PUSH_KEY,
    ROOT_ANSWER,
    SUDO_COLLECTOR_ANSWER,
    SUDO_PUSH_ANSWER,
    SUDOERS_PARSED,
)

COLLECTOR_FILE = "/var/lib/wgcollect/.ssh/authorized_keys"
PUSH_FILE = "/var/lib/wgpush/.ssh/authorized_keys"
INTRUDER_PRINT = public_key_fingerprint(INTRUDER_KEY)
BLOBS = [key.split()[1] for key in (DEPLOY_KEY, COLLECTOR_KEY, PUSH_KEY, INTRUDER_KEY, NEXT_KEY)]


def failed(keys: ControllerKeys | None = KEYS, **answers: str) -> list[tuple[str, str]]:
    found = access_checks({**COMPLIANT_ACCESS, **answers}, keys)
    for finding in found:
        assert not any(blob in finding.evidence for blob in BLOBS), finding
    return [(f.check, f.evidence) for f in found if not f.passed]


def with_key_lines(answer: str, path: str, *lines: str) -> str:
    """The answer with more lines in ``path`` after its recorded first one."""
    extra = "".join(f"key\t{path}\t{n}\t{line}\n" for n, line in enumerate(lines, start=2))
    return answer + extra


def test_a_node_as_the_roles_leave_it_passes_every_access_check() -> None:
    found = access_checks(COMPLIANT_ACCESS, KEYS)
    assert [f for f in found if not f.passed] == []
    names = [f.check for f in found]
    assert len(names) == len(set(names)), "one row per check when nothing is wrong"
    per_forced = {
        "authorized_keys",
        "key_sources",
        "sshd",
        "ownership",
        "login",
        "groups",
        "rc_files",
        "sudo",
    }
    assert set(names) == {
        *(f"access.root.{c}" for c in ("authorized_keys", "key_sources", "sshd", "ownership")),
        *(f"access.wgcollect.{c}" for c in per_forced),
        *(f"access.wgpush.{c}" for c in per_forced),
    }
    evidence = {f.check: f.evidence for f in found}
    assert evidence["access.wgcollect.authorized_keys"] == (
        f"wgcollect: 1 key(s) in {COLLECTOR_FILE}: the controller's collector key "
        f"{public_key_fingerprint(COLLECTOR_KEY)} with "
        '`restrict,command="sudo -n /usr/local/sbin/wgfleet-counters"`'
    )
    assert evidence["access.wgpush.sudo"] == f"wgpush: sudo grants only `{PEERS_RULE}`"


# --- authorized_keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            f'restrict,command="sudo -n /usr/local/sbin/wgfleet-peers" {INTRUDER_KEY}',
            f"key {INTRUDER_PRINT} is not the controller's push key "
            '(`restrict,command="sudo -n /usr/local/sbin/wgfleet-peers"`)',
        ),
        (INTRUDER_KEY, f"key {INTRUDER_PRINT} is not the controller's push key (no options)"),
    ],
)
def test_a_key_the_roles_did_not_install_fails_naming_its_line(line: str, problem: str) -> None:
    answer = with_key_lines(PUSH_ANSWER, PUSH_FILE, line)
    assert failed(access_wgpush=answer) == [
        ("access.wgpush.authorized_keys", f"wgpush: {PUSH_FILE} line 2: {problem}")
    ]


@pytest.mark.parametrize(
    "options",
    [
        'command="sudo -n /usr/local/sbin/wgfleet-counters"',  # no restrict
        'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters",permitopen="198.18.0.1:22"',
        'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters",environment="LD_PRELOAD=/x"',
        'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters",port-forwarding,pty',
        'restrict,command="/bin/sh"',
        'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters dump"',
        "restrict",
        'restrict,from="198.18.0.0/15",command="sudo -n /usr/local/sbin/wgfleet-counters"',
    ],
)
def test_the_controllers_key_with_other_options_fails(options: str) -> None:
    answer = COLLECTOR_ANSWER.replace(COUNTERS_LINE, f"{options} {COLLECTOR_KEY}")
    rows = failed(access_wgcollect=answer)
    assert rows == [
        (
            "access.wgcollect.authorized_keys",
            f"wgcollect: {COLLECTOR_FILE} line 1: the controller's collector key "
            f"{public_key_fingerprint(COLLECTOR_KEY)} has {quote(options)}, not "
            '`restrict,command="sudo -n /usr/local/sbin/wgfleet-counters"`',
        )
    ]


def test_each_offending_line_is_its_own_row_and_a_missing_controller_key_too() -> None:
    answer = PUSH_ANSWER.replace(PEERS_LINE, INTRUDER_KEY)
    answer = with_key_lines(answer, PUSH_FILE, "# a comment", "", "not a key at all " + "A" * 60)
    rows = failed(access_wgpush=answer)
    assert [check for check, _ in rows] == ["access.wgpush.authorized_keys"] * 3
    assert rows[0][1].endswith(
        f"line 1: key {INTRUDER_PRINT} is not the controller's push key (no options)"
    )
    assert rows[1][1] == f"wgpush: {PUSH_FILE} line 4: not a key line (77 characters)"
    assert rows[2][1] == (
        f"wgpush: {PUSH_FILE} lacks the controller's push key {public_key_fingerprint(PUSH_KEY)}"
    )


def test_the_same_key_twice_is_flagged() -> None:
    answer = with_key_lines(COLLECTOR_ANSWER, COLLECTOR_FILE, COUNTERS_LINE)
    assert failed(access_wgcollect=answer) == [
        (
            "access.wgcollect.authorized_keys",
            f"wgcollect: {COLLECTOR_FILE} line 2: the controller's collector key "
            f"{public_key_fingerprint(COLLECTOR_KEY)} again (first on line 1) "
            '(`restrict,command="sudo -n /usr/local/sbin/wgfleet-counters"`)',
        )
    ]


def test_a_rotations_next_key_is_accepted_only_while_the_controller_holds_it() -> None:
    line = f'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters" {NEXT_KEY}'
    answer = with_key_lines(COLLECTOR_ANSWER, COLLECTOR_FILE, line)
    rotating = ControllerKeys(
        {
            **KEYS.by_purpose,
            "collector": ExpectedKeys.from_lines([COLLECTOR_KEY], [NEXT_KEY]),
        }
    )
    found = {
        f.check: f
        for f in access_checks({**COMPLIANT_ACCESS, "access_wgcollect": answer}, rotating)
    }
    assert found["access.wgcollect.authorized_keys"].passed
    assert (
        "next collector key (a rotation under way)"
        in found["access.wgcollect.authorized_keys"].evidence
    )
    assert [check for check, _ in failed(access_wgcollect=answer)] == [
        "access.wgcollect.authorized_keys"
    ]


def test_without_the_controllers_keys_nothing_passes_unjudged() -> None:
    rows = failed(keys=None)
    assert (
        "access.wgpush.authorized_keys",
        "wgpush: the controller has no push public key to compare with",
    ) in rows
    assert {check for check, _ in rows} == {
        "access.root.authorized_keys",
        "access.wgcollect.authorized_keys",
        "access.wgpush.authorized_keys",
    }


def test_a_missing_authorized_keys_file_fails() -> None:
    answer = COLLECTOR_ANSWER.replace(
        f"keyfile\t{COLLECTOR_FILE}\troot\t644\n", f"keyfile\t{COLLECTOR_FILE}\tmissing\n"
    ).replace(f"key\t{COLLECTOR_FILE}\t1\t{COUNTERS_LINE}\n", "")
    assert failed(access_wgcollect=answer) == [
        ("access.wgcollect.authorized_keys", f"wgcollect: {COLLECTOR_FILE} is missing")
    ]


def test_root_holds_the_deploy_key_and_nothing_else() -> None:
    with_options = ROOT_ANSWER.replace(DEPLOY_KEY, f'from="198.18.0.1" {DEPLOY_KEY}')
    assert failed(access_root=with_options) == []
    extra = with_key_lines(ROOT_ANSWER, "/root/.ssh/authorized_keys", INTRUDER_KEY)
    assert failed(access_root=extra) == [
        (
            "access.root.authorized_keys",
            f"root: /root/.ssh/authorized_keys line 2: key {INTRUDER_PRINT} is not the "
            "controller's deploy key (no options)",
        )
    ]


# --- where sshd looks for keys ----------------------------------------------------------------


def test_a_second_key_file_sshd_reads_fails_with_the_fingerprints_it_holds() -> None:
    second = "/var/lib/wgcollect/.ssh/authorized_keys2"
    answer = (
        COLLECTOR_ANSWER.replace(
            "sshd\tauthorizedkeysfile .ssh/authorized_keys\n",
            "sshd\tauthorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n",
        )
        + f"consults\t{second}\nkeyfile\t{second}\troot\t644\nkey\t{second}\t1\t{INTRUDER_KEY}\n"
    )
    assert failed(access_wgcollect=answer) == [
        (
            "access.wgcollect.key_sources",
            f"wgcollect: sshd also reads keys from {second} (holds 1 key(s): {INTRUDER_PRINT})",
        )
    ]
    empty = COLLECTOR_ANSWER + f"consults\t{second}\nkeyfile\t{second}\tmissing\n"
    assert failed(access_wgcollect=empty) == [
        (
            "access.wgcollect.key_sources",
            f"wgcollect: sshd also reads keys from {second} (missing now)",
        )
    ]


def test_a_key_file_elsewhere_leaves_the_roles_file_unread() -> None:
    elsewhere = "/etc/ssh/keys/wgpush"
    answer = PUSH_ANSWER.replace(f"consults\t{PUSH_FILE}\n", f"consults\t{elsewhere}\n").replace(
        f"keyfile\t{PUSH_FILE}\troot\t644\n", f"keyfile\t{elsewhere}\tmissing\n"
    )
    rows = failed(access_wgpush=answer)
    assert ("access.wgpush.key_sources", f"wgpush: sshd does not read {PUSH_FILE}") in rows
    assert ("access.wgpush.authorized_keys", f"wgpush: {PUSH_FILE} is not read by sshd") in rows


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("authorizedkeyscommand", "/usr/local/bin/keys %u"),
        ("authorizedprincipalscommand", "/usr/local/bin/principals"),
        ("trustedusercakeys", "/etc/ssh/user_ca.pub"),
    ],
)
def test_keys_from_a_command_or_a_user_ca_fail(setting: str, value: str) -> None:
    wanted = "none"
    answer = ROOT_ANSWER.replace(f"sshd\t{setting} none\n", f"sshd\t{setting} {value}\n")
    assert failed(access_root=answer) == [
        ("access.root.key_sources", f"root: sshd -T gives {setting} `{value}`, want {wanted}")
    ]


# --- per-user sshd settings -------------------------------------------------------------------


# One line of a node's answer changed, one check fails with its evidence:
# (account, check, line as the roles leave it, line as changed, evidence).
ONE_LINE_CHANGED = [
    (
        "wgpush",
        "sshd",
        "sshd\tforcecommand sudo -n /usr/local/sbin/wgfleet-peers\n",
        "sshd\tforcecommand none\n",
        "wgpush: sshd -T gives forcecommand `none`, want sudo -n /usr/local/sbin/wgfleet-peers",
    ),
    *(
        (
            "wgpush",
            "sshd",
            f"sshd\t{setting} {want}\n",
            f"sshd\t{setting} {given}\n",
            f"wgpush: sshd -T gives {setting} `{given}`, want {want}",
        )
        for setting, want, given in [
            ("permittty", "no", "yes"),
            ("allowtcpforwarding", "no", "yes"),
            ("disableforwarding", "yes", "no"),
            ("permituserrc", "no", "yes"),
        ]
    ),
    (
        "wgpush",
        "ownership",
        "dir\troot\t755\t/var/lib/wgpush/.ssh\n",
        "dir\twgpush\t755\t/var/lib/wgpush/.ssh\n",
        "wgpush: /var/lib/wgpush/.ssh is owned by wgpush, mode 755",
    ),
    (
        "wgpush",
        "ownership",
        "dir\troot\t755\t/var/lib/wgpush\n",
        "dir\troot\t775\t/var/lib/wgpush\n",
        "wgpush: /var/lib/wgpush is owned by root, mode 775",
    ),
    (
        "wgpush",
        "ownership",
        f"keyfile\t{PUSH_FILE}\troot\t644\n",
        f"keyfile\t{PUSH_FILE}\troot\t666\n",
        f"wgpush: {PUSH_FILE} is owned by root, mode 666",
    ),
    (
        "wgpush",
        "ownership",
        "dir\troot\t755\t/var/lib/wgpush\n",
        "dir\t-\t-\t/var/lib/wgpush\n",
        "wgpush: /var/lib/wgpush is missing",
    ),
    (
        "wgcollect",
        "login",
        "passwd\t/var/lib/wgcollect\t/bin/sh\n",
        "passwd\t/var/lib/wgcollect\t/bin/bash\n",
        "wgcollect: login shell `/bin/bash`, want /bin/sh",
    ),
    *(
        (
            "wgcollect",
            "login",
            "password\tlocked\n",
            changed,
            f"wgcollect: {evidence}, want none (!)",
        )
        for changed, evidence in [
            ("password\thash\n", "a password is set"),
            ("password\tlocked-hash\n", "a password is set (locked for now)"),
            ("password\tempty\n", "the password is empty"),
            ("", "no shadow entry"),
        ]
    ),
]


@pytest.mark.parametrize(("account", "check", "old", "new", "evidence"), ONE_LINE_CHANGED)
def test_one_changed_line_fails_its_check_with_evidence(
    account: str, check: str, old: str, new: str, evidence: str
) -> None:
    answer = {"wgpush": PUSH_ANSWER, "wgcollect": COLLECTOR_ANSWER}[account]
    assert old in answer
    assert failed(**{f"access_{account}": answer.replace(old, new)}) == [
        (f"access.{account}.{check}", evidence)
    ]


def test_root_may_have_a_terminal_but_no_forwarding() -> None:
    answer = ROOT_ANSWER.replace("sshd\tx11forwarding no\n", "sshd\tx11forwarding yes\n")
    assert failed(access_root=answer) == [
        ("access.root.sshd", "root: sshd -T gives x11forwarding `yes`, want no")
    ]
    missing = ROOT_ANSWER.replace("sshd\tallowagentforwarding no\n", "")
    assert failed(access_root=missing) == [
        ("access.root.sshd", "root: sshd -T gives allowagentforwarding `unset`, want no")
    ]


# --- the account ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "evidence"),
    [
        (
            "wgcollect\twgcollect adm sudo",
            ["wgcollect: member of group `adm`", "wgcollect: member of group `sudo`"],
        ),
        ("shadow\tshadow", ["wgcollect: primary group `shadow`"]),
    ],
)
def test_no_group_beyond_its_own(groups: str, evidence: list[str]) -> None:
    answer = COLLECTOR_ANSWER.replace("groups\twgcollect\twgcollect\n", f"groups\t{groups}\n")
    assert failed(access_wgcollect=answer) == [("access.wgcollect.groups", e) for e in evidence]


def test_rc_files_fail_one_row_each() -> None:
    answer = COLLECTOR_ANSWER + "rc\t/var/lib/wgcollect/.ssh/rc\nrc\t/etc/ssh/sshrc\n"
    assert failed(access_wgcollect=answer) == [
        ("access.wgcollect.rc_files", "wgcollect: /var/lib/wgcollect/.ssh/rc exists"),
        ("access.wgcollect.rc_files", "wgcollect: /etc/ssh/sshrc exists"),
    ]
    # root's own dotfiles are root's business.
    assert failed(access_root=ROOT_ANSWER) == []


def test_a_missing_account_is_one_row() -> None:
    assert failed(access_wgpush="passwd\tmissing\n") == [
        ("access.wgpush.account", "wgpush: no such account")
    ]
    rows = failed(access_wgpush=None)  # type: ignore[arg-type]
    assert rows == [("access.wgpush.account", "wgpush: no probe answer")]


# --- sudo -------------------------------------------------------------------------------------


def sudo_answer(*rules: str, located: tuple[tuple[str, str], ...] = ()) -> str:
    return (
        SUDOERS_PARSED
        + "".join(f"rule\t{r}\n" for r in rules)
        + "".join(f"in\t{path}\t{rule}\n" for path, rule in located)
    )


EXTRA_RULE = "wgcollect ALL = (ALL) NOPASSWD: /bin/cat"
GROUP_RULE = "%sudo ALL = (ALL : ALL) ALL"
EVERYONE_RULE = "ALL ALL = (ALL) NOPASSWD: /usr/bin/id"
WIDENED_RULE = "wgpush ALL = (root) NOPASSWD: /usr/local/sbin/wgfleet-peers"  # any arguments
UNLOCATED = "in /etc/sudoers, or through an alias or group defined in another file"


@pytest.mark.parametrize(
    ("probe", "rules", "located", "rows"),
    [
        pytest.param(
            "sudo_wgcollect",
            (COUNTERS_RULE, EXTRA_RULE),
            (
                ("/etc/sudoers.d/wgfleet-counters", COUNTERS_RULE),
                ("/etc/sudoers.d/zz-extra", EXTRA_RULE),
            ),
            [
                (
                    "access.wgcollect.sudo",
                    f"wgcollect: sudo also grants `{EXTRA_RULE}` (in /etc/sudoers.d/zz-extra)",
                )
            ],
            id="an extra rule names its file",
        ),
        pytest.param(
            "sudo_wgpush",
            (GROUP_RULE, PEERS_RULE, EVERYONE_RULE),
            (("/etc/sudoers.d/wgfleet-peers", PEERS_RULE),),
            [
                ("access.wgpush.sudo", f"wgpush: sudo also grants `{GROUP_RULE}` ({UNLOCATED})"),
                ("access.wgpush.sudo", f"wgpush: sudo also grants `{EVERYONE_RULE}` ({UNLOCATED})"),
            ],
            id="a rule through a group or ALL in sudoers itself",
        ),
        pytest.param(
            "sudo_wgpush",
            (WIDENED_RULE,),
            (("/etc/sudoers.d/wgfleet-peers", WIDENED_RULE),),
            [
                (
                    "access.wgpush.sudo",
                    f"wgpush: sudo also grants `{WIDENED_RULE}` (in /etc/sudoers.d/wgfleet-peers)",
                ),
                ("access.wgpush.sudo", f"wgpush: the role's sudo rule `{PEERS_RULE}` is missing"),
            ],
            id="the role's rule widened or missing",
        ),
        pytest.param(
            "sudo_wgcollect",
            (COUNTERS_RULE, COUNTERS_RULE),
            (
                ("/etc/sudoers.d/wgfleet-counters", COUNTERS_RULE),
                ("/etc/sudoers.d/copy", COUNTERS_RULE),
            ),
            [
                (
                    "access.wgcollect.sudo",
                    f"wgcollect: sudo also grants `{COUNTERS_RULE}` "
                    "(in /etc/sudoers.d/copy, /etc/sudoers.d/wgfleet-counters)",
                )
            ],
            id="the role's rule twice",
        ),
    ],
)
def test_sudo_beyond_the_roles_rule_fails_naming_where(
    probe: str,
    rules: tuple[str, ...],
    located: tuple[tuple[str, str], ...],
    rows: list[tuple[str, str]],
) -> None:
    assert failed(**{probe: sudo_answer(*rules, located=located)}) == rows


def test_long_rules_continued_on_the_next_line_are_joined() -> None:
    answer = (
        SUDOERS_PARSED
        + f"rule\t{COUNTERS_RULE}\n"
        + "rule\twgcollect ALL = (ALL) NOPASSWD: /bin/cat, /bin/ls,\\\n"
        + "rule\t    /bin/sh\n"
    )
    assert failed(sudo_wgcollect=answer) == [
        (
            "access.wgcollect.sudo",
            "wgcollect: sudo also grants `wgcollect ALL = (ALL) NOPASSWD: /bin/cat, /bin/ls, /bin/sh` "
            "(in /etc/sudoers, or through an alias or group defined in another file)",
        )
    ]


def test_sudo_that_cannot_be_resolved_fails() -> None:
    broken = SUDO_PUSH_ANSWER.replace("visudo\t0\n", "visudo\t1\n").replace(
        "parsed\t/etc/sudoers.d/README: parsed OK\n",
        "parsed\t/etc/sudoers.d/zz: syntax error near line 1 <<<\n",
    )
    assert failed(sudo_wgpush=broken) == [
        (
            "access.wgpush.sudo",
            "wgpush: visudo -c fails: `/etc/sudoers.d/zz: syntax error near line 1 <<<`",
        )
    ]
    assert failed(sudo_wgpush="missing cvtsudoers\n") == [
        ("access.wgpush.sudo", "wgpush: sudo rules unresolved: cvtsudoers is not installed")
    ]
    error = SUDO_COLLECTOR_ANSWER + "rule\tcvtsudoers: unable to open /etc/sudoers.d/x\n"
    assert failed(sudo_wgcollect=error) == [
        (
            "access.wgcollect.sudo",
            "wgcollect: sudo rules unresolved: `cvtsudoers: unable to open /etc/sudoers.d/x`",
        )
    ]


# --- parsing and quoting ----------------------------------------------------------------------


def test_authorized_lines_parse_like_sshd() -> None:
    line = parse_authorized_line(f'command="echo \\"a b\\", c",no-pty {PUSH_KEY}')
    assert line is not None
    assert line.options == 'command="echo \\"a b\\", c",no-pty'
    assert line.blob == PUSH_KEY.split()[1]
    assert parse_authorized_line(PUSH_KEY) == parse_authorized_line("  " + PUSH_KEY + "  ")
    assert parse_authorized_line(PUSH_KEY).options == ""  # type: ignore[union-attr]
    for garbage in (
        'restrict,command="unterminated ' + PUSH_KEY,
        "ssh-ed25519 not-base64!",
        "ssh-ed25519",
        "",
        "restrict",
    ):
        assert parse_authorized_line(garbage) is None, garbage
    assert (
        parse_authorized_line("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQoVCxUvIXXzBR3Tnmm47") is None
    )
    assert public_key_blob(PUSH_KEY) == PUSH_KEY.split()[1]
    assert public_key_blob(PEERS_LINE) is None  # a .pub file holds no options
    assert public_key_blob(None) is None


def test_node_text_is_quoted_safely() -> None:
    assert quote("abc") == "`abc`"
    assert quote("a\nb\x1b[31m") == "`a\\u000ab\\u001b[31m`"
    assert quote("user\u202egnp.exe") == "`user\\u202egnp.exe`"  # right-to-left override
    long = quote("x" * 200)
    assert long == f"`{'x' * 80}…` (200 characters)"


@pytest.mark.skipif(not shutil.which("sh"), reason="no sh")
def test_every_probe_is_valid_shell() -> None:
    for name, script in ACCESS_PROBES.items():
        result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, (name, result.stderr)


def test_a_flood_of_findings_is_cut_to_a_bounded_number_of_rows() -> None:
    lines = [f"junk {n}" for n in range(500)]
    answer = with_key_lines(PUSH_ANSWER, PUSH_FILE, *lines)
    rows = failed(access_wgpush=answer)
    assert len(rows) == MAX_ROWS_PER_CHECK
    assert rows[-2][1] == f"wgpush: {PUSH_FILE} line 20: not a key line (7 characters)"
    assert rows[-1] == ("access.wgpush.authorized_keys", "wgpush: and 481 more findings")


def test_paths_and_names_from_the_node_are_escaped_and_cut() -> None:
    hostile = "/var/lib/wg\u202epush\x1b[2J"
    answer = PUSH_ANSWER.replace(
        "dir\troot\t755\t/var/lib/wgpush\n", f"dir\twgpush\t755\t{hostile}\n"
    ).replace("groups\twgpush\twgpush\n", "groups\twgpush\twgpush " + "g" * 300 + "\n")
    rows = dict(failed(access_wgpush=answer))
    assert rows["access.wgpush.ownership"] == (
        "wgpush: /var/lib/wg\\u202epush\\u001b[2J is owned by wgpush, mode 755"
    )
    assert rows["access.wgpush.groups"] == f"wgpush: member of group `{'g' * 80}…` (300 characters)"
    assert clean("a" * 200, 10) == "aaaaaaaaaa… (200 characters)"
