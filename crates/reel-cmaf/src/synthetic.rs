//! Writes small synthetic but valid CMAF files, for unit tests and the
//! throughput example (which includes this file with `#[path]`).
//!
//! The track is one 640x360 H.264 (`avc1.64001f`) video track; sample data
//! is filler, since nothing here decodes it.

/// How a synthetic fragment's samples are described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunLayout {
    /// `tfhd` default duration, size and flags, `trun` first-sample flags.
    Defaults,
    /// Version 1 `trun` with per-sample duration, size, flags and negative
    /// composition offsets, as ffmpeg writes with B-frames.
    PerSample,
}

/// The shape of a synthetic track.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticTrack {
    pub timescale: u32,
    pub sample_duration: u32,
    pub samples_per_fragment: u32,
    pub sample_size: u32,
    pub layout: TrunLayout,
    /// Whether each fragment's first sample is a sync sample.
    pub starts_with_sync: bool,
    /// Whether each fragment starts with an `styp` box.
    pub with_styp: bool,
}

const NON_SYNC: u32 = 0x0101_0000;
const SYNC: u32 = 0x0200_0000;

/// `ftyp` and `moov` for the track, with `trex` defaults that are not used
/// when `tfhd` carries its own.
pub fn init_segment(track: &SyntheticTrack) -> Vec<u8> {
    let mut out = Vec::new();
    write_box(&mut out, b"ftyp", |out| {
        out.extend_from_slice(b"iso6");
        put_u32(out, 0);
        out.extend_from_slice(b"iso6cmfcmp41");
    });
    write_box(&mut out, b"moov", |out| {
        full_box(out, b"mvhd", 0, 0, |out| {
            put_u32(out, 0);
            put_u32(out, 0);
            put_u32(out, 1000);
            put_u32(out, 0);
            put_u32(out, 0x0001_0000);
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&[0; 10 + 36 + 24]);
            put_u32(out, 2);
        });
        write_box(out, b"trak", |out| {
            full_box(out, b"tkhd", 0, 3, |out| {
                put_u32(out, 0);
                put_u32(out, 0);
                put_u32(out, 1);
                put_u32(out, 0);
                put_u32(out, 0);
                out.extend_from_slice(&[0; 8 + 2 + 2 + 2 + 2 + 36]);
                put_u32(out, 640 << 16);
                put_u32(out, 360 << 16);
            });
            write_box(out, b"mdia", |out| {
                full_box(out, b"mdhd", 0, 0, |out| {
                    put_u32(out, 0);
                    put_u32(out, 0);
                    put_u32(out, track.timescale);
                    put_u32(out, 0);
                    out.extend_from_slice(&[0x55, 0xc4, 0, 0]);
                });
                full_box(out, b"hdlr", 0, 0, |out| {
                    put_u32(out, 0);
                    out.extend_from_slice(b"vide");
                    out.extend_from_slice(&[0; 12]);
                    out.extend_from_slice(b"video\0");
                });
                write_box(out, b"minf", |out| {
                    write_box(out, b"stbl", |out| {
                        full_box(out, b"stsd", 0, 0, |out| {
                            put_u32(out, 1);
                            write_box(out, b"avc1", |out| {
                                out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
                                out.extend_from_slice(&[0; 16]);
                                out.extend_from_slice(&640u16.to_be_bytes());
                                out.extend_from_slice(&360u16.to_be_bytes());
                                put_u32(out, 0x0048_0000);
                                put_u32(out, 0x0048_0000);
                                put_u32(out, 0);
                                out.extend_from_slice(&1u16.to_be_bytes());
                                out.extend_from_slice(&[0; 32]);
                                out.extend_from_slice(&[0, 0x18, 0xff, 0xff]);
                                write_box(out, b"avcC", |out| {
                                    out.extend_from_slice(&[
                                        1, 0x64, 0x00, 0x1f, 0xff, 0xe0, 0x00, 0x00,
                                    ]);
                                });
                            });
                        });
                        for name in [b"stts", b"stsc", b"stsz", b"stco"] {
                            full_box(out, name, 0, 0, |out| {
                                put_u32(out, 0);
                                if name == b"stsz" {
                                    put_u32(out, 0);
                                }
                            });
                        }
                    });
                });
            });
        });
        write_box(out, b"mvex", |out| {
            full_box(out, b"trex", 0, 0, |out| {
                put_u32(out, 1);
                put_u32(out, 1);
                put_u32(out, 0);
                put_u32(out, 0);
                put_u32(out, NON_SYNC);
            });
        });
    });
    out
}

