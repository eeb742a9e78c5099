//! The video job's DAG after the probe: a pure function of the plan, so the
//! task graph is unit-tested without media or a database.

use std::collections::HashMap;

use reel_jobs::store::NewTask;
use reel_media::plan::{ChunkPlan, Plan, RenditionPlan, VideoCodec};
use reel_media::MediaInfo;
use serde_json::json;

use super::download::download_task;
use super::{
    AudioPayload, EncodePayload, PackagePayload, PublishPayload, TaskKind, TextPayload,
    ThumbnailPayload, VideoSettings, VideoTaskInput,
};

/// The key of the first (default) audio track's task.
pub(super) const AUDIO_KEY: &str = "audio";

/// The task key, and the folder, of audio track `track` (from 1).
pub(super) fn audio_key(track: u32) -> String {
    if track <= 1 {
        AUDIO_KEY.to_string()
    } else {
        format!("{AUDIO_KEY}-{track}")
    }
}
/// The key of the thumbnails task.
pub(super) const THUMBNAILS_KEY: &str = "thumbnails";

/// The task key, and the folder, of text track `track` (from 1).
pub(super) fn text_key(track: u32) -> String {
    format!("text-{track}")
}

/// The key of a rendition's package task.
pub(super) fn package_key(rendition: &str) -> String {
    format!("package-{rendition}")
}

