-- Webhooks (reel-webhooks' own migration set: versions 3000 and up, so it
-- never collides with reel-jobs' 0001…). Same rules as reel-jobs: ids are
-- text, times BIGINT microseconds since the epoch, JSON is TEXT.

-- A subscription. `events` is the comma-framed list of event types
-- (",video.created,video.ready,") so one LIKE selects the subscribers.
-- The secret must be kept in clear: it keys the HMAC of every delivery.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    owner TEXT,
    created_at BIGINT NOT NULL
);

-- The outbox: one row per (webhook, event type, subject), whoever observes
-- the transition and however often; the unique index is what makes an
-- event once per transition. `next_attempt_at` is both the retry schedule
-- and the dispatcher's lease (moved forward when an attempt is claimed).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_status BIGINT,
    last_error TEXT
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook_id, event_type, subject_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

-- How far the watcher has read the engine's tables (it rereads an overlap).
CREATE TABLE webhook_cursor (
    name TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);

-- The watcher's scans of the engine's tables.
CREATE INDEX webhook_job_events_published ON job_events (at) WHERE kind = 'published';
CREATE INDEX webhook_jobs_finished ON jobs (finished_at);
