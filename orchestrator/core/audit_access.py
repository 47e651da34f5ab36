"""Judge who can log in to a node and what each login can do, from read-only probe output.

Three accounts are reachable over SSH, each with one controller key (docs/OPERATIONS.md "How a
node is reached"): ``root`` (the deploy key), ``wgcollect`` (the collector key, forced to run the
counters script) and ``wgpush`` (the push key, forced to run the peers entry point). For each,
:data:`ACCESS_PROBES` prints what sshd and sudo will actually honour (the key files sshd reads
for that user per ``sshd -T``, their lines, the per-user sshd settings, sudo's own resolution of
every rule that names the user directly, by a group or an alias), and :func:`access_checks`
compares that with exactly what the roles install and the controller's current public keys.

Every finding is its own row naming the account and the offending line; key material is shown
only as a fingerprint, and any text from the node is escaped and cut short.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.core.audit_text import Finding
from orchestrator.core.inventory import key_fingerprint
from orchestrator.core.node_protocol import (
    COLLECTOR_USER,
    COUNTERS_COMMAND,
    COUNTERS_PROGRAM,
    DEPLOY_USER,
    PEERS_COMMAND,
    PEERS_PROGRAM,
    PUSH_USER,
)

EVIDENCE_TEXT_LIMIT = 80
PATH_TEXT_LIMIT = 160
# A hostile node could list thousands of findings: this many rows a check, then a count.
MAX_ROWS_PER_CHECK = 20


@dataclass(frozen=True)
class Account:
    """An account the controller logs in as, and what the roles let its key do."""

    user: str
    purpose: str  # the controller key that logs in as it: deploy, collector or push
    command: str | None = None  # the forced command (authorized_keys and sshd's ForceCommand)
    sudo_rule: str | None = None  # its only sudo rule, as cvtsudoers prints it

    @property
    def forced(self) -> bool:
        return self.command is not None

    @property
    def key_options(self) -> str:
        """The options the role writes before each of this account's keys."""
        return f'restrict,command="{self.command}"' if self.command else ""


ROOT = Account(DEPLOY_USER, "deploy")
COLLECTOR = Account(
    COLLECTOR_USER,
    "collector",
    COUNTERS_COMMAND,
    f'{COLLECTOR_USER} ALL = (root) NOPASSWD: {COUNTERS_PROGRAM} ""',
)
PUSH = Account(
    PUSH_USER,
    "push",
    PEERS_COMMAND,
    f'{PUSH_USER} ALL = (root) NOPASSWD: {PEERS_PROGRAM} ""',
)
ACCOUNTS = (ROOT, COLLECTOR, PUSH)
FORCED_ACCOUNTS = (COLLECTOR, PUSH)

# Files a shell or sshd would run or read at login; the roles keep none in a forced account's
# home, and /etc/ssh/sshrc runs for every login that has no ~/.ssh/rc (restrict does not stop it).
RC_FILES = (
    ".profile",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".shrc",
    ".kshrc",
    ".zshrc",
    ".ssh/rc",
    ".ssh/environment",
)
SYSTEM_RC = "/etc/ssh/sshrc"

# Per-user sshd settings the audit reads (``sshd -T -C user=...``) and what they must be.
NO_FORWARDING = {
    "disableforwarding": "yes",
    "allowtcpforwarding": "no",
    "allowagentforwarding": "no",
    "allowstreamlocalforwarding": "no",
    "x11forwarding": "no",
    "permittunnel": "no",
    "permituserrc": "no",
    "permituserenvironment": "no",
}
# Other ways in than the key files: each must be off.
OTHER_KEY_SOURCES = {
    "authorizedkeyscommand": "none",
    "authorizedprincipalscommand": "none",
    "trustedusercakeys": "none",
}
SSHD_KEYS = (
    "authorizedkeysfile",
    *OTHER_KEY_SOURCES,
    *NO_FORWARDING,
    "forcecommand",
    "permittty",
)
# At most this much of one key file travels to the controller.
KEY_FILE_READ_LIMIT = 65536