/// The tasks after the probe: encodes, audio, packaging, thumbnails and the
/// publish chain.
pub(super) fn fan_out(
    input: &VideoTaskInput,
    info: &MediaInfo,
    plan: &Plan,
    settings: &VideoSettings,
) -> Vec<NewTask> {
    let lowest_rendition_first = settings.lowest_rendition_first;
    let mut tasks = Vec::new();
    let mut publish_deps: Vec<Vec<String>> = Vec::new();
    let mut publish_renditions: Vec<String> = Vec::new();
    let audio_infos = info.audio.iter().chain(&info.more_audio);
    let mut audio_keys = Vec::new();
    for (track_idx, (audio, source)) in plan.audio_tracks().zip(audio_infos).enumerate() {
        let track = u32::try_from(track_idx + 1).unwrap_or(u32::MAX);
        let key = audio_key(track);
        tasks.push(NewTask {
            key: key.clone(),
            kind: TaskKind::Audio.as_str().to_string(),
            priority: 0,
            payload: json!(AudioPayload {
                video: input.video,
                source: input.source.clone(),
                plan: audio.clone(),
                language: source.language.clone(),
                track,
                title: source.title.clone(),
            }),
            depends_on: Vec::new(),
            max_attempts: 3,
        });
        audio_keys.push(key);
    }
    // Text tracks are quick; every publication lists them, like audio.
    let mut text_keys = Vec::new();
    for (track_idx, subtitle) in info.subtitles.iter().enumerate() {
        let track = u32::try_from(track_idx + 1).unwrap_or(u32::MAX);
        let key = text_key(track);
        tasks.push(NewTask {
            key: key.clone(),
            kind: TaskKind::Text.as_str().to_string(),
            priority: 0,
            payload: json!(TextPayload {
                video: input.video,
                source: input.source.clone(),
                index: subtitle.index,
                track,
                origin_seconds: plan.origin_seconds,
                duration_seconds: plan.duration_seconds,
                segments_micros: plan.segment_durations_micros(),
                language: subtitle.language.clone(),
                title: subtitle.title.clone(),
                // Captions show when the viewer asks, whatever the
                // container's default flag (Matroska sets it on every track).
                default: false,
            }),
            depends_on: Vec::new(),
            max_attempts: 3,
        });
        text_keys.push(key);
    }
    let mut thumbnails_key = None;
    if let Some(video) = &plan.video {
        // Renditions by codec (H.264 first), lowest first within a codec;
        // groups of renditions encoded from one decode.
        let mut renditions = video.renditions.clone();
        renditions.sort_by_key(|rendition| {
            (
                rendition.codec,
                u64::from(rendition.width) * u64::from(rendition.height),
            )
        });
        let (h264, other_codecs): (Vec<RenditionPlan>, Vec<RenditionPlan>) = renditions
            .iter()
            .cloned()
            .partition(|rendition| rendition.codec == VideoCodec::H264);
        // (name, renditions, priority, chunks): the low pass is off the
        // critical path, so it takes bigger chunks (fewer process starts
        // and seeks); its chunks are whole runs of the plan's chunks, so
        // segments still line up.
        let mut groups: Vec<(String, Vec<RenditionPlan>, i64, Vec<ChunkPlan>)> = Vec::new();
        if lowest_rendition_first && h264.len() > 1 {
            groups.push((
                "low".to_string(),
                h264[..1].to_vec(),
                0,
                merge_chunks(&video.chunks, LOW_PASS_CHUNKS_PER_TASK),
            ));
            groups.push((
                "main".to_string(),
                h264[1..].to_vec(),
                20,
                video.chunks.clone(),
            ));
        } else if !h264.is_empty() {
            groups.push(("all".to_string(), h264.clone(), 10, video.chunks.clone()));
        }
        // Every other codec has its own decodes, after every H.264 encode
        // (a lower priority runs first), so a slower encoder never holds
        // back the H.264 outputs of a shared decode nor `playable`.
        for codec in VideoCodec::ALL {
            let members: Vec<RenditionPlan> = other_codecs
                .iter()
                .filter(|rendition| rendition.codec == codec)
                .cloned()
                .collect();
            if !members.is_empty() {
                groups.push((
                    codec.as_str().to_string(),
                    members,
                    OTHER_CODECS_PRIORITY,
                    video.chunks.clone(),
                ));
            }
        }
        let mut plan_without_chunks = video.clone();
        plan_without_chunks.chunks = Vec::new();
        let mut encode_keys_by_rendition: HashMap<String, Vec<String>> = HashMap::new();
        let mut chunks_by_rendition: HashMap<String, usize> = HashMap::new();
        for (group, members, priority, chunks) in &groups {
            for member in members {
                chunks_by_rendition.insert(member.id().to_string(), chunks.len());
            }
            for chunk in chunks {
                let key = format!("encode-{group}-{:05}", chunk.index);
                for member in members {
                    encode_keys_by_rendition
                        .entry(member.id().to_string())
                        .or_default()
                        .push(key.clone());
                }
                tasks.push(NewTask {
                    key,
                    kind: TaskKind::Encode.as_str().to_string(),
                    priority: *priority,
                    payload: json!(EncodePayload {
                        video: input.video,
                        source: input.source.clone(),
                        plan: plan_without_chunks.clone(),
                        chunk: chunk.clone(),
                        renditions: members
                            .iter()
                            .map(|member| member.id().to_string())
                            .collect(),
                    }),
                    depends_on: Vec::new(),
                    max_attempts: 4,
                });
            }
        }
        for rendition in &renditions {
            let id = rendition.id().to_string();
            let key = package_key(&id);
            tasks.push(NewTask {
                key: key.clone(),
                kind: TaskKind::Package.as_str().to_string(),
                priority: 0,
                payload: json!(PackagePayload {
                    video: input.video,
                    rendition: rendition.clone(),
                    frame_rate: video.frame_rate,
                    chunks: chunks_by_rendition
                        .get(&id)
                        .copied()
                        .unwrap_or(video.chunks.len()),
                    planned_frames: video.total_frames,
                }),
                depends_on: encode_keys_by_rendition.remove(&id).unwrap_or_default(),
                max_attempts: 3,
            });
            publish_renditions.push(id);
            publish_deps.push(vec![key]);
        }
        tasks.push(NewTask {
            key: THUMBNAILS_KEY.to_string(),
            kind: TaskKind::Thumbnails.as_str().to_string(),
            priority: 15,
            payload: json!(ThumbnailPayload {
                video: input.video,
                source: input.source.clone(),
                plan: plan_without_chunks.clone(),
            }),
            depends_on: Vec::new(),
            max_attempts: 3,
        });
        thumbnails_key = Some(THUMBNAILS_KEY.to_string());
    }
    let has_audio = !audio_keys.is_empty();
    if publish_deps.is_empty() {
        // Audio only: one publication.
        publish_deps.push(Vec::new());
    }
    let n_steps = publish_deps.len();
    let mut previous: Option<String> = None;
    for (step_idx, step_deps) in publish_deps.into_iter().enumerate() {
        let complete = step_idx + 1 == n_steps;
        let key = format!("publish-{}", step_idx + 1);
        let mut depends_on = step_deps;
        // Every publication lists all renditions so far, so it depends on
        // their package tasks, and follows the previous publication.
        for earlier in publish_renditions.iter().take(step_idx) {
            depends_on.push(package_key(earlier));
        }
        depends_on.extend(audio_keys.iter().cloned());
        depends_on.extend(text_keys.iter().cloned());
        if let Some(previous) = &previous {
            depends_on.push(previous.clone());
        }
        if complete {
            if let Some(thumbnails) = &thumbnails_key {
                depends_on.push(thumbnails.clone());
            }
        }
        tasks.push(NewTask {
            key: key.clone(),
            kind: TaskKind::Publish.as_str().to_string(),
            priority: 0,
            payload: json!(PublishPayload {
                video: input.video,
                complete,
                renditions: publish_renditions
                    .iter()
                    .take(step_idx + 1)
                    .cloned()
                    .collect(),
                audio: has_audio,
            }),
            depends_on,
            max_attempts: 3,
        });
        previous = Some(key);
    }
    // Downloads read the published presentation: after the last
    // publication, so they never delay `playable`.
    if let (Some(video), Some(last_publish)) = (&plan.video, &previous) {
        for rendition in &video.renditions {
            let id = rendition.id().to_string();
            if settings.downloads.includes(&id, &rendition.name) {
                tasks.push(download_task(input.video, &id, vec![last_publish.clone()]));
            }
        }
    }
    tasks
}

