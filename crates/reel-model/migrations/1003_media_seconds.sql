-- How long a video lasts, in milliseconds, recorded when its probe accepts
-- it against its owner's budget of media time (limits.media_seconds_per_key);
-- NULL until then.
ALTER TABLE videos ADD COLUMN media_millis BIGINT;
