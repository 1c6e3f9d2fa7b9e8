-- thoth-rs snapshot schema, version 3 (version 2 lacked releases.metadata_note,
-- version 1 also distributions.url; both are still read).
-- Versions are stored as text but always compared with PEP 440 semantics in
-- Rust; `version_rank` (0 = newest) is a precomputed PEP 440 order.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE projects (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,           -- PEP 503 normalised
    display_name  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ok',      -- 'ok' | 'unavailable'
    status_reason TEXT                             -- why unavailable
);
CREATE TABLE dependency_sets (
    id     INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE                    -- sha256 of the canonical set
);
CREATE TABLE dependencies (
    set_id    INTEGER NOT NULL REFERENCES dependency_sets(id),
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,                       -- normalised
    extras    TEXT NOT NULL DEFAULT '',            -- comma-separated extras requested of it
    specifier TEXT NOT NULL DEFAULT '',
    marker    TEXT,                                -- full marker, incl. extra == '…'
    extra     TEXT,                                -- gating extra of the parent
    PRIMARY KEY (set_id, position)
) WITHOUT ROWID;
CREATE TABLE releases (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects(id),
    version           TEXT NOT NULL,
    version_rank      INTEGER NOT NULL,
    upload_time       TEXT,                        -- earliest file, YYYY-MM-DDTHH:MM:SSZ
    yanked            INTEGER NOT NULL DEFAULT 0,
    yanked_reason     TEXT,
    requires_python   TEXT,
    dependency_set_id INTEGER REFERENCES dependency_sets(id),  -- NULL: no metadata (see metadata_note)
    metadata_note     TEXT,                        -- without metadata: 'not-fetched', or why it is unavailable
    UNIQUE (project_id, version)
);
CREATE TABLE provides_extras (
    release_id INTEGER NOT NULL REFERENCES releases(id),
    name       TEXT NOT NULL,
    PRIMARY KEY (release_id, name)
) WITHOUT ROWID;
CREATE TABLE distributions (
    id              INTEGER PRIMARY KEY,
    release_id      INTEGER NOT NULL REFERENCES releases(id),
    filename        TEXT NOT NULL,
    packagetype     TEXT NOT NULL,                 -- 'wheel' | 'sdist'
    python_tag      TEXT,
    abi_tag         TEXT,
    platform_tag    TEXT,
    sha256          BLOB,                          -- 32 bytes
    size            INTEGER,
    upload_time     TEXT,
    requires_python TEXT,
    yanked          INTEGER NOT NULL DEFAULT 0,
    url             TEXT                           -- absolute file URL on the index
);
-- Derived from the tables above when a snapshot is finished or advisories
-- are imported: one blob per available project holding what a project load
-- reads (format in src/kb/packed.rs). Optional: without it, or with a blob
-- of an unknown format, projects are read from the tables.
CREATE TABLE project_records (
    project_id INTEGER PRIMARY KEY REFERENCES projects(id),
    data       BLOB NOT NULL
);
CREATE TABLE advisories (
    id        TEXT PRIMARY KEY,
    project   TEXT NOT NULL,                       -- normalised
    aliases   TEXT NOT NULL DEFAULT '',            -- comma-separated
    summary   TEXT,
    published TEXT,
    modified  TEXT,
    withdrawn TEXT,
    link      TEXT
);
CREATE TABLE advisory_events (
    advisory_id TEXT NOT NULL REFERENCES advisories(id),
    range_no    INTEGER NOT NULL,
    event_no    INTEGER NOT NULL,
    kind        TEXT NOT NULL,                     -- introduced | fixed | last_affected | limit
    version     TEXT NOT NULL,
    PRIMARY KEY (advisory_id, range_no, event_no)
) WITHOUT ROWID;
CREATE TABLE affected (
    release_id  INTEGER NOT NULL REFERENCES releases(id),
    advisory_id TEXT NOT NULL REFERENCES advisories(id),
    PRIMARY KEY (release_id, advisory_id)
) WITHOUT ROWID;
CREATE INDEX releases_project ON releases(project_id);
CREATE INDEX distributions_release ON distributions(release_id);
CREATE INDEX dependencies_name ON dependencies(name);
CREATE INDEX advisories_project ON advisories(project);