/// One `[styp] moof mdat` starting at `base_decode_time`.
pub fn fragment(
    track: &SyntheticTrack,
    sequence_number: u32,
    base_decode_time: u64,
    out: &mut Vec<u8>,
) {
    if track.with_styp {
        write_box(out, b"styp", |out| {
            out.extend_from_slice(b"msdh");
            put_u32(out, 0);
            out.extend_from_slice(b"msdhmsixcmfs");
        });
    }
    let moof_start = out.len();
    let first_flags = if track.starts_with_sync {
        SYNC
    } else {
        NON_SYNC
    };
    let mut data_offset_at = 0;
    write_box(out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| put_u32(out, sequence_number));
        write_box(out, b"traf", |out| {
            match track.layout {
                TrunLayout::Defaults => full_box(out, b"tfhd", 0, 0x02_0038, |out| {
                    put_u32(out, 1);
                    put_u32(out, track.sample_duration);
                    put_u32(out, track.sample_size);
                    put_u32(out, NON_SYNC);
                }),
                TrunLayout::PerSample => {
                    full_box(out, b"tfhd", 0, 0x02_0000, |out| put_u32(out, 1))
                }
            }
            full_box(out, b"tfdt", 1, 0, |out| {
                out.extend_from_slice(&base_decode_time.to_be_bytes())
            });
            match track.layout {
                TrunLayout::Defaults => full_box(out, b"trun", 0, 0x005, |out| {
                    put_u32(out, track.samples_per_fragment);
                    data_offset_at = out.len();
                    put_u32(out, 0);
                    put_u32(out, first_flags);
                }),
                TrunLayout::PerSample => full_box(out, b"trun", 1, 0xf01, |out| {
                    put_u32(out, track.samples_per_fragment);
                    data_offset_at = out.len();
                    put_u32(out, 0);
                    for sample_idx in 0..track.samples_per_fragment {
                        put_u32(out, track.sample_duration);
                        put_u32(out, track.sample_size);
                        put_u32(
                            out,
                            if sample_idx == 0 {
                                first_flags
                            } else {
                                NON_SYNC
                            },
                        );
                        let composition_offset: i32 =
                            if sample_idx % 3 == 1 { -1001 } else { 1001 };
                        put_u32(out, composition_offset as u32);
                    }
                }),
            }
        });
    });
    let data_offset = (out.len() - moof_start + 8) as u32;
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    let payload_len = track.samples_per_fragment as usize * track.sample_size as usize;
    put_u32(out, (payload_len + 8) as u32);
    out.extend_from_slice(b"mdat");
    out.resize(out.len() + payload_len, 0xa5);
}

/// A chunk file: init segment then `n_fragments` fragments numbered from
/// `first_sequence_number`, the first at `first_decode_time`.
pub fn chunk(
    track: &SyntheticTrack,
    first_sequence_number: u32,
    first_decode_time: u64,
    n_fragments: u32,
) -> Vec<u8> {
    let mut out = init_segment(track);
    let fragment_duration =
        u64::from(track.sample_duration) * u64::from(track.samples_per_fragment);
    for fragment_idx in 0..n_fragments {
        let start = first_decode_time + u64::from(fragment_idx) * fragment_duration;
        fragment(track, first_sequence_number + fragment_idx, start, &mut out);
    }
    out
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn write_box(out: &mut Vec<u8>, name: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    put_u32(out, 0);
    out.extend_from_slice(name);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full_box(
    out: &mut Vec<u8>,
    name: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, name, |out| {
        put_u32(out, (u32::from(version) << 24) | flags);
        body(out);
    });
}
