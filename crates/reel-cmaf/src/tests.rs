//! Unit tests over synthetic files: `trun` layouts, assembly, continuity
//! errors, bitrates, and corrupted input that must fail without panicking.

use bytes::Bytes;

use crate::synthetic::{chunk, fragment, init_segment, SyntheticTrack, TrunLayout};
use crate::*;

fn ntsc(layout: TrunLayout) -> SyntheticTrack {
    SyntheticTrack {
        timescale: 30000,
        sample_duration: 1001,
        samples_per_fragment: 120,
        sample_size: 100,
        layout,
        starts_with_sync: true,
        with_styp: false,
    }
}

fn parse(data: Vec<u8>) -> ParsedFile {
    parse_fragmented(Bytes::from(data)).expect("synthetic file parses")
}

#[test]
fn reads_both_trun_layouts() {
    for layout in [TrunLayout::Defaults, TrunLayout::PerSample] {
        let track = ntsc(layout);
        let parsed = parse(chunk(&track, 1, 240240, 2));
        assert_eq!(parsed.info.codec, "avc1.64001f");
        assert_eq!(parsed.info.timescale, 30000);
        assert_eq!(
            parsed.info.kind,
            TrackKind::Video {
                width: 640,
                height: 360
            }
        );
        assert_eq!(&parsed.init[..], &init_segment(&track)[..]);
        let starts: Vec<u64> = parsed
            .fragments
            .iter()
            .map(Fragment::base_decode_time)
            .collect();
        assert_eq!(starts, vec![240240, 360360], "{layout:?}");
        for fragment in &parsed.fragments {
            assert_eq!(fragment.duration(), 120120);
            assert_eq!(fragment.sample_count(), 120);
            assert!(fragment.starts_with_sync());
            assert_eq!(fragment.first_sample_size(), 100);
            let mdat_payload = fragment.bytes().len() as u64 - 120 * 100;
            assert_eq!(fragment.first_sample_offset(), mdat_payload);
        }
    }
}

#[test]
fn styp_belongs_to_the_fragment() {
    let track = SyntheticTrack {
        with_styp: true,
        ..ntsc(TrunLayout::Defaults)
    };
    let parsed = parse(chunk(&track, 1, 0, 2));
    for fragment in &parsed.fragments {
        assert_eq!(&fragment.bytes()[4..8], b"styp");
    }
    let assembled = assemble(vec![parsed]).unwrap();
    check_continuity(&assembled, 0).unwrap();
    let iframe = assembled.segments[0].iframe.unwrap();
    assert_eq!(iframe.offset, 0);
    assert_eq!(iframe.length, assembled.segments[0].size - 119 * 100);
}

#[test]
fn assembles_and_renumbers_chunks() {
    let track = ntsc(TrunLayout::PerSample);
    let chunks = (0..4u32)
        .map(|chunk_idx| parse(chunk(&track, 1, u64::from(chunk_idx) * 240240, 2)))
        .collect();
    let assembled = assemble(chunks).unwrap();
    assert_eq!(assembled.segments.len(), 8);
    assert_eq!(assembled.first_decode_time, 0);
    for (segment_idx, segment) in assembled.segments.iter().enumerate() {
        assert_eq!(segment.number, segment_idx as u32 + 1);
        assert_eq!(segment.start, segment_idx as u64 * 120120);
        assert_eq!(segment.duration, 120120);
        assert_eq!(segment.sample_count, 120);
    }
    check_continuity(&assembled, 0).unwrap();
    assert_eq!(
        check_continuity(&assembled, 1001),
        Err(CmafError::WrongStart {
            expected: 1001,
            found: 0
        })
    );
    assert_eq!(assembled.total_duration(), 960960);
    assert!((assembled.total_duration_seconds() - 32.032).abs() < 1e-9);
    let segment_size = assembled.segments[0].size;
    // Every segment has the same size, so peak and average agree:
    // size * 8 bits over 4.004 s, rounded up.
    let expected_rate = (segment_size * 8 * 30000).div_ceil(120120);
    assert_eq!(assembled.peak_bitrate(), expected_rate);
    assert_eq!(assembled.average_bitrate(), expected_rate);
}

#[test]
fn keeps_prenumbered_fragments_without_copying() {
    let track = ntsc(TrunLayout::Defaults);
    let data = Bytes::from(chunk(&track, 3, 240240, 2));
    let first = parse(chunk(&track, 1, 0, 2));
    let second = parse_fragmented(data.clone()).unwrap();
    let assembled = assemble(vec![first, second]).unwrap();
    let third = &assembled.segments[2];
    assert_eq!(third.number, 3);
    let data_range = data.as_ptr_range();
    assert!(
        data_range.contains(&third.data.as_ptr()),
        "segment 3 was copied"
    );
    check_continuity(&assembled, 0).unwrap();
}

