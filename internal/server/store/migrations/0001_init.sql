-- The console server's schema. Written in SQL that SQLite and PostgreSQL
-- both accept; {{id}} (an auto-increment primary key) and {{blob}} (binary
-- data) are replaced per dialect. Times are microseconds since the Unix
-- epoch (0 = unset); JSON is stored as text.

CREATE TABLE images (
    id {{id}},
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL DEFAULT '',
    image_id TEXT NOT NULL DEFAULT '',
    ref TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created BIGINT NOT NULL DEFAULT 0,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    latest_scan_id BIGINT,
    UNIQUE (registry, repository, tag, digest)
);
CREATE INDEX images_ref ON images (ref);
CREATE INDEX images_latest_scan ON images (latest_scan_id);

CREATE TABLE scans (
    id {{id}},
    image_id BIGINT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    created BIGINT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    report {{blob}},
    critical INTEGER NOT NULL DEFAULT 0,
    high INTEGER NOT NULL DEFAULT 0,
    medium INTEGER NOT NULL DEFAULT 0,
    low INTEGER NOT NULL DEFAULT 0,
    negligible INTEGER NOT NULL DEFAULT 0,
    unknown INTEGER NOT NULL DEFAULT 0,
    assurance TEXT NOT NULL DEFAULT 'none',
    assurance_policy TEXT NOT NULL DEFAULT ''
);
CREATE INDEX scans_image ON scans (image_id, id);

CREATE TABLE vulnerabilities (
    id {{id}},
    scan_id BIGINT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    image_id BIGINT NOT NULL,
    pkg_type TEXT NOT NULL,
    pkg_name TEXT NOT NULL,
    pkg_version TEXT NOT NULL,
    purl TEXT NOT NULL DEFAULT '',
    pkg_path TEXT NOT NULL DEFAULT '',
    vuln_id TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    severity INTEGER NOT NULL,
    cvss DOUBLE PRECISION NOT NULL DEFAULT 0,
    fixed_versions TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    fixable BOOLEAN NOT NULL,
    suppressed BOOLEAN NOT NULL,
    summary TEXT NOT NULL DEFAULT ''
);
CREATE INDEX vulnerabilities_scan ON vulnerabilities (scan_id);
CREATE INDEX vulnerabilities_severity ON vulnerabilities (severity, id);
CREATE INDEX vulnerabilities_vuln ON vulnerabilities (vuln_id);
CREATE INDEX vulnerabilities_cvss ON vulnerabilities (cvss, id);
CREATE INDEX vulnerabilities_package ON vulnerabilities (pkg_name, id);

-- vulnerability_ids holds every identifier (ID and aliases) of every
-- vulnerability row, upper-cased, so that a look-up by any of them uses an
-- index.
CREATE TABLE vulnerability_ids (
    vuln_id TEXT NOT NULL,
    scan_id BIGINT NOT NULL REFERENCES scans (id) ON DELETE CASCADE
);
CREATE INDEX vulnerability_ids_id ON vulnerability_ids (vuln_id, scan_id);
CREATE INDEX vulnerability_ids_scan ON vulnerability_ids (scan_id);

CREATE TABLE packages (
    id {{id}},
    scan_id BIGINT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    image_id BIGINT NOT NULL,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    purl TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    licenses TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX packages_scan ON packages (scan_id);
CREATE INDEX packages_name ON packages (type, name, scan_id);

-- findings are secrets, malware and misconfigurations.
CREATE TABLE findings (
    id {{id}},
    scan_id BIGINT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    image_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    severity INTEGER NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    layer_index INTEGER NOT NULL DEFAULT 0,
    start_line INTEGER NOT NULL DEFAULT 0,
    match_text TEXT NOT NULL DEFAULT '',
    engine TEXT NOT NULL DEFAULT '',
    removed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX findings_scan ON findings (scan_id, kind);
CREATE INDEX findings_kind ON findings (kind, severity, id);

CREATE TABLE licenses (
    id {{id}},
    scan_id BIGINT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    image_id BIGINT NOT NULL,
    pkg_type TEXT NOT NULL,
    pkg_name TEXT NOT NULL,
    pkg_version TEXT NOT NULL,
    expression TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT ''
);
CREATE INDEX licenses_scan ON licenses (scan_id);
CREATE INDEX licenses_expression ON licenses (expression);

CREATE TABLE registries (
    id {{id}},
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    auth_type TEXT NOT NULL,
    username TEXT NOT NULL DEFAULT '',
    secret {{blob}},
    secret_ref TEXT NOT NULL DEFAULT '',
    insecure BOOLEAN NOT NULL DEFAULT FALSE,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE policies (
    id {{id}},
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    is_current BOOLEAN NOT NULL,
    definition TEXT NOT NULL,
    created BIGINT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    UNIQUE (kind, name, version)
);
CREATE INDEX policies_current ON policies (kind, is_current, name);

CREATE TABLE users (
    id {{id}},
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE roles (
    id {{id}},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '[]',
    created BIGINT NOT NULL
);

CREATE TABLE app_scopes (
    id {{id}},
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    definition TEXT NOT NULL DEFAULT '{}',
    created BIGINT NOT NULL
);

CREATE TABLE role_bindings (
    id {{id}},
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    role_id BIGINT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL DEFAULT '[]',
    created BIGINT NOT NULL,
    UNIQUE (subject_kind, subject, role_id)
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL DEFAULT '[]',
    expires BIGINT NOT NULL DEFAULT 0,
    last_used BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_hash TEXT NOT NULL,
    expires BIGINT NOT NULL,
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL DEFAULT 0,
    identity TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE audit_events (
    seq {{id}},
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL DEFAULT '',
    before_json TEXT NOT NULL DEFAULT '',
    after_json TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL DEFAULT ''
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE exceptions (
    id {{id}},
    scope TEXT NOT NULL,
    vuln_id TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL DEFAULT '',
    expires BIGINT NOT NULL DEFAULT 0,
    justification TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created BIGINT NOT NULL
);
