//! Reads an init segment (`moov`): track id, timescale, dimensions or audio
//! layout, the RFC 6381 codec string, and the `trex` sample defaults that
//! fragments fall back on.

use crate::reader::{BoxRef, Boxes, Reader};
use crate::CmafError;

/// What the init segment says about its single track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// The `tkhd` track id; every `tfhd` must name it.
    pub track_id: u32,
    /// Ticks per second of every time value in the track (`mdhd`).
    pub timescale: u32,
    /// Video or audio, with the properties manifests need.
    pub kind: TrackKind,
    /// The RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`.
    pub codec: String,
}

/// The kind of a track and the properties manifests advertise for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    /// A video track; dimensions are the coded size from the sample entry.
    Video {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// An audio track.
    Audio {
        /// Channel count from the sample entry.
        channels: u32,
        /// Samples per second.
        sample_rate: u32,
    },
}

/// Reads the `moov` box of an init segment (`ftyp+moov`, or `moov` alone).
///
/// Other top-level boxes are skipped. The `moov` must describe exactly one
/// track with a supported sample entry.
pub fn parse_init(init: &[u8]) -> Result<TrackInfo, CmafError> {
    parse_init_with_defaults(init).map(|parsed| parsed.info)
}

/// Per-sample values a `trun` falls back on when `tfhd` has none (`trex`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SampleDefaults {
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) flags: u32,
}

pub(crate) struct ParsedInit {
    pub(crate) info: TrackInfo,
    pub(crate) defaults: SampleDefaults,
}

pub(crate) fn parse_init_with_defaults(init: &[u8]) -> Result<ParsedInit, CmafError> {
    for found in Boxes::new(init, 0) {
        let found = found?;
        if found.box_type.is(b"moov") {
            return parse_moov(&found);
        }
    }
    Err(CmafError::MissingBox {
        box_type: "moov".to_string(),
        parent: "file".to_string(),
        offset: 0,
    })
}

pub(crate) fn parse_moov(moov: &BoxRef<'_>) -> Result<ParsedInit, CmafError> {
    let mut trak = None;
    let mut n_tracks = 0usize;
    let mut mvex = None;
    for child in moov.children() {
        let child = child?;
        if child.box_type.is(b"trak") {
            n_tracks += 1;
            trak = Some(child);
        } else if child.box_type.is(b"mvex") {
            mvex = Some(child);
        }
    }
    let trak = match (trak, n_tracks) {
        (Some(trak), 1) => trak,
        (_, n_tracks) => {
            return Err(CmafError::Unsupported {
                what: format!(
                "{n_tracks} tracks in moov; reel packages exactly one track per file (use -map)"
            ),
            })
        }
    };

    let (track_id, tkhd_width, tkhd_height) = parse_tkhd(&trak.require_child(b"tkhd")?)?;
    let mdia = trak.require_child(b"mdia")?;
    let timescale = parse_mdhd(&mdia.require_child(b"mdhd")?)?;
    let stsd = mdia
        .require_child(b"minf")?
        .require_child(b"stbl")?
        .require_child(b"stsd")?;
    let (kind, codec) = parse_stsd(&stsd, tkhd_width, tkhd_height, timescale)?;

    let mut defaults = SampleDefaults::default();
    if let Some(mvex) = mvex {
        for child in mvex.children() {
            let child = child?;
            if !child.box_type.is(b"trex") {
                continue;
            }
            let mut reader = child.reader();
            reader.version_and_flags()?;
            if reader.u32()? != track_id {
                continue;
            }
            reader.u32()?; // default_sample_description_index
            defaults = SampleDefaults {
                duration: reader.u32()?,
                size: reader.u32()?,
                flags: reader.u32()?,
            };
        }
    }

    Ok(ParsedInit {
        info: TrackInfo {
            track_id,
            timescale,
            kind,
            codec,
        },
        defaults,
    })
}

/// Returns the track id and the integer parts of the 16.16 width and height.
fn parse_tkhd(tkhd: &BoxRef<'_>) -> Result<(u32, u32, u32), CmafError> {
    let mut reader = tkhd.reader();
    let (version, _) = reader.version_and_flags()?;
    // Version 1 has 64-bit creation and modification times and duration.
    let time_len = if version == 1 { 8 } else { 4 };
    reader.skip(2 * time_len)?;
    let track_id = reader.u32()?;
    reader.skip(4 + time_len)?; // reserved, duration
    reader.skip(8 + 2 + 2 + 2 + 2 + 36)?; // reserved, layer, group, volume, reserved, matrix
    let width = reader.u32()? >> 16;
    let height = reader.u32()? >> 16;
    if track_id == 0 {
        return Err(tkhd.malformed("track id 0 is reserved".to_string()));
    }
    Ok((track_id, width, height))
}

