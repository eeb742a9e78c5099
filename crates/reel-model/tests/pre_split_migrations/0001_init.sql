-- One schema for SQLite and PostgreSQL: ids are UUID text, times are BIGINT
-- microseconds since the Unix epoch, JSON is TEXT. Only types both accept.

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    slots BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);

CREATE TABLE jobs (
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
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE tasks (
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
CREATE UNIQUE INDEX tasks_job_key ON tasks (job_id, task_key);
CREATE INDEX tasks_ready ON tasks (priority, ready_at) WHERE state = 'ready';
CREATE INDEX tasks_running ON tasks (lease_expires_at) WHERE state = 'running';

CREATE TABLE task_deps (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_key TEXT NOT NULL,
    dep_key TEXT NOT NULL,
    PRIMARY KEY (job_id, task_key, dep_key)
);
CREATE INDEX task_deps_dep ON task_deps (job_id, dep_key);

CREATE TABLE job_events (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    task_key TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, at);

CREATE TABLE videos (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    source_key TEXT NOT NULL,
    job_id TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
