//! Splits one fragmented MP4 file into its init segment and its fragments.
//!
//! A fragment is `moof mdat`, with the `styp` directly before the `moof`
//! included when there is one. Each fragment's `trun` entries are read once,
//! without allocating, for the duration, the sample count and the first
//! sample's size, offset and sync flag.

use bytes::Bytes;

use crate::init::{parse_moov, SampleDefaults, TrackInfo};
use crate::reader::{BoxRef, Boxes};
use crate::CmafError;

/// A fragmented MP4 file split into its parts.
#[derive(Clone, Debug)]
pub struct ParsedFile {
    /// The init segment: `ftyp` through `moov`, a slice of the input.
    pub init: Bytes,
    /// What the `moov` says about the track.
    pub info: TrackInfo,
    /// The fragments in file order.
    pub fragments: Vec<Fragment>,
}

/// One `moof+mdat` (plus a preceding `styp`) of a file, read but not copied.
///
/// Only [`parse_fragmented`] builds fragments, so the offsets inside always
/// point into `bytes`.
#[derive(Clone, Debug)]
pub struct Fragment {
    base_decode_time: u64,
    duration: u64,
    sample_count: u32,
    starts_with_sync: bool,
    first_sample_size: u32,
    first_sample_offset: u64,
    bytes: Bytes,
    /// Offset of the `mfhd` sequence number inside `bytes`.
    sequence_number_offset: usize,
}

impl Fragment {
    /// The `tfdt` decode time of the first sample, in track timescale.
    pub fn base_decode_time(&self) -> u64 {
        self.base_decode_time
    }

    /// The sum of the sample durations, in track timescale.
    pub fn duration(&self) -> u64 {
        self.duration
    }

    /// The number of samples (at least 1).
    pub fn sample_count(&self) -> u32 {
        self.sample_count
    }

    /// Whether the first sample is a sync sample (an IDR frame for video).
    pub fn starts_with_sync(&self) -> bool {
        self.starts_with_sync
    }

    /// The size in bytes of the first sample.
    pub fn first_sample_size(&self) -> u32 {
        self.first_sample_size
    }

    /// Where the first sample's bytes start, counted from the start of
    /// [`Fragment::bytes`].
    pub fn first_sample_offset(&self) -> u64 {
        self.first_sample_offset
    }

    /// The fragment's bytes: `[styp] moof mdat`, a slice of the input.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub(crate) fn sequence_number_offset(&self) -> usize {
        self.sequence_number_offset
    }
}

