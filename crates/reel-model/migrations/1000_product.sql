-- The product's tables: videos, uploads, API keys and browser sessions.
-- They share the engine's database and `_sqlx_migrations` table, with
-- versions from 1000 on (the engine's are below 1000). Databases made
-- before the split created them with the engine's versions 1 to 4 in this
-- same shape: hence IF NOT EXISTS.

-- Videos: what was uploaded and by whom. Their processing state lives in
-- the job (`job_id`); `state` only records what the job cannot: deletion.
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    source_key TEXT NOT NULL,
    job_id TEXT,
    created_at BIGINT NOT NULL,
    source_size BIGINT NOT NULL DEFAULT 0,
    source_sha256 TEXT NOT NULL DEFAULT '',
    owner TEXT
);
CREATE INDEX IF NOT EXISTS videos_created ON videos (created_at);

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Resumable uploads (tus, S3-style multipart): one row per upload and one
-- row per part durably stored in the object store. The byte offset is
-- `upload_offset`, since OFFSET is a reserved word in both SQL dialects.
-- `lock_owner`/`lock_until` are a lease, so that several API processes that
-- share this database never write one upload at the same time.
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    protocol TEXT NOT NULL,
    length BIGINT,
    upload_offset BIGINT NOT NULL,
    part_size BIGINT NOT NULL,
    declared_sha256 TEXT,
    filename TEXT NOT NULL,
    metadata TEXT NOT NULL,
    concat TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    lock_owner TEXT,
    lock_until BIGINT,
    video_id TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads (state, expires_at);

CREATE TABLE IF NOT EXISTS upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    part_number BIGINT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- Browser sessions: signing in with an API key once gives an HTTP-only
-- cookie whose token is stored only as a SHA-256 hash.
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
