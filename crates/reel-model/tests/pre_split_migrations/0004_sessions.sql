-- Browser sessions: signing in with an API key once gives an HTTP-only
-- cookie whose token is stored only as a SHA-256 hash.
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