def _account_probe(user: str) -> str:
    """Shell that prints, one tagged line each, what governs ``user``'s logins.

    ``passwd HOME SHELL``, ``password locked|locked-hash|hash|empty`` (a category, never the
    hash), ``groups PRIMARY ALL``, ``sshd KEY VALUE`` (sshd -T for this user), ``dir OWNER MODE
    PATH`` (home and ~/.ssh), ``consults PATH`` (each AuthorizedKeysFile, expanded),
    ``keyfile PATH OWNER MODE`` or ``keyfile PATH missing``, ``key PATH N LINE`` and ``rc PATH``.
    Fields are tab-separated.
    """
    sshd_keys = "|".join(SSHD_KEYS)
    rc_files = " ".join(RC_FILES)
    return (
        f"u={user}; set -f\n"
        "entry=$(getent passwd \"$u\") || { printf 'passwd\\tmissing\\n'; exit 0; }\n"
        "h=$(printf '%s' \"$entry\" | cut -d: -f6); s=$(printf '%s' \"$entry\" | cut -d: -f7)\n"
        'printf \'passwd\\t%s\\t%s\\n\' "$h" "$s"\n'
        'getent shadow "$u" | awk -F: \'{p=$2; if (p=="!"||p=="*"||p=="!!"||p=="!*") c="locked";'
        ' else if (p=="") c="empty"; else if (substr(p,1,1)=="!") c="locked-hash"; else c="hash";'
        ' print "password\\t" c}\'\n'
        'printf \'groups\\t%s\\t%s\\n\' "$(id -gn "$u")" "$(id -Gn "$u")"\n'
        'sshd_t=$(sshd -T -C "user=$u,host=localhost,addr=127.0.0.1" 2>&1)\n'
        f"printf '%s\\n' \"$sshd_t\" | grep -E '^({sshd_keys}) ' | sed 's/^/sshd\\t/'\n"
        'for d in "$h" "$h/.ssh"; do stat -c \'dir\t%U\t%a\t%n\' "$d" 2>/dev/null'
        " || printf 'dir\\t-\\t-\\t%s\\n' \"$d\"; done\n"
        'uid=$(id -u "$u")\n'
        "for f in $(printf '%s\\n' \"$sshd_t\" | sed -n 's/^authorizedkeysfile //p'); do\n"
        '  [ "$f" = none ] && continue\n'
        '  f=$(printf \'%s\' "$f" | sed "s|%h|$h|g; s|%u|$u|g; s|%U|$uid|g; s|%%|%|g")\n'
        '  case "$f" in /*) ;; *) f="$h/$f" ;; esac\n'
        "  printf 'consults\\t%s\\n' \"$f\"\n"
        '  if [ -e "$f" ]; then stat -c \'keyfile\t%n\t%U\t%a\' "$f"\n'
        f'    head -c {KEY_FILE_READ_LIMIT} "$f" | {{ n=0;'
        ' while IFS= read -r line || [ -n "$line" ]; do'
        ' n=$((n + 1)); printf \'key\\t%s\\t%s\\t%s\\n\' "$f" "$n" "$line"; done; }\n'
        "  else printf 'keyfile\\t%s\\tmissing\\n' \"$f\"; fi\n"
        "done\n"
        f'for f in {rc_files}; do [ -e "$h/$f" ] && printf \'rc\\t%s\\n\' "$h/$f"; done\n'
        f"[ -e {SYSTEM_RC} ] && printf 'rc\\t%s\\n' {SYSTEM_RC}\n"
        "true"
    )


def _sudo_probe(user: str) -> str:
    """Shell that prints sudo's own view of every rule granting ``user`` anything.

    ``visudo STATUS`` and ``parsed ...`` (the files sudo reads, from ``visudo -c``); ``rule
    TEXT`` for each rule cvtsudoers resolves for the user across all of them (aliases expanded,
    groups and ``ALL`` matched against the node's own user database, other users pruned);
    ``in FILE TEXT`` for the same resolution of each included file alone, to name where a rule
    lives. ``missing cvtsudoers`` when sudo's tools are not installed.
    """
    resolve = f"cvtsudoers -f sudoers -m user={user} -M -p -e -s defaults,aliases"
    return (
        "command -v cvtsudoers >/dev/null 2>&1 || { echo 'missing cvtsudoers'; exit 0; }\n"
        "parsed=$(visudo -c 2>&1); printf 'visudo\\t%s\\n' \"$?\"\n"
        "printf '%s\\n' \"$parsed\" | sed 's/^/parsed\\t/'\n"
        f"{resolve} /etc/sudoers 2>&1 | sed 's/^/rule\\t/'\n"
        "printf '%s\\n' \"$parsed\" | sed -n 's/: parsed OK$//p' | grep -vx /etc/sudoers |"
        " while IFS= read -r f; do\n"
        f'  {resolve} "$f" 2>/dev/null | while IFS= read -r line; do'
        ' printf \'in\\t%s\\t%s\\n\' "$f" "$line"; done\n'
        "done\n"
        "true"
    )


