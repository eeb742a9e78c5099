//! Reads ffmpeg-written fragmented MP4 (CMAF) files and assembles the
//! fragments of many chunk files into one track of media segments.
//!
//! The pipeline encodes each rendition in time chunks; every chunk is a file
//! `ftyp moov (moof mdat)+` with absolute `tfdt` values and a `moov` that is
//! byte-identical across the chunks of a rendition. The flow is:
//!
//! 1. [`parse_fragmented`] splits one file into its init segment
//!    (`ftyp+moov`), a [`TrackInfo`] (track id, timescale, dimensions or
//!    channels, RFC 6381 codec string) and a list of [`Fragment`]s, each a
//!    zero-copy slice of the input.
//! 2. [`assemble`] checks that the chunks of a rendition fit together (same
//!    init, every segment starts with a sync sample, `tfdt` continuous) and
//!    turns their fragments into numbered [`Segment`]s of a [`Track`]. Only
//!    the `moof` headers are copied, to renumber `mfhd`; the `mdat` payloads
//!    stay slices of the chunk buffers.
//! 3. [`check_continuity`] re-reads an assembled track's bytes and checks the
//!    same invariants end to end; other crates' tests use it on output.
//!
//! [`parse_init`] reads only an init segment.
//!
//! **Architecture invariant:** this crate does no IO and nothing async. It
//! never panics on malformed input: every length is checked and every
//! failure is a [`CmafError`].
#![deny(missing_docs)]

mod assemble;
mod fragment;
mod init;
mod reader;
#[cfg(test)]
mod synthetic;

pub use assemble::{assemble, check_continuity, ByteRange, Segment, Track};
pub use fragment::{parse_fragmented, Fragment, ParsedFile};
pub use init::{parse_init, TrackInfo, TrackKind};

/// Why a file could not be read or a set of chunks could not be assembled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmafError {
    /// A box is truncated, has an impossible size or an invalid field.
    #[error("malformed {box_type:?} box at byte {offset}: {reason}")]
    Malformed {
        /// The four-character type of the box, escaped if not printable.
        box_type: String,
        /// Absolute offset of the box (or of its payload) in the input.
        offset: u64,
        /// What is wrong, in words.
        reason: String,
    },
    /// A box that must be present is not.
    #[error("missing {box_type:?} box in {parent:?} at byte {offset}")]
    MissingBox {
        /// The type of the missing box.
        box_type: String,
        /// The type of the box that should contain it.
        parent: String,
        /// Absolute offset of the parent box.
        offset: u64,
    },
    /// The input is valid ISO BMFF but uses a feature reel does not package.
    #[error("unsupported input: {what}")]
    Unsupported {
        /// The feature and, where possible, what to do instead.
        what: String,
    },
    /// The file has no `moof`: it is not fragmented.
    #[error("no fragments: the file has no moof box; write it with -movflags +frag_keyframe+empty_moov or -frag_duration")]
    NoFragments,
    /// `assemble` was called with no chunks.
    #[error("no chunks to assemble")]
    NoChunks,
    /// A chunk's init segment is not byte-identical to chunk 0's.
    #[error("chunk {chunk}: init segment differs from chunk 0")]
    InitMismatch {
        /// Index of the offending chunk (0-based, in the order given).
        chunk: usize,
    },
    /// A video segment does not start with a sync sample.
    #[error("segment {segment} (chunk {chunk}): first sample is not a sync sample; encode with -force_key_frames on the segment grid")]
    NotSync {
        /// 1-based segment number.
        segment: u32,
        /// 0-based chunk index.
        chunk: usize,
    },
    /// A segment does not start where the previous one ends.
    #[error("segment {segment} (chunk {chunk}): tfdt {found} but the previous segment ends at {expected}")]
    Discontinuity {
        /// 1-based segment number.
        segment: u32,
        /// 0-based chunk index.
        chunk: usize,
        /// Where the previous segment ends, in track timescale.
        expected: u64,
        /// The segment's `tfdt`.
        found: u64,
    },
    /// The first segment does not start at the expected time.
    #[error("segment 1: tfdt {found} but the track should start at {expected}")]
    WrongStart {
        /// The start the caller expected, in track timescale.
        expected: u64,
        /// The first segment's `tfdt`.
        found: u64,
    },
    /// An assembled segment's bytes disagree with its metadata.
    #[error("segment {segment}: {reason}")]
    SegmentMismatch {
        /// 1-based segment number.
        segment: u32,
        /// What disagrees, in words.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
