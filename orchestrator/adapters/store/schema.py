"""The quota store's schema, as numbered migrations written once for both SQL dialects.

Types are spelled in the subset both engines read the same way: BIGINT for bytes (SQLite's
INTEGER is 64-bit), TEXT for names and keys, DATE for the few calendar dates kept (stored as
ISO text by SQLite), and BOOLEAN. What may be stored is fixed by ../shared/PRIVACY.md: no table
has a column for a time of user activity, an endpoint or a handshake (a test reads the live
schema to hold that line).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


ID_PLACEHOLDER = "{id}"  # replaced per dialect: an auto-increment integer primary key

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "nodes, plans, accounts, configurations, top-ups, usage totals, counters",
        (
            """
            CREATE TABLE nodes (
                name TEXT PRIMARY KEY,
                address TEXT NOT NULL,
                tunnel_network TEXT NOT NULL UNIQUE,
                listen_port INTEGER NOT NULL DEFAULT 51820,
                interface TEXT NOT NULL DEFAULT 'wg0',
                public_key TEXT,
                key_created_on DATE,
                revision BIGINT NOT NULL DEFAULT 0,
                pushed_revision BIGINT NOT NULL DEFAULT -1,
                last_push_ok BOOLEAN,
                last_sync_ok BOOLEAN
            )
            """,
            """
            CREATE TABLE plans (
                name TEXT PRIMARY KEY,
                quota_bytes BIGINT NOT NULL CHECK (quota_bytes >= 0),
                reset TEXT NOT NULL DEFAULT 'never' CHECK (reset IN ('never', 'monthly')),
                anchor_day INTEGER NOT NULL DEFAULT 1 CHECK (anchor_day BETWEEN 1 AND 28),
                price TEXT
            )
            """,
            f"""
            CREATE TABLE accounts (
                id {ID_PLACEHOLDER},
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                device_id TEXT NOT NULL,
                contact TEXT
            )
            """,
            f"""
            CREATE TABLE configurations (
                id {ID_PLACEHOLDER},
                name TEXT NOT NULL UNIQUE,
                account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                public_key TEXT NOT NULL UNIQUE,
                psk_ref TEXT,
                plan TEXT REFERENCES plans(name),
                quota_bytes BIGINT CHECK (quota_bytes >= 0),
                enabled BOOLEAN NOT NULL DEFAULT TRUE,
                disabled_reason TEXT
                    CHECK (disabled_reason IN ('operator', 'over_quota', 'expired')),
                key_created_on DATE
            )
            """,
            """
            CREATE TABLE configuration_nodes (
                configuration_id BIGINT NOT NULL REFERENCES configurations(id) ON DELETE CASCADE,
                node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
                tunnel_address TEXT NOT NULL,
                PRIMARY KEY (configuration_id, node),
                UNIQUE (node, tunnel_address)
            )
            """,
            f"""
            CREATE TABLE topups (
                id {ID_PLACEHOLDER},
                invoice TEXT NOT NULL UNIQUE,
                configuration_id BIGINT REFERENCES configurations(id) ON DELETE SET NULL,
                amount TEXT NOT NULL,
                bytes_granted BIGINT NOT NULL CHECK (bytes_granted >= 0),
                purchased_on DATE NOT NULL
            )
            """,
            """
            CREATE TABLE usage_totals (
                configuration_id BIGINT NOT NULL REFERENCES configurations(id) ON DELETE CASCADE,
                period_start DATE NOT NULL,
                rx_bytes BIGINT NOT NULL DEFAULT 0 CHECK (rx_bytes >= 0),
                tx_bytes BIGINT NOT NULL DEFAULT 0 CHECK (tx_bytes >= 0),
                PRIMARY KEY (configuration_id, period_start)
            )
            """,
            """
            CREATE TABLE peer_counters (
                node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
                public_key TEXT NOT NULL,
                epoch TEXT NOT NULL,
                rx_bytes BIGINT NOT NULL CHECK (rx_bytes >= 0),
                tx_bytes BIGINT NOT NULL CHECK (tx_bytes >= 0),
                PRIMARY KEY (node, public_key)
            )
            """,
            "CREATE INDEX configuration_nodes_node ON configuration_nodes (node)",
            "CREATE INDEX configurations_account ON configurations (account_id)",
            "CREATE INDEX topups_configuration ON topups (configuration_id)",
        ),
    ),
    Migration(
        2,
        "running totals per configuration, checked by `wgfleet usage check`",
        (
            "ALTER TABLE configurations ADD COLUMN granted_bytes BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE configurations ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        3,
        "key rotation: preshared key age, replaced peer keys in grace, node key overlap, "
        "the controller's SSH keys",
        (
            "ALTER TABLE configurations ADD COLUMN psk_created_on DATE",
            "UPDATE configurations SET psk_created_on = key_created_on WHERE psk_ref IS NOT NULL",
            "ALTER TABLE configurations ADD COLUMN previous_public_key TEXT",
            "ALTER TABLE configurations ADD COLUMN previous_psk_ref TEXT",
            "ALTER TABLE configurations ADD COLUMN previous_key_expires BIGINT",
            "CREATE UNIQUE INDEX configurations_previous_key "
            "ON configurations (previous_public_key)",
            "ALTER TABLE nodes ADD COLUMN next_public_key TEXT",
            "ALTER TABLE nodes ADD COLUMN next_listen_port INTEGER",
            "ALTER TABLE nodes ADD COLUMN next_key_expires BIGINT",
            "ALTER TABLE nodes ADD COLUMN next_key_created_on DATE",
            """
            CREATE TABLE controller_keys (
                purpose TEXT PRIMARY KEY,
                public_key TEXT NOT NULL,
                created_on DATE NOT NULL
            )
            """,
        ),
    ),
    Migration(
        4,
        "each node's last audit verdict, for the operator's fleet view",
        ("ALTER TABLE nodes ADD COLUMN last_audit_ok BOOLEAN",),
    ),
    Migration(
        5,
        "fleet-wide policies applied from a fleet file (key ages, grace, usage, sync interval)",
        ("CREATE TABLE policies (name TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    ),
    Migration(
        6,
        "daily byte totals per node (a location, never a user), kept only if the privacy "
        "profile allows them",
        (
            """
            CREATE TABLE node_daily_totals (
                node TEXT NOT NULL,
                day DATE NOT NULL,
                bytes BIGINT NOT NULL CHECK (bytes >= 0),
                PRIMARY KEY (node, day)
            )
            """,
        ),
    ),
    Migration(
        7,
        "node leases: which run is syncing or pushing a node, so shards never overlap",
        (
            """
            CREATE TABLE node_leases (
                node TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        8,
        "last-seen counters kept as one row per node instead of one per peer, and one used-bytes "
        "running total for the store: a sync of 1,000 nodes x 100 peers writes 1,000 rows and "
        "one usage row per configuration",
        (
            """
            CREATE TABLE node_counters (
                node TEXT PRIMARY KEY REFERENCES nodes(name) ON DELETE CASCADE,
                counters TEXT NOT NULL
            )
            """,
            """
            INSERT INTO node_counters (node, counters)
            SELECT node, {line_agg}(public_key || {tab} || epoch || {tab}
                || CAST(rx_bytes AS TEXT) || {tab} || CAST(tx_bytes AS TEXT), {newline})
            FROM peer_counters GROUP BY node
            """,
            "DROP TABLE peer_counters",
            # The used-bytes running total is kept for the whole store, not per configuration:
            # updating 100,000 configuration rows per sync cost more than the sync's own write.
            "CREATE TABLE store_totals (name TEXT PRIMARY KEY, bytes BIGINT NOT NULL)",
            "INSERT INTO store_totals (name, bytes) "
            "SELECT 'used_bytes', COALESCE(SUM(used_bytes), 0) FROM configurations",
            "ALTER TABLE configurations DROP COLUMN used_bytes",
            "{postgresql_only} ALTER TABLE usage_totals SET (fillfactor = 70)",
        ),
    ),
    Migration(
        9,
        "plans that expire: a validity in days from activation and/or a last valid day; each "
        "configuration's last valid day",
        (
            "ALTER TABLE plans ADD COLUMN validity_days INTEGER CHECK (validity_days > 0)",
            "ALTER TABLE plans ADD COLUMN valid_until DATE",
            "ALTER TABLE configurations ADD COLUMN valid_until DATE",
        ),
    ),
    Migration(
        10,
        "notifications: an outbox of events (kind and subject, no time), delivered once and "
        "deleted; the billing period a configuration's quota warning was sent for",
        (
            """
            CREATE TABLE notifications (
                id {id},
                kind TEXT NOT NULL,
                subject TEXT NOT NULL
            )
            """,
            "ALTER TABLE configurations ADD COLUMN warned_period DATE",
        ),
    ),
    Migration(
        11,
        "last-seen counters as columns: each node's keys apart from its numbers, so a sync "
        "rewrites the numbers only; on PostgreSQL, half of each page of the tables a sync "
        "updates left free, so their updates stay on the page (HOT)",
        (
            # Rows written before this keep peers NULL and their v8 text until rewritten.
            "ALTER TABLE node_counters ADD COLUMN peers TEXT",
            "{postgresql_only} ALTER TABLE usage_totals SET (fillfactor = 50)",
            "{postgresql_only} ALTER TABLE node_counters SET (fillfactor = 50)",
            # Rewritten once, so the free space is there from the next sync on.
            "{postgresql_only} CLUSTER usage_totals USING usage_totals_pkey",
            "{postgresql_only} CLUSTER node_counters USING node_counters_pkey",
        ),
    ),
    Migration(
        12,
        "keys whose removal from a node is pending until that node confirmed it, so no access "
        "outlives its revocation; the configuration a key's last bytes bill (none for a "
        "deleted account's)",
        (
            """
            CREATE TABLE pending_removals (
                node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
                public_key TEXT NOT NULL,
                configuration_id BIGINT REFERENCES configurations(id) ON DELETE SET NULL,
                PRIMARY KEY (node, public_key)
            )
            """,
            "CREATE INDEX pending_removals_configuration ON pending_removals (configuration_id)",
        ),
    ),
    Migration(
        13,
        "dual-stack tunnels: the fleet's IPv6 tunnel prefix (a ULA /48), one /64 per node kept "
        "for the node's life (a configuration's /128 is derived from its IPv4 address), the "
        "host client Endpoints name per node, and a configuration's explicit split tunnel",
        (
            "CREATE TABLE tunnel_prefixes (family TEXT PRIMARY KEY, prefix TEXT NOT NULL)",
            # No reference to nodes: a deploy gives an inventory host its /64 before the run
            # that registers the node.
            "CREATE TABLE node_networks6 (node TEXT PRIMARY KEY, network TEXT NOT NULL UNIQUE)",
            "ALTER TABLE nodes ADD COLUMN client_host TEXT",
            "ALTER TABLE configurations ADD COLUMN split_tunnel TEXT",
            # Every node's peers gain their /128 with its next full push (after the deploy
            # that gives the node its /64): a delta from the old revision must not be sent.
            "UPDATE nodes SET revision = revision + 1",
        ),
    ),
    Migration(
        14,
        "the operations trail: one row per writing session (which use case, which controller, "
        "its start and end in unix seconds, how it ended, how many steps it took); nothing in "
        "it names an account, a configuration or a key",
        (
            f"""
            CREATE TABLE operations (
                id {ID_PLACEHOLDER},
                operation TEXT NOT NULL,
                controller TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                finished_at BIGINT NOT NULL,
                outcome TEXT NOT NULL,
                steps INTEGER NOT NULL
            )
            """,
        ),
    ),
    Migration(
        15,
        "API tokens for `wgfleet serve` (name, a non-secret id, the SHA-256 of the secret, "
        "scopes, the day made and the last valid day, revoked or not; never the secret), and "
        "the name of the token that made each writing session in the operations trail",
        (
            f"""
            CREATE TABLE api_tokens (
                id {ID_PLACEHOLDER},
                name TEXT NOT NULL UNIQUE,
                token_id TEXT NOT NULL UNIQUE,
                secret_hash TEXT NOT NULL,
                scopes TEXT NOT NULL,
                created_on DATE NOT NULL,
                expires_on DATE,
                revoked BOOLEAN NOT NULL DEFAULT FALSE
            )
            """,
            "ALTER TABLE operations ADD COLUMN actor TEXT",
        ),
    ),
    Migration(
        16,
        "when each node last answered a sync (unix seconds; a node's time, never a user's), "
        "for the monitoring metrics",
        ("ALTER TABLE nodes ADD COLUMN last_sync_at BIGINT",),
    ),
    Migration(
        17,
        "preshared keys sealed in the store (AES-256-GCM under a key derived from the fleet "
        "secret, which the store never holds) by reference, with the id of the key that "
        "sealed each, and the id of the fleet's current key",
        (
            "CREATE TABLE fleet_key (id INTEGER PRIMARY KEY CHECK (id = 1), key_id TEXT NOT NULL)",
            """
            CREATE TABLE sealed_secrets (
                ref TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                sealed TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        18,
        "the fleet's controllers: each one's name, the public halves of its deploy, collector "
        "and push SSH keys, the day registered and the day revoked (never a private key)",
        (
            "CREATE TABLE controllers (name TEXT PRIMARY KEY, deploy_key TEXT NOT NULL, "
            "collector_key TEXT NOT NULL, push_key TEXT NOT NULL, added_on DATE NOT NULL, "
            "revoked_on DATE)",
        ),
    ),
    Migration(
        19,
        "the controller files every controller of a PostgreSQL fleet shares: the pinned host "
        "keys, the converged-deploy fingerprints and the fleet file's node settings (public "
        "keys, hashes and node settings; no secret, nothing about a user)",
        ("CREATE TABLE shared_files (name TEXT PRIMARY KEY, content TEXT NOT NULL)",),
    ),
)

# Migrations with a step in Python after their statements (see SqlStore.upgrade): 13 draws
# the fleet's random IPv6 prefix (or takes the settings') and gives every node its /64.
IPV6_MIGRATION = 13

LATEST_VERSION = MIGRATIONS[-1].version