#[test]
fn rejects_a_gap_between_chunks() {
    let track = ntsc(TrunLayout::Defaults);
    let chunks = [0u64, 1, 3]
        .iter()
        .map(|&chunk_idx| parse(chunk(&track, 1, chunk_idx * 240240, 2)))
        .collect();
    let error = assemble(chunks).unwrap_err();
    assert_eq!(
        error,
        CmafError::Discontinuity {
            segment: 5,
            chunk: 2,
            expected: 480480,
            found: 720720
        }
    );
    assert_eq!(
        error.to_string(),
        "segment 5 (chunk 2): tfdt 720720 but the previous segment ends at 480480"
    );
}

#[test]
fn rejects_a_segment_without_a_sync_sample() {
    let track = ntsc(TrunLayout::PerSample);
    let bad = SyntheticTrack {
        starts_with_sync: false,
        ..track
    };
    let chunks = vec![
        parse(chunk(&track, 1, 0, 2)),
        parse(chunk(&bad, 1, 240240, 2)),
    ];
    assert_eq!(
        assemble(chunks).unwrap_err(),
        CmafError::NotSync {
            segment: 3,
            chunk: 1
        }
    );
}

#[test]
fn rejects_a_different_init_segment() {
    let track = ntsc(TrunLayout::Defaults);
    let other = SyntheticTrack {
        timescale: 90000,
        ..track
    };
    let chunks = vec![
        parse(chunk(&track, 1, 0, 1)),
        parse(chunk(&track, 1, 120120, 1)),
        parse(chunk(&other, 1, 120120, 1)),
    ];
    let error = assemble(chunks).unwrap_err();
    assert_eq!(
        error.to_string(),
        "chunk 2: init segment differs from chunk 0"
    );
    assert_eq!(assemble(Vec::new()).unwrap_err(), CmafError::NoChunks);
}

#[test]
fn rejects_files_without_fragments_or_init() {
    let track = ntsc(TrunLayout::Defaults);
    let init_only = init_segment(&track);
    assert_eq!(
        parse_fragmented(Bytes::from(init_only)).unwrap_err(),
        CmafError::NoFragments
    );
    let mut fragment_only = Vec::new();
    fragment(&track, 1, 0, &mut fragment_only);
    let error = parse_fragmented(Bytes::from(fragment_only)).unwrap_err();
    assert!(
        error.to_string().contains("moof before the moov"),
        "{error}"
    );
}

/// Corrupts a synthetic file at every offset (truncation, a 0xff byte, a
/// zeroed byte): each must give `Ok` or `Err`, never a panic, and a
/// truncated file must never parse as the whole.
#[test]
fn corrupted_input_never_panics() {
    for layout in [TrunLayout::Defaults, TrunLayout::PerSample] {
        let track = SyntheticTrack {
            samples_per_fragment: 6,
            sample_size: 3,
            with_styp: layout == TrunLayout::Defaults,
            ..ntsc(layout)
        };
        let original = chunk(&track, 1, 0, 2);
        for cut in 0..original.len() {
            let truncated = Bytes::copy_from_slice(&original[..cut]);
            if let Ok(parsed) = parse_fragmented(truncated) {
                assert!(
                    parsed.fragments.len() < 2,
                    "cut at {cut} parsed as the whole file"
                );
            }
            for replacement in [0xffu8, 0x00, 0x01] {
                let mut corrupted = original.clone();
                corrupted[cut] = replacement;
                if let Ok(parsed) = parse_fragmented(Bytes::from(corrupted)) {
                    if let Ok(assembled) = assemble(vec![parsed]) {
                        let _ = check_continuity(&assembled, 0);
                    }
                }
            }
        }
    }
}

/// Two full segments, then a tail of `tail_samples` in a chunk of its own.
fn with_a_tail(tail_samples: u32) -> Track {
    let track = ntsc(TrunLayout::PerSample);
    let tail = SyntheticTrack {
        samples_per_fragment: tail_samples,
        ..ntsc(TrunLayout::PerSample)
    };
    let chunks = vec![
        parse(chunk(&track, 1, 0, 2)),
        parse(chunk(&tail, 3, 240240, 1)),
    ];
    assemble(chunks).unwrap()
}

#[test]
fn a_tail_shorter_than_half_a_segment_joins_the_segment_before_it() {
    let mut assembled = with_a_tail(59);
    assert!(assembled.join_short_last_segment());
    let durations: Vec<u64> = assembled.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, vec![120120, 179179]);
    assert_eq!(assembled.segments[1].sample_count, 179);
    assert_eq!(assembled.total_duration(), 240240 + 59 * 1001);
    check_continuity(&assembled, 0).unwrap();
    // Joined once, the last segment is no longer short.
    assert!(!assembled.join_short_last_segment());

    let mut half = with_a_tail(60);
    assert!(!half.join_short_last_segment());
    assert_eq!(half.segments.len(), 3);
    check_continuity(&half, 0).unwrap();
}
