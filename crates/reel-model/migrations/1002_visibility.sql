-- Who may play a video: 'public' (listed, playable by anyone), 'unlisted'
-- (playable by id, listed to its owner only) or 'private' (listed to its
-- owner only, playable with a signed playback token).
ALTER TABLE videos ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';