/// Splits a fragmented MP4 file into init segment and fragments.
///
/// The file must have one `moov` before its first `moof`, one track, and
/// fragments whose sample data lies inside the `mdat` that follows their
/// `moof`. Unknown top-level boxes (`free`, `sidx`, `emsg`, ...) are skipped.
pub fn parse_fragmented(data: Bytes) -> Result<ParsedFile, CmafError> {
    let slice: &[u8] = &data;
    let mut ftyp_start = None;
    let mut init = None;
    let mut styp_start = None;
    let mut open_moof: Option<(usize, BoxRef<'_>, MoofSummary)> = None;
    let mut fragments = Vec::new();

    for found in Boxes::new(slice, 0) {
        let found = found?;
        match &found.box_type.0 {
            b"ftyp" => {
                ftyp_start.get_or_insert(found.start);
            }
            b"moov" => {
                if init.is_some() {
                    return Err(found.malformed(
                        "a second moov; expected one init segment per file".to_string(),
                    ));
                }
                let parsed = parse_moov(&found)?;
                let init_start = ftyp_start.unwrap_or(found.start);
                init = Some((init_start..found.end(), parsed.info, parsed.defaults));
            }
            b"styp" => {
                styp_start = Some(found.start);
                continue;
            }
            b"moof" => {
                let Some((_, info, defaults)) = &init else {
                    return Err(found.malformed(
                        "moof before the moov; the init segment must come first".to_string(),
                    ));
                };
                if let Some((_, open, _)) = &open_moof {
                    return Err(open.malformed("moof is not followed by an mdat".to_string()));
                }
                let summary = parse_moof(&found, info.track_id, *defaults)?;
                let fragment_start = styp_start.unwrap_or(found.start);
                open_moof = Some((fragment_start, found, summary));
            }
            b"mdat" => {
                if let Some((fragment_start, moof, summary)) = open_moof.take() {
                    check_sample_data(
                        &moof,
                        &summary,
                        found.start + found.header_len,
                        found.end(),
                    )?;
                    let first_sample_offset =
                        moof.start as u64 + summary.first_data_offset - fragment_start as u64;
                    fragments.push(Fragment {
                        base_decode_time: summary.base_decode_time,
                        duration: summary.duration,
                        sample_count: summary.sample_count,
                        starts_with_sync: summary.starts_with_sync,
                        first_sample_size: summary.first_sample_size,
                        first_sample_offset,
                        bytes: data.slice(fragment_start..found.end()),
                        sequence_number_offset: summary.sequence_number_offset + moof.start
                            - fragment_start,
                    });
                }
            }
            _ => {}
        }
        // Only a styp directly before a moof belongs to the fragment.
        styp_start = None;
    }

    if let Some((_, open, _)) = open_moof {
        return Err(open.malformed("moof is not followed by an mdat".to_string()));
    }
    let Some((init_range, info, _)) = init else {
        return Err(CmafError::MissingBox {
            box_type: "moov".to_string(),
            parent: "file".to_string(),
            offset: 0,
        });
    };
    if fragments.is_empty() {
        return Err(CmafError::NoFragments);
    }
    Ok(ParsedFile {
        init: data.slice(init_range),
        info,
        fragments,
    })
}

/// What one `moof` says, with offsets relative to the start of the `moof`.
#[derive(Debug)]
pub(crate) struct MoofSummary {
    pub(crate) sequence_number: u32,
    pub(crate) sequence_number_offset: usize,
    pub(crate) base_decode_time: u64,
    pub(crate) duration: u64,
    pub(crate) sample_count: u32,
    pub(crate) starts_with_sync: bool,
    pub(crate) first_sample_size: u32,
    /// Where the first sample's data starts, from the start of the `moof`.
    pub(crate) first_data_offset: u64,
    /// Each run's data as `(offset from moof start, length)`; CMAF allows
    /// one run per track fragment, so this rarely has more than one entry.
    pub(crate) runs: Vec<(u64, u64)>,
}

// ISO/IEC 14496-12 8.8.7 (tfhd) and 8.8.8 (trun) flag bits.
const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x01;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x04;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x800;
/// 8.8.3.1: `sample_is_non_sync_sample`.
const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;

pub(crate) fn parse_moof(
    moof: &BoxRef<'_>,
    track_id: u32,
    trex: SampleDefaults,
) -> Result<MoofSummary, CmafError> {
    let mut sequence = None;
    let mut traf = None;
    let mut n_trafs = 0usize;
    for child in moof.children() {
        let child = child?;
        if child.box_type.is(b"mfhd") {
            let mut reader = child.reader();
            reader.version_and_flags()?;
            let offset = (reader.absolute_position() - moof.offset) as usize;
            sequence = Some((reader.u32()?, offset));
        } else if child.box_type.is(b"traf") {
            n_trafs += 1;
            traf = Some(child);
        }
    }
    let Some((sequence_number, sequence_number_offset)) = sequence else {
        return Err(CmafError::MissingBox {
            box_type: "mfhd".to_string(),
            parent: "moof".to_string(),
            offset: moof.offset,
        });
    };
    let traf = match (traf, n_trafs) {
        (Some(traf), 1) => traf,
        (_, n_trafs) => {
            return Err(CmafError::Unsupported {
                what: format!(
                    "{n_trafs} track fragments in the moof at byte {}; expected exactly one",
                    moof.offset
                ),
            })
        }
    };

    let tfhd = traf.require_child(b"tfhd")?;
    let mut reader = tfhd.reader();
    let (_, tfhd_flags) = reader.version_and_flags()?;
    let fragment_track_id = reader.u32()?;
    if fragment_track_id != track_id {
        return Err(tfhd.malformed(format!(
            "track id {fragment_track_id} but the init segment describes track {track_id}"
        )));
    }
    if tfhd_flags & TFHD_BASE_DATA_OFFSET != 0 {
        return Err(CmafError::Unsupported {
            what: format!(
                "explicit base data offset in the tfhd at byte {}; write fragments with -movflags +default_base_moof",
                tfhd.offset
            ),
        });
    }
    if tfhd_flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
        reader.u32()?;
    }
    let mut defaults = trex;
    if tfhd_flags & TFHD_DEFAULT_DURATION != 0 {
        defaults.duration = reader.u32()?;
    }
    if tfhd_flags & TFHD_DEFAULT_SIZE != 0 {
        defaults.size = reader.u32()?;
    }
    if tfhd_flags & TFHD_DEFAULT_FLAGS != 0 {
        defaults.flags = reader.u32()?;
    }

    let tfdt = traf.require_child(b"tfdt")?;
    let mut reader = tfdt.reader();
    let (tfdt_version, _) = reader.version_and_flags()?;
    let base_decode_time = if tfdt_version == 1 {
        reader.u64()?
    } else {
        u64::from(reader.u32()?)
    };

    let mut summary = MoofSummary {
        sequence_number,
        sequence_number_offset,
        base_decode_time,
        duration: 0,
        sample_count: 0,
        starts_with_sync: false,
        first_sample_size: 0,
        first_data_offset: 0,
        runs: Vec::with_capacity(1),
    };
    // 8.8.8.3: without a data offset, the first run starts at the base data
    // offset (the moof start, default-base-is-moof) and later runs follow
    // the previous one.
    let mut next_data_offset: u64 = 0;
    for child in traf.children() {
        let trun = child?;
        if !trun.box_type.is(b"trun") {
            continue;
        }
        let mut reader = trun.reader();
        let (_, flags) = reader.version_and_flags()?;
        let sample_count = reader.u32()?;
        if flags & TRUN_DATA_OFFSET != 0 {
            let data_offset = reader.u32()? as i32;
            next_data_offset = u64::try_from(data_offset)
                .map_err(|_| trun.malformed(format!("negative data offset {data_offset}")))?;
        }
        let first_sample_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
            Some(reader.u32()?)
        } else {
            None
        };
        let entry_len = [
            TRUN_DURATION,
            TRUN_SIZE,
            TRUN_FLAGS,
            TRUN_COMPOSITION_OFFSET,
        ]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count()
            * 4;
        let entries = reader.rest();
        if (entries.len() as u64) < u64::from(sample_count) * entry_len as u64 {
            return Err(trun.malformed(format!(
                "{sample_count} samples need {} bytes of entries, {} remain",
                u64::from(sample_count) * entry_len as u64,
                entries.len()
            )));
        }
        let entries = &entries[..sample_count as usize * entry_len];
        let (run_duration, run_size) =
            sum_entries(entries, entry_len, flags, sample_count, defaults);
        if sample_count > 0 && summary.sample_count == 0 {
            let first_entry = &entries[..entry_len];
            let mut field = 0;
            if flags & TRUN_DURATION != 0 {
                field += 4;
            }
            let first_size = if flags & TRUN_SIZE != 0 {
                let size = read_u32(first_entry, field);
                field += 4;
                size
            } else {
                defaults.size
            };
            let first_flags = match first_sample_flags {
                Some(first_flags) => first_flags,
                None if flags & TRUN_FLAGS != 0 => read_u32(first_entry, field),
                None => defaults.flags,
            };
            summary.first_sample_size = first_size;
            summary.starts_with_sync = first_flags & SAMPLE_IS_NON_SYNC == 0;
            summary.first_data_offset = next_data_offset;
        }
        summary.sample_count = summary
            .sample_count
            .checked_add(sample_count)
            .ok_or_else(|| trun.malformed("sample count overflows".to_string()))?;
        summary.duration = summary
            .duration
            .checked_add(run_duration)
            .ok_or_else(|| trun.malformed("duration overflows".to_string()))?;
        summary.runs.push((next_data_offset, run_size));
        next_data_offset = next_data_offset
            .checked_add(run_size)
            .ok_or_else(|| trun.malformed("data size overflows".to_string()))?;
    }
    if summary.sample_count == 0 {
        return Err(traf.malformed("track fragment has no samples".to_string()));
    }
    Ok(summary)
}

