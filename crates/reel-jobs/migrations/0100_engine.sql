-- The engine's tables. Version 100 on: the product's tables (videos,
-- uploads, keys, sessions) are reel-model's, versions 1000 on, in the same
-- `_sqlx_migrations` table; each migrator ignores the other's versions.
-- Databases made before the split applied versions 1 to 4, which created
-- these tables already: hence IF NOT EXISTS.
-- One schema for SQLite and PostgreSQL: ids are UUID text, times are BIGINT
-- microseconds since the Unix epoch, JSON is TEXT. Only types both accept.

CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    slots BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority BIGINT NOT NULL,
    input TEXT NOT NULL,
    n_unfinished BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    error_task TEXT,
    error_step TEXT,
    error_text TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);

CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority BIGINT NOT NULL,
    deps_remaining BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    payload TEXT NOT NULL,
    output TEXT,
    worker_id TEXT,
    lease_expires_at BIGINT,
    run_after BIGINT NOT NULL,
    ready_at BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    first_claim_latency_us BIGINT,
    progress DOUBLE PRECISION NOT NULL,
    last_error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_job_key ON tasks (job_id, task_key);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (priority, ready_at) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS tasks_running ON tasks (lease_expires_at) WHERE state = 'running';

CREATE TABLE IF NOT EXISTS task_deps (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_key TEXT NOT NULL,
    dep_key TEXT NOT NULL,
    PRIMARY KEY (job_id, task_key, dep_key)
);
CREATE INDEX IF NOT EXISTS task_deps_dep ON task_deps (job_id, dep_key);

CREATE TABLE IF NOT EXISTS job_events (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_key TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, at);