fn parse_mdhd(mdhd: &BoxRef<'_>) -> Result<u32, CmafError> {
    let mut reader = mdhd.reader();
    let (version, _) = reader.version_and_flags()?;
    let time_len = if version == 1 { 8 } else { 4 };
    reader.skip(2 * time_len)?;
    let timescale = reader.u32()?;
    if timescale == 0 {
        return Err(mdhd.malformed("timescale is 0".to_string()));
    }
    Ok(timescale)
}

fn parse_stsd(
    stsd: &BoxRef<'_>,
    tkhd_width: u32,
    tkhd_height: u32,
    timescale: u32,
) -> Result<(TrackKind, String), CmafError> {
    let mut reader = stsd.reader();
    reader.version_and_flags()?;
    let entry_count = reader.u32()?;
    if entry_count != 1 {
        return Err(CmafError::Unsupported {
            what: format!("{entry_count} sample descriptions in stsd; expected exactly 1"),
        });
    }
    let entries_offset = reader.absolute_position();
    let entry = match Boxes::new(reader.rest(), entries_offset).next() {
        Some(entry) => entry?,
        None => return Err(stsd.malformed("no sample entry".to_string())),
    };
    let entry_name = entry.box_type.to_string();
    match &entry.box_type.0 {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" => {
            let mut reader = entry.reader();
            reader.skip(6 + 2 + 2 + 2 + 12)?; // reserved, data_reference_index, pre_defined, reserved
            let width = u32::from(reader.u16()?);
            let height = u32::from(reader.u16()?);
            reader.skip(4 + 4 + 4 + 2 + 32 + 2 + 2)?; // resolutions, reserved, frame_count, name, depth, pre_defined
            let children = Boxes::new(reader.rest(), reader.absolute_position());
            let codec = match &entry.box_type.0 {
                b"avc1" | b"avc3" => avc_codec(&entry_name, find(children, b"avcC", &entry)?)?,
                b"hvc1" | b"hev1" => hevc_codec(&entry_name, find(children, b"hvcC", &entry)?)?,
                _ => av1_codec(find(children, b"av1C", &entry)?)?,
            };
            let (width, height) = if width == 0 || height == 0 {
                (tkhd_width, tkhd_height)
            } else {
                (width, height)
            };
            Ok((TrackKind::Video { width, height }, codec))
        }
        b"mp4a" | b"Opus" | b"ac-3" | b"ec-3" | b"fLaC" => {
            let mut reader = entry.reader();
            reader.skip(6 + 2)?; // reserved, data_reference_index
            let sound_version = reader.u16()?;
            reader.skip(2 + 4)?; // revision, vendor
            let channels = u32::from(reader.u16()?);
            reader.skip(2 + 2 + 2)?; // sample size, compression id, packet size
            let sample_rate_fixed = reader.u32()?;
            match sound_version {
                0 => {}
                // QuickTime sound description version 1 adds four 32-bit fields.
                1 => reader.skip(16)?,
                other => {
                    return Err(CmafError::Unsupported {
                        what: format!("sound sample description version {other} in {entry_name:?}; write audio with -f mp4"),
                    })
                }
            }
            let mut sample_rate = sample_rate_fixed >> 16;
            if sample_rate == 0 {
                sample_rate = timescale;
            }
            let codec = match &entry.box_type.0 {
                b"mp4a" => {
                    let children = Boxes::new(reader.rest(), reader.absolute_position());
                    mp4a_codec(find(children, b"esds", &entry)?)?
                }
                b"Opus" => "opus".to_string(),
                b"fLaC" => "flac".to_string(),
                _ => entry_name,
            };
            Ok((
                TrackKind::Audio {
                    channels,
                    sample_rate,
                },
                codec,
            ))
        }
        _ => Err(CmafError::Unsupported {
            what: format!(
                "sample entry {entry_name:?}; accepted: avc1, avc3, hvc1, hev1, av01, mp4a, Opus, ac-3, ec-3, fLaC"
            ),
        }),
    }
}

fn find<'a>(
    children: Boxes<'a>,
    name: &'static [u8; 4],
    parent: &BoxRef<'_>,
) -> Result<BoxRef<'a>, CmafError> {
    for child in children {
        let child = child?;
        if child.box_type.is(name) {
            return Ok(child);
        }
    }
    Err(CmafError::MissingBox {
        box_type: String::from_utf8_lossy(name).into_owned(),
        parent: parent.box_type.to_string(),
        offset: parent.offset,
    })
}

