-- Owners and roles. Keys get a role (`admin` or `uploader`) and a unique
-- name; videos, uploads and sessions belong to a key's id instead of its
-- name, which was not unique.

ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'uploader';
-- The first key is the one `reel serve` made at its first start: the admin.
UPDATE api_keys SET role = 'admin'
 WHERE id = (SELECT id FROM api_keys ORDER BY created_at, id LIMIT 1);

-- What a name owned goes to the oldest key of that name.
UPDATE videos SET owner = (
    SELECT k.id FROM api_keys k WHERE k.name = videos.owner ORDER BY k.created_at, k.id LIMIT 1
) WHERE owner IS NOT NULL
    AND EXISTS (SELECT 1 FROM api_keys k WHERE k.name = videos.owner);
UPDATE uploads SET owner = (
    SELECT k.id FROM api_keys k WHERE k.name = uploads.owner ORDER BY k.created_at, k.id LIMIT 1
) WHERE EXISTS (SELECT 1 FROM api_keys k WHERE k.name = uploads.owner);
ALTER TABLE sessions ADD COLUMN key_id TEXT;
UPDATE sessions SET key_id = (
    SELECT k.id FROM api_keys k WHERE k.name = sessions.key_name ORDER BY k.created_at, k.id LIMIT 1
);
DELETE FROM sessions WHERE key_id IS NULL;

-- Later keys that shared a name are renamed after their id, so names are unique.
UPDATE api_keys SET name = name || '-' || id
 WHERE EXISTS (
    SELECT 1 FROM api_keys older
     WHERE older.name = api_keys.name
       AND (older.created_at < api_keys.created_at
            OR (older.created_at = api_keys.created_at AND older.id < api_keys.id))
);
CREATE UNIQUE INDEX api_keys_name ON api_keys (name);
CREATE INDEX videos_owner ON videos (owner);
CREATE INDEX uploads_owner ON uploads (owner);