ACCESS_PROBES: dict[str, str] = {
    **{f"access_{account.user}": _account_probe(account.user) for account in ACCOUNTS},
    **{f"sudo_{account.user}": _sudo_probe(account.user) for account in FORCED_ACCOUNTS},
}


@dataclass(frozen=True)
class ExpectedKeys:
    """The controller's public keys (base64 blobs) for one account.

    ``current``: the key(s) in use, each must be on the node. ``upcoming``: the next key of a
    rotation under way (``KEY.next.pub`` beside the key), accepted beside them.
    """

    current: tuple[str, ...] = ()
    upcoming: tuple[str, ...] = ()

    @classmethod
    def from_lines(
        cls, current: Iterable[str | None], upcoming: Iterable[str | None] = ()
    ) -> ExpectedKeys:
        return cls(
            tuple(blob for blob in map(public_key_blob, current) if blob),
            tuple(blob for blob in map(public_key_blob, upcoming) if blob),
        )


@dataclass(frozen=True)
class ControllerKeys:
    """What each account's authorized_keys must hold, by controller key purpose."""

    by_purpose: Mapping[str, ExpectedKeys] = field(default_factory=dict)

    def expected(self, account: Account) -> ExpectedKeys:
        return self.by_purpose.get(account.purpose, ExpectedKeys())


def public_key_blob(line: str | None) -> str | None:
    """The base64 blob of an OpenSSH public key line (``None`` for none or garbage)."""
    if not line:
        return None
    parsed = parse_authorized_line(line)
    return parsed.blob if parsed and not parsed.options else None


@dataclass(frozen=True)
class AuthorizedLine:
    options: str
    key_type: str
    blob: str

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.blob)


