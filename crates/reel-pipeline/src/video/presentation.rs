//! A video's stored presentation and the two manifests written from it:
//! what the publish chain writes, and what later edits (captions,
//! downloads) read and rewrite, in one place.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use reel_core::VideoId;
use reel_manifest::captions::{segment_webvtt, to_webvtt, Cue};
use reel_manifest::paths::{text_segment_file_name, MEDIA_PLAYLIST, TEXT_FILE};
use reel_manifest::{Presentation, TextTrack};

use super::VideoLayout;

/// Why the presentation could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PresentationError {
    /// The object store failed (worth another try).
    #[error("{what}: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// The store's error.
        source: object_store::Error,
    },
    /// The stored JSON is not a presentation.
    #[error("the stored presentation is not valid: {0}")]
    Corrupt(serde_json::Error),
}

fn store(what: &'static str) -> impl Fn(object_store::Error) -> PresentationError {
    move |source| PresentationError::Store { what, source }
}

/// Reads the video's `presentation.json`.
pub async fn read_presentation(
    objects: &dyn ObjectStore,
    video: VideoId,
) -> Result<Presentation, PresentationError> {
    let location = ObjectPath::from(VideoLayout::new(video).presentation());
    let bytes = objects
        .get(&location)
        .await
        .map_err(store("reading the presentation"))?
        .bytes()
        .await
        .map_err(store("reading the presentation"))?;
    serde_json::from_slice(&bytes).map_err(PresentationError::Corrupt)
}

/// Writes `presentation.json`, the MPD and the multivariant playlist, in
/// that order and each in one put: the rendition playlists they list must
/// exist already.
pub async fn write_presentation(
    objects: &dyn ObjectStore,
    video: VideoId,
    presentation: &Presentation,
) -> Result<(), PresentationError> {
    let layout = VideoLayout::new(video);
    let files = [
        (
            layout.presentation(),
            serde_json::json!(presentation).to_string(),
            "writing the presentation",
        ),
        (
            layout.mpd(),
            reel_manifest::dash_mpd(presentation),
            "writing the MPD",
        ),
        (
            layout.multivariant(),
            reel_manifest::hls_multivariant(presentation),
            "writing the multivariant playlist",
        ),
    ];
    for (key, text, what) in files {
        objects
            .put(&ObjectPath::from(key), PutPayload::from(text))
            .await
            .map_err(store(what))?;
    }
    Ok(())
}

/// Writes a text track's files: the whole `{id}/captions.vtt` (the MPD's
/// sidecar), one WebVTT segment per entry of `track.segments_micros`
/// (`{id}/seg-00001.vtt`, …, each with the cues that overlap it) and the
/// `{id}/index.m3u8` that lists them; the presentation lists the track once
/// they all exist. Captions from the source and uploaded ones go through
/// here alike.
pub async fn write_text_track(
    objects: &dyn ObjectStore,
    video: VideoId,
    track: &TextTrack,
    cues: &[Cue],
) -> Result<(), PresentationError> {
    let layout = VideoLayout::new(video);
    let segments = segment_webvtt(cues, &track.segments_micros);
    let mut files = vec![(
        TEXT_FILE.to_string(),
        to_webvtt(cues),
        "writing the captions",
    )];
    for (segment_idx, text) in segments.into_iter().enumerate() {
        files.push((
            text_segment_file_name(segment_idx + 1),
            text,
            "writing a captions segment",
        ));
    }
    // The playlist last: it names the others.
    files.push((
        MEDIA_PLAYLIST.to_string(),
        reel_manifest::hls_text(track),
        "writing the captions playlist",
    ));
    for (file, text, what) in files {
        objects
            .put(
                &ObjectPath::from(layout.object(&format!("{}/{file}", track.id))),
                PutPayload::from(text),
            )
            .await
            .map_err(store(what))?;
    }
    Ok(())
}

/// Deletes what [`write_text_track`] wrote, as far as the store lets it (a
/// file left behind is listed by no manifest).
pub async fn delete_text_track(objects: &dyn ObjectStore, video: VideoId, track: &TextTrack) {
    let layout = VideoLayout::new(video);
    let n_segments = track.segments_micros.len();
    let files = [TEXT_FILE.to_string(), MEDIA_PLAYLIST.to_string()]
        .into_iter()
        .chain((1..=n_segments).map(text_segment_file_name));
    for file in files {
        let location = ObjectPath::from(layout.object(&format!("{}/{file}", track.id)));
        let _ = objects.delete(&location).await;
    }
}
