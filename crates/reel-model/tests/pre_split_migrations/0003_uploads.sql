-- Resumable uploads (tus now, S3-style multipart later): one row per upload
-- and one row per part durably stored in the object store. The byte offset
-- is `upload_offset`, since OFFSET is a reserved word in both SQL dialects.
-- `lock_owner`/`lock_until` are a lease, so that several API processes that
-- share this database never write one upload at the same time.
CREATE TABLE uploads (
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
CREATE INDEX uploads_expiry ON uploads (state, expires_at);

CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    part_number BIGINT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