/// RFC 6381 3.3: `avc1.PPCCLL` from the avcC profile, constraint and level bytes.
fn avc_codec(entry_name: &str, avcc: BoxRef<'_>) -> Result<String, CmafError> {
    let mut reader = avcc.reader();
    reader.u8()?; // configurationVersion
    let profile = reader.u8()?;
    let compatibility = reader.u8()?;
    let level = reader.u8()?;
    Ok(format!(
        "{entry_name}.{profile:02x}{compatibility:02x}{level:02x}"
    ))
}

/// ISO/IEC 14496-15 annex E: `hvc1.[A-C]P.C.TL.B0.B1...` from hvcC.
fn hevc_codec(entry_name: &str, hvcc: BoxRef<'_>) -> Result<String, CmafError> {
    let mut reader = hvcc.reader();
    reader.u8()?; // configurationVersion
    let profile_byte = reader.u8()?;
    let compatibility = reader.u32()?;
    let constraints = reader.take(6)?;
    let level = reader.u8()?;
    let profile_space = ["", "A", "B", "C"][usize::from(profile_byte >> 6)];
    let tier = if profile_byte & 0x20 != 0 { 'H' } else { 'L' };
    let profile_idc = profile_byte & 0x1f;
    let mut codec = format!(
        "{entry_name}.{profile_space}{profile_idc}.{:x}.{tier}{level}",
        compatibility.reverse_bits()
    );
    let n_constraints = constraints
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    for byte in &constraints[..n_constraints] {
        codec.push_str(&format!(".{byte:x}"));
    }
    Ok(codec)
}

/// AV1 ISOBMFF binding 5: `av01.P.LLT.DD` from av1C.
fn av1_codec(av1c: BoxRef<'_>) -> Result<String, CmafError> {
    let mut reader = av1c.reader();
    reader.u8()?; // marker and version
    let profile_and_level = reader.u8()?;
    let flags = reader.u8()?;
    let profile = profile_and_level >> 5;
    let level = profile_and_level & 0x1f;
    let tier = if flags & 0x80 != 0 { 'H' } else { 'M' };
    let bit_depth = match (flags & 0x40 != 0, flags & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Ok(format!("av01.{profile}.{level:02}{tier}.{bit_depth:02}"))
}

/// RFC 6381 3.3: `mp4a.40.N` with N the audio object type from the
/// DecoderSpecificInfo (ISO/IEC 14496-3 1.6.2.1), 2 (AAC-LC) when absent.
fn mp4a_codec(esds: BoxRef<'_>) -> Result<String, CmafError> {
    let mut reader = esds.reader();
    reader.version_and_flags()?;
    let (tag, es_len) = read_descriptor_header(&mut reader)?;
    if tag != 0x03 {
        return Err(reader.error(format!("expected ES_Descriptor (tag 3), found tag {tag}")));
    }
    let es_end = reader.position().saturating_add(es_len);
    reader.u16()?; // ES_ID
    let es_flags = reader.u8()?;
    if es_flags & 0x80 != 0 {
        reader.skip(2)?; // dependsOn_ES_ID
    }
    if es_flags & 0x40 != 0 {
        let url_len = usize::from(reader.u8()?);
        reader.skip(url_len)?;
    }
    if es_flags & 0x20 != 0 {
        reader.skip(2)?; // OCR_ES_Id
    }
    while reader.position() < es_end && !reader.rest().is_empty() {
        let (tag, len) = read_descriptor_header(&mut reader)?;
        if tag != 0x04 {
            reader.skip(len)?;
            continue;
        }
        let config_end = reader.position().saturating_add(len);
        let object_type = reader.u8()?;
        reader.skip(1 + 3 + 4 + 4)?; // streamType, bufferSizeDB, maxBitrate, avgBitrate
        if object_type != 0x40 {
            return Ok(format!("mp4a.{object_type:02X}"));
        }
        while reader.position() < config_end && !reader.rest().is_empty() {
            let (tag, len) = read_descriptor_header(&mut reader)?;
            let body = reader.take(len)?;
            if tag != 0x05 || body.is_empty() {
                continue;
            }
            let mut audio_object_type = body[0] >> 3;
            if audio_object_type == 31 {
                let Some(&next) = body.get(1) else {
                    return Err(
                        reader.error("audio object type escape without extension byte".to_string())
                    );
                };
                audio_object_type = 32 + (((body[0] & 0x07) << 3) | (next >> 5));
            }
            return Ok(format!("mp4a.40.{audio_object_type}"));
        }
        return Ok("mp4a.40.2".to_string());
    }
    Ok("mp4a.40.2".to_string())
}

/// ISO/IEC 14496-1 8.3.3: a tag byte and a size of up to four 7-bit groups.
fn read_descriptor_header(reader: &mut Reader<'_>) -> Result<(u8, usize), CmafError> {
    let tag = reader.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let byte = reader.u8()?;
        len = (len << 7) | usize::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, len))
}