/// The priority of the encodes of codecs other than H.264: after every
/// H.264 encode (`low` 0, `all` 10, thumbnails 15, `main` 20).
const OTHER_CODECS_PRIORITY: i64 = 30;

/// How many of the plan's chunks one task of the lowest-rendition pass
/// encodes.
const LOW_PASS_CHUNKS_PER_TASK: usize = 3;

/// Joins runs of `per_task` consecutive chunks into one (renumbered from 0).
fn merge_chunks(chunks: &[ChunkPlan], per_task: usize) -> Vec<ChunkPlan> {
    chunks
        .chunks(per_task.max(1))
        .enumerate()
        .map(|(merged_idx, run)| ChunkPlan {
            index: merged_idx as u32,
            start_frame: run[0].start_frame,
            frame_count: run.iter().map(|chunk| chunk.frame_count).sum(),
            start_seconds: run[0].start_seconds,
            seek_seconds: run[0].seek_seconds,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::StoredObject;
    use reel_media::plan::PlanSettings;
    use reel_media::{MediaLimits, StreamCounts, VideoInfo};

    /// The DAG of a 9 s 640x360 video without audio, in H.264 and AV1.
    fn two_codec_tasks() -> Vec<NewTask> {
        let video = VideoInfo {
            index: 0,
            codec: "h264".to_string(),
            width: 640,
            height: 360,
            sample_aspect_ratio: (1, 1),
            display_width: 640,
            display_height: 360,
            rotation_degrees: 0,
            frame_rate: "25".parse().expect("rate"),
            variable_frame_rate: false,
            pix_fmt: "yuv420p".to_string(),
            bit_depth: 8,
            color_transfer: None,
            color_primaries: None,
            color_space: None,
            hdr: false,
            field_order: None,
            start_time_seconds: 0.0,
            frame_count: None,
            duration_seconds: 9.0,
            keyframes_seconds: Vec::new(),
        };
        let info = MediaInfo {
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".to_string(),
            size_bytes: 1,
            duration_seconds: 9.0,
            start_time_seconds: 0.0,
            video: Some(video),
            audio: None,
            more_audio: Vec::new(),
            subtitles: Vec::new(),
            skipped_subtitles: Vec::new(),
            streams: StreamCounts {
                video: 1,
                audio: 0,
                subtitle: 0,
                data: 0,
                other: 0,
            },
        };
        let settings = VideoSettings {
            limits: MediaLimits::standard(),
            plan: PlanSettings {
                codecs: vec![VideoCodec::H264, VideoCodec::Av1],
                ..PlanSettings::standard()
            },
            encode: reel_media::encode::EncodeSettings::standard(),
            ffmpeg_time_per_media_second: std::time::Duration::from_secs(30),
            scratch_dir: std::path::PathBuf::from("/nonexistent"),
            source_cache_bytes: 0,
            local_store_root: None,
            lowest_rendition_first: true,
            downloads: super::super::DownloadSelection::Off,
        };
        let plan = reel_media::plan::plan(&info, &settings.plan).expect("plannable");
        let input = VideoTaskInput {
            video: reel_core::VideoId::new_random(),
            source: StoredObject {
                key: "sources/x".to_string(),
                size: 1,
                sha256: String::new(),
            },
        };
        fan_out(&input, &info, &plan, &settings)
    }

    /// The rendition ids a task's payload names.
    fn payload_renditions(task: &NewTask) -> Vec<String> {
        task.payload["renditions"]
            .as_array()
            .expect("renditions")
            .iter()
            .map(|id| id.as_str().expect("id").to_string())
            .collect()
    }

    #[test]
    fn other_codecs_encode_after_h264_and_publish_after_it() {
        let tasks = two_codec_tasks();
        let encodes: Vec<(&str, i64, Vec<String>)> = tasks
            .iter()
            .filter(|task| task.kind == "encode")
            .map(|task| (task.key.as_str(), task.priority, payload_renditions(task)))
            .collect();
        let ids = |list: &[&str]| -> Vec<String> { list.iter().map(|id| id.to_string()).collect() };
        assert_eq!(
            encodes,
            vec![
                ("encode-low-00000", 0, ids(&["h264-240p"])),
                ("encode-main-00000", 20, ids(&["h264-360p"])),
                ("encode-main-00001", 20, ids(&["h264-360p"])),
                ("encode-av1-00000", 30, ids(&["av1-240p", "av1-360p"])),
                ("encode-av1-00001", 30, ids(&["av1-240p", "av1-360p"])),
            ]
        );
        let publications: Vec<(&str, Vec<String>, bool)> = tasks
            .iter()
            .filter(|task| task.kind == "publish")
            .map(|task| {
                let complete = task.payload["complete"].as_bool().expect("complete");
                (task.key.as_str(), payload_renditions(task), complete)
            })
            .collect();
        assert_eq!(
            publications,
            vec![
                ("publish-1", ids(&["h264-240p"]), false),
                ("publish-2", ids(&["h264-240p", "h264-360p"]), false),
                (
                    "publish-3",
                    ids(&["h264-240p", "h264-360p", "av1-240p"]),
                    false
                ),
                (
                    "publish-4",
                    ids(&["h264-240p", "h264-360p", "av1-240p", "av1-360p"]),
                    true
                ),
            ]
        );
    }

    #[test]
    fn merged_chunks_cover_the_same_frames_in_whole_runs() {
        let chunks: Vec<ChunkPlan> = (0..7u32)
            .map(|idx| ChunkPlan {
                index: idx,
                start_frame: u64::from(idx) * 120,
                frame_count: if idx == 6 { 45 } else { 120 },
                start_seconds: f64::from(idx) * 4.0,
                seek_seconds: Some(f64::from(idx) * 4.0 - 0.5),
            })
            .collect();
        let merged = merge_chunks(&chunks, 3);
        let summary: Vec<(u32, u64, u32, Option<f64>)> = merged
            .iter()
            .map(|chunk| {
                (
                    chunk.index,
                    chunk.start_frame,
                    chunk.frame_count,
                    chunk.seek_seconds,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 0, 360, Some(-0.5)),
                (1, 360, 360, Some(11.5)),
                (2, 720, 45, Some(23.5)),
            ]
        );
    }
}
