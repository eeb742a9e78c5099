//! Where every object of a video lives in the store: one place builds the
//! keys, so handlers, the origin, steering and deletion agree.
//!
//! ```text
//! sources/{video}/source                      the uploaded source
//! videos/{video}/master.m3u8 | manifest.mpd | presentation.json
//! videos/{video}/{rendition}/init.mp4 | seg-00001.m4s … | index.m3u8 | iframes.m3u8
//! videos/{video}/poster.jpg
//! videos/{video}/storyboard/storyboard-{n}.jpg | index.vtt
//! jobs/{job}/chunks/{rendition}/{chunk:05}.mp4  intermediates, removed at the end
//! ```
//!
//! Segment and init file names come from [`reel_manifest::paths`], the
//! names the manifests reference.

use reel_core::{JobId, VideoId};

/// The keys of one video's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoLayout {
    video: VideoId,
}

/// The poster image, relative to the video's prefix.
pub const POSTER: &str = "poster.jpg";
/// The storyboard's WebVTT index, relative to the video's prefix.
pub const STORYBOARD_INDEX: &str = "storyboard/index.vtt";

impl VideoLayout {
    /// The layout of `video`.
    pub fn new(video: VideoId) -> Self {
        VideoLayout { video }
    }

    /// The prefix of everything a viewer fetches: `videos/{video}`.
    pub fn prefix(&self) -> String {
        format!("videos/{}", self.video)
    }

    /// A viewer-facing object by its path under the prefix (as in a
    /// `/v/{video}/{path}` URL); the caller has validated `path`.
    pub fn object(&self, path: &str) -> String {
        format!("{}/{path}", self.prefix())
    }

    /// The prefix of the video's source objects: `sources/{video}`.
    pub fn source_prefix(&self) -> String {
        format!("sources/{}", self.video)
    }

    /// The uploaded source: `sources/{video}/source`.
    pub fn source(&self) -> String {
        format!("{}/source", self.source_prefix())
    }

    /// A rendition's (or the audio track's) directory.
    pub fn rendition_dir(&self, rendition: &str) -> String {
        self.object(rendition)
    }

    /// A rendition's init segment.
    pub fn init_segment(&self, rendition: &str) -> String {
        format!(
            "{}/{}",
            self.rendition_dir(rendition),
            reel_manifest::paths::INIT_SEGMENT
        )
    }

    /// A rendition's media segment `number` (1-based).
    pub fn media_segment(&self, rendition: &str, number: u32) -> String {
        format!(
            "{}/{}",
            self.rendition_dir(rendition),
            reel_manifest::paths::segment_file_name(number as usize)
        )
    }

    /// A rendition's media playlist.
    pub fn media_playlist(&self, rendition: &str) -> String {
        format!(
            "{}/{}",
            self.rendition_dir(rendition),
            reel_manifest::paths::MEDIA_PLAYLIST
        )
    }

    /// A video rendition's I-frame playlist.
    pub fn iframe_playlist(&self, rendition: &str) -> String {
        format!(
            "{}/{}",
            self.rendition_dir(rendition),
            reel_manifest::paths::IFRAME_PLAYLIST
        )
    }

    /// The multivariant HLS playlist.
    pub fn multivariant(&self) -> String {
        self.object(reel_manifest::paths::MULTIVARIANT)
    }

    /// The DASH MPD.
    pub fn mpd(&self) -> String {
        self.object(reel_manifest::paths::MPD)
    }

    /// The published presentation, as JSON.
    pub fn presentation(&self) -> String {
        self.object("presentation.json")
    }

    /// The poster image.
    pub fn poster(&self) -> String {
        self.object(POSTER)
    }

    /// Storyboard sheet `index` (from 0).
    pub fn storyboard_sheet(&self, index: usize) -> String {
        self.object(&format!("storyboard/{}", storyboard_sheet_name(index)))
    }

    /// The storyboard's WebVTT index.
    pub fn storyboard_index(&self) -> String {
        self.object(STORYBOARD_INDEX)
    }

    /// The progressive MP4 download of a video rendition.
    pub fn download(&self, rendition: &str) -> String {
        self.object(&format!("{DOWNLOADS}/{rendition}.mp4"))
    }
}

/// The folder of a video's progressive downloads.
pub const DOWNLOADS: &str = "download";

/// The file name of storyboard sheet `index`, as ffmpeg writes it to
/// scratch and as the store keeps it.
pub fn storyboard_sheet_name(index: usize) -> String {
    format!("storyboard-{index}.jpg")
}

/// The keys of one job's intermediate objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobLayout {
    job: JobId,
}

impl JobLayout {
    /// The layout of `job`.
    pub fn new(job: JobId) -> Self {
        JobLayout { job }
    }

    /// The prefix of all the job's intermediates: `jobs/{job}`.
    pub fn prefix(&self) -> String {
        format!("jobs/{}", self.job)
    }

    /// An encoded chunk of a rendition.
    pub fn chunk(&self, rendition: &str, chunk: u64) -> String {
        format!("{}/chunks/{rendition}/{chunk:05}.mp4", self.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let video = VideoId::new_random();
        let layout = VideoLayout::new(video);
        assert_eq!(layout.source(), format!("sources/{video}/source"));
        assert_eq!(
            layout.media_segment("h264-720p", 7),
            format!("videos/{video}/h264-720p/seg-00007.m4s")
        );
        assert_eq!(
            layout.init_segment("audio"),
            format!("videos/{video}/audio/init.mp4")
        );
        assert_eq!(
            layout.storyboard_sheet(2),
            format!("videos/{video}/storyboard/storyboard-2.jpg")
        );
        assert_eq!(layout.multivariant(), format!("videos/{video}/master.m3u8"));
    }
}