/// Checks that every run's data lies inside `[payload_start, payload_end)`,
/// given as offsets in the same slice as `moof.start`.
pub(crate) fn check_sample_data(
    moof: &BoxRef<'_>,
    summary: &MoofSummary,
    payload_start: usize,
    payload_end: usize,
) -> Result<(), CmafError> {
    for &(run_offset, run_size) in &summary.runs {
        let run_start = moof.start as u64 + run_offset;
        let run_end = run_start.saturating_add(run_size);
        if run_start < payload_start as u64 || run_end > payload_end as u64 {
            return Err(moof.malformed(format!(
                "sample data at bytes {run_start}..{run_end} lies outside the next mdat payload {payload_start}..{payload_end}"
            )));
        }
    }
    Ok(())
}

/// Sums the durations and sizes of one run without allocating.
fn sum_entries(
    entries: &[u8],
    entry_len: usize,
    flags: u32,
    sample_count: u32,
    defaults: SampleDefaults,
) -> (u64, u64) {
    let has_duration = flags & TRUN_DURATION != 0;
    let has_size = flags & TRUN_SIZE != 0;
    let size_field = if has_duration { 4 } else { 0 };
    let mut duration = if has_duration {
        0
    } else {
        u64::from(sample_count) * u64::from(defaults.duration)
    };
    let mut size = if has_size {
        0
    } else {
        u64::from(sample_count) * u64::from(defaults.size)
    };
    if entry_len > 0 && (has_duration || has_size) {
        for entry in entries.chunks_exact(entry_len) {
            if has_duration {
                duration += u64::from(read_u32(entry, 0));
            }
            if has_size {
                size += u64::from(read_u32(entry, size_field));
            }
        }
    }
    (duration, size)
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