_KEY_TYPE = re.compile(r"^(ssh|ecdsa|sk|rsa)-[A-Za-z0-9@.-]+$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def _options_end(text: str) -> int | None:
    """Where an authorized_keys options field ends: the first blank outside double quotes."""
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and quoted:
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return index
        index += 1
    return None


def parse_authorized_line(line: str) -> AuthorizedLine | None:
    """``[options] keytype base64 [comment]`` as sshd reads it; ``None`` if it is no key line."""
    text = line.strip()
    first = text.split(None, 1)[0] if text else ""
    if _KEY_TYPE.match(first):
        options, rest = "", text
    else:
        end = _options_end(text)
        if end is None:
            return None
        options, rest = text[:end], text[end:].strip()
    fields = rest.split(None, 2)
    if len(fields) < 2 or not _KEY_TYPE.match(fields[0]) or not _BASE64.match(fields[1]):
        return None
    try:
        key_fingerprint(fields[1])
    except (binascii.Error, ValueError):
        return None
    return AuthorizedLine(options, fields[0], fields[1])


_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def clean(text: str, limit: int = PATH_TEXT_LIMIT) -> str:
    """Node text (a path, a name) made safe for a report row: control, format (bidi) and odd
    blank characters escaped, cut to ``limit`` characters with the full length noted."""
    escaped = "".join(
        char
        if char == " "
        or (unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char.isprintable())
        else f"\\u{ord(char):04x}"
        for char in text
    )
    if len(escaped) > limit:
        return f"{escaped[:limit]}… ({len(text)} characters)"
    return escaped


def quote(text: str, limit: int = EVIDENCE_TEXT_LIMIT) -> str:
    """A value from the node (options, a rule, a setting) in backquotes, made safe by clean()."""
    cleaned = clean(text, limit)
    if cleaned.endswith(" characters)") and len(text) > limit:
        value, _, rest = cleaned.rpartition("… (")
        return f"`{value}…` ({rest}"
    return f"`{cleaned}`"


@dataclass
class _AccountProbe:
    """One account's probe output, split by tag."""

    passwd: list[str] = field(default_factory=list)
    shadow_state: str = ""  # a category: locked, locked-hash, hash, empty
    groups: tuple[str, list[str]] | None = None
    sshd: dict[str, str] = field(default_factory=dict)
    dirs: list[tuple[str, str, str]] = field(default_factory=list)  # owner, mode, path
    consults: list[str] = field(default_factory=list)
    keyfiles: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    keys: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    rc: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> _AccountProbe:
        probe = cls()
        for line in text.splitlines():
            tag, _, rest = line.partition("\t")
            fields = rest.split("\t")
            if tag == "passwd":
                probe.passwd = fields
            elif tag == "password":
                probe.shadow_state = rest.strip()
            elif tag == "groups" and len(fields) == 2:
                probe.groups = (fields[0], fields[1].split())
            elif tag == "sshd":
                key, _, value = rest.partition(" ")
                probe.sshd.setdefault(key.lower(), value.strip())
            elif tag == "dir" and len(fields) == 3:
                probe.dirs.append((fields[0], fields[1], fields[2]))
            elif tag == "consults":
                probe.consults.append(rest)
            elif tag == "keyfile" and len(fields) >= 2:
                probe.keyfiles[fields[0]] = (
                    None if fields[1] == "missing" or len(fields) < 3 else (fields[1], fields[2])
                )
            elif tag == "key":
                path, _, numbered = rest.partition("\t")
                number, _, content = numbered.partition("\t")
                if number.isdigit():
                    probe.keys.setdefault(path, []).append((int(number), content))
            elif tag == "rc":
                probe.rc.append(rest)
        return probe

    @property
    def home(self) -> str:
        return self.passwd[0] if len(self.passwd) == 2 else ""

    @property
    def shell(self) -> str:
        return self.passwd[1] if len(self.passwd) == 2 else ""


def _sshd_differences(user: str, sshd: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """Each setting whose effective value (`sshd -T` for the user) is not the wanted one."""
    return [
        f"{user}: sshd -T gives {key} {quote(sshd.get(key, 'unset'))}, want {value}"
        for key, value in wanted.items()
        if sshd.get(key, "unset") != value
    ]


def _writable_by_others(mode: str) -> bool:
    try:
        return bool(int(mode, 8) & 0o022)
    except ValueError:
        return True


class _AccessJudge:
    def __init__(self, probes: Mapping[str, str], keys: ControllerKeys | None) -> None:
        self.probes = probes
        self.keys = keys
        self.findings: list[Finding] = []

    def add(self, account: Account, check: str, passed: bool, evidence: str) -> None:
        self.findings.append(Finding(f"access.{account.user}.{check}", passed, evidence))

    def report(self, account: Account, check: str, problems: list[str], passing: str) -> None:
        """One failing row per problem (at most MAX_ROWS_PER_CHECK), or one passing row."""
        shown = problems[:MAX_ROWS_PER_CHECK]
        if len(problems) > MAX_ROWS_PER_CHECK:
            shown[-1] = f"{account.user}: and {len(problems) - len(shown) + 1} more findings"
        for problem in shown:
            self.add(account, check, False, problem)
        if not problems:
            self.add(account, check, True, passing)

    def judge(self, account: Account) -> None:
        text = self.probes.get(f"access_{account.user}")
        if text is None:
            self.add(account, "account", False, f"{account.user}: no probe answer")
            return
        probe = _AccountProbe.parse(text)
        if probe.passwd == ["missing"] or not probe.home:
            self.add(account, "account", False, f"{account.user}: no such account")
            return
        own_file = f"{probe.home.rstrip('/')}/.ssh/authorized_keys"
        self.authorized_keys(account, probe, own_file)
        self.key_sources(account, probe, own_file)
        self.sshd(account, probe)
        self.ownership(account, probe, own_file)
        if account.forced:
            self.login(account, probe)
            self.groups(account, probe)
            self.rc_files(account, probe)
            self.sudo(account)

    # --- keys ---------------------------------------------------------------------------------

    def _key_name(self, account: Account, blob: str, expected: ExpectedKeys) -> str | None:
        if blob in expected.current:
            return f"the controller's {account.purpose} key"
        if blob in expected.upcoming:
            return f"the controller's next {account.purpose} key (a rotation under way)"
        return None

    def authorized_keys(self, account: Account, probe: _AccountProbe, own_file: str) -> None:
        user = account.user
        expected = self.keys.expected(account) if self.keys else ExpectedKeys()
        if not expected.current:
            self.add(
                account,
                "authorized_keys",
                False,
                f"{user}: the controller has no {account.purpose} public key to compare with",
            )
            return
        if own_file not in probe.keyfiles:
            # Not consulted by sshd at all: key_sources says so; nothing here to judge.
            self.add(
                account, "authorized_keys", False, f"{user}: {clean(own_file)} is not read by sshd"
            )
            return
        if probe.keyfiles[own_file] is None:
            self.add(account, "authorized_keys", False, f"{user}: {clean(own_file)} is missing")
            return
        problems: list[str] = []
        good: list[str] = []
        seen: dict[str, int] = {}
        for number, content in probe.keys.get(own_file, []):
            if not content.strip() or content.lstrip().startswith("#"):
                continue
            where = f"{user}: {clean(own_file)} line {number}"
            parsed = parse_authorized_line(content)
            if parsed is None:
                problems.append(f"{where}: not a key line ({len(content)} characters)")
                continue
            name = self._key_name(account, parsed.blob, expected)
            shown = quote(parsed.options) if parsed.options else "no options"
            if name is None:
                problems.append(
                    f"{where}: key {parsed.fingerprint} is not the controller's {account.purpose}"
                    f" key ({shown})"
                )
            elif parsed.blob in seen:
                problems.append(
                    f"{where}: {name} {parsed.fingerprint} again (first on line "
                    f"{seen[parsed.blob]}) ({shown})"
                )
            elif account.forced and parsed.options != account.key_options:
                problems.append(
                    f"{where}: {name} {parsed.fingerprint} has {shown}, not "
                    f"{quote(account.key_options)}"
                )
            else:
                good.append(f"{name} {parsed.fingerprint}")
            seen.setdefault(parsed.blob, number)
        for blob in expected.current:
            if blob not in seen:
                problems.append(
                    f"{user}: {clean(own_file)} lacks the controller's {account.purpose} key "
                    f"{key_fingerprint(blob)}"
                )
        options = f" with {quote(account.key_options)}" if account.forced else ""
        self.report(
            account,
            "authorized_keys",
            problems,
            f"{user}: {len(good)} key(s) in {clean(own_file)}: {'; '.join(good)}{options}",
        )

    def key_sources(self, account: Account, probe: _AccountProbe, own_file: str) -> None:
        user = account.user
        problems: list[str] = []
        for path in probe.consults:
            if path == own_file:
                continue
            held = [
                parsed.fingerprint
                for _number, content in probe.keys.get(path, [])
                if (parsed := parse_authorized_line(content)) is not None
            ]
            state = (
                "missing now"
                if probe.keyfiles.get(path) is None
                else f"holds {len(held)} key(s)" + (f": {', '.join(held)}" if held else "")
            )
            problems.append(f"{user}: sshd also reads keys from {clean(path)} ({state})")
        if own_file not in probe.consults:
            problems.append(f"{user}: sshd does not read {clean(own_file)}")
        problems += _sshd_differences(user, probe.sshd, OTHER_KEY_SOURCES)
        self.report(
            account,
            "key_sources",
            problems,
            f"{user}: sshd reads keys from {clean(own_file)} only; no key command, no user CA",
        )

    # --- sshd ---------------------------------------------------------------------------------

    def sshd(self, account: Account, probe: _AccountProbe) -> None:
        user = account.user
        wanted = dict(NO_FORWARDING)
        if account.command:
            wanted = {"forcecommand": account.command, "permittty": "no", **wanted}
        problems = _sshd_differences(user, probe.sshd, wanted)
        forced = f"forcecommand {account.command}, permittty no, " if account.command else ""
        self.report(account, "sshd", problems, f"{user}: {forced}no forwarding, no user rc")

    # --- the account itself -------------------------------------------------------------------

    def ownership(self, account: Account, probe: _AccountProbe, own_file: str) -> None:
        user = account.user
        entries = [(owner, mode, path) for owner, mode, path in probe.dirs]
        state = probe.keyfiles.get(own_file)
        if state is not None:
            entries.append((state[0], state[1], own_file))
        problems = []
        for owner, mode, path in entries:
            if owner == "-":
                problems.append(f"{user}: {clean(path)} is missing")
            elif owner != "root" or _writable_by_others(mode):
                problems.append(
                    f"{user}: {clean(path)} is owned by {clean(owner)}, mode {clean(mode)}"
                )
        self.report(
            account,
            "ownership",
            problems,
            f"{user}: home, .ssh and authorized_keys owned by root, not writable by others",
        )

    def login(self, account: Account, probe: _AccountProbe) -> None:
        user = account.user
        problems = []
        if probe.shell != "/bin/sh":
            problems.append(f"{user}: login shell {quote(probe.shell)}, want /bin/sh")
        if probe.shadow_state != "locked":
            what = {
                "hash": "a password is set",
                "locked-hash": "a password is set (locked for now)",
                "empty": "the password is empty",
            }.get(probe.shadow_state, "no shadow entry")
            problems.append(f"{user}: {what}, want none (!)")
        self.report(account, "login", problems, f"{user}: shell /bin/sh, no password")

    def groups(self, account: Account, probe: _AccountProbe) -> None:
        user = account.user
        if probe.groups is None:
            self.add(account, "groups", False, f"{user}: groups unreadable")
            return
        primary, every = probe.groups
        problems = (
            [] if primary in (user, "nogroup") else [f"{user}: primary group {quote(primary)}"]
        )
        problems += [
            f"{user}: member of group {quote(group)}" for group in sorted(set(every) - {primary})
        ]
        self.report(account, "groups", problems, f"{user}: only its own group {clean(primary)}")

    def rc_files(self, account: Account, probe: _AccountProbe) -> None:
        problems = [f"{account.user}: {clean(path)} exists" for path in probe.rc]
        self.report(account, "rc_files", problems, f"{account.user}: no rc or environment file")

    # --- sudo ---------------------------------------------------------------------------------

    def sudo(self, account: Account) -> None:
        user = account.user
        text = self.probes.get(f"sudo_{user}")
        if text is None or text.strip() == "missing cvtsudoers":
            why = "no probe answer" if text is None else "cvtsudoers is not installed"
            self.add(account, "sudo", False, f"{user}: sudo rules unresolved: {why}")
            return
        status, parsed, rules, located = _parse_sudo(text)
        problems = []
        if status != "0":
            errors = [line for line in parsed if not line.endswith(": parsed OK")]
            problems.append(
                f"{user}: visudo -c fails: {quote(errors[0] if errors else 'status ' + status)}"
            )
        wanted = _normal_rule(account.sudo_rule or "")
        found_wanted = False
        for rule in rules:
            normal = _normal_rule(rule)
            if normal == wanted and not found_wanted:
                found_wanted = True
                continue
            if rule.startswith("cvtsudoers:"):
                problems.append(f"{user}: sudo rules unresolved: {quote(rule)}")
                continue
            files = sorted(f for f, text in located if _normal_rule(text) == normal)
            where = (
                f"in {', '.join(clean(f) for f in files)}"
                if files
                else "in /etc/sudoers, or through an alias or group defined in another file"
            )
            problems.append(f"{user}: sudo also grants {quote(rule)} ({where})")
        if not found_wanted:
            problems.append(f"{user}: the role's sudo rule {quote(wanted)} is missing")
        self.report(account, "sudo", problems, f"{user}: sudo grants only {quote(wanted)}")


def _joined(lines: Iterable[str]) -> list[str]:
    """cvtsudoers' lines with ``\\``-continued ones joined and blank ones dropped."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line.strip()).strip()
        pending = ""
        if whole:
            out.append(whole)
    if pending.strip():
        out.append(pending.strip())
    return out


def _parse_sudo(text: str) -> tuple[str, list[str], list[str], list[tuple[str, str]]]:
    status = ""
    parsed: list[str] = []
    rules: list[str] = []
    located: dict[str, list[str]] = {}
    for line in text.splitlines():
        tag, _, rest = line.partition("\t")
        if tag == "visudo":
            status = rest.strip()
        elif tag == "parsed":
            parsed.append(rest)
        elif tag == "rule":
            rules.append(rest)
        elif tag == "in":
            path, _, rule = rest.partition("\t")
            located.setdefault(path, []).append(rule)
    pairs = [(path, rule) for path, lines in located.items() for rule in _joined(lines)]
    return status, parsed, _joined(rules), pairs


def _normal_rule(rule: str) -> str:
    return " ".join(rule.split())


def access_checks(probes: Mapping[str, str], keys: ControllerKeys | None) -> list[Finding]:
    """Every account's findings; ``keys`` None means the controller's keys are unknown (each
    authorized_keys check then fails rather than pass unjudged)."""
    judge = _AccessJudge(probes, keys)
    for account in ACCOUNTS:
        judge.judge(account)
    return judge.findings
