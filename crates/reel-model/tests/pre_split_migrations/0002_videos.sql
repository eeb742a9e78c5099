-- Videos: what was uploaded and by whom. Their processing state lives in
-- the job (`job_id`); `state` only records what the job cannot: deletion.
ALTER TABLE videos ADD COLUMN source_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN source_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE videos ADD COLUMN owner TEXT;
CREATE INDEX videos_created ON videos (created_at);
