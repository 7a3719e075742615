-- The runtime fleet: runtime policies, enforcer groups, enrolled agents,
-- de-duplication of runtime events (the events themselves go to the audit
-- trail), the latest workload inventory per agent and the fleet-wide
-- state (policy revision, global bypass).

CREATE TABLE runtime_policies (
    id {{id}},
    name TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    document TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

-- fleet_state has exactly one row: the revision every policy, bypass or
-- group settings change increments, and the global bypass.
CREATE TABLE fleet_state (
    id INTEGER PRIMARY KEY,
    revision BIGINT NOT NULL,
    bypass TEXT NOT NULL,
    updated BIGINT NOT NULL
);
INSERT INTO fleet_state (id, revision, bypass, updated) VALUES (1, 1, '{"namespaces":["kube-system"],"labels":[]}', 0);

CREATE TABLE enforcer_groups (
    id {{id}},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL,
    settings TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES enforcer_groups (id),
    kind TEXT NOT NULL,
    hostname TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    capabilities TEXT NOT NULL DEFAULT '[]',
    cert_serial TEXT NOT NULL DEFAULT '',
    not_after BIGINT NOT NULL DEFAULT 0,
    enrolled BIGINT NOT NULL,
    last_seen BIGINT NOT NULL DEFAULT 0,
    policy_revision BIGINT NOT NULL DEFAULT 0,
    containers INTEGER NOT NULL DEFAULT 0,
    events_buffered INTEGER NOT NULL DEFAULT 0,
    disabled BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX agents_group ON agents (group_id);
CREATE INDEX agents_hostname ON agents (hostname);

CREATE TABLE runtime_events (
    agent_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    audit_seq BIGINT NOT NULL DEFAULT 0,
    received BIGINT NOT NULL,
    PRIMARY KEY (agent_id, event_id)
);

CREATE TABLE inventories (
    agent_id TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    inventory TEXT NOT NULL,
    time BIGINT NOT NULL,
    received BIGINT NOT NULL
);
