//! `reel-bench codecs`: what reel's AV1 ladder costs and saves against its
//! H.264 ladder, on one source in one run.
//!
//! 1. Generates the pipeline bench's 1080p30 source (a test pattern with
//!    light temporal noise), not timed.
//! 2. Plans it with reel's plan (`h264,av1`) and encodes every chunk of the
//!    plan with reel's own ffmpeg arguments (`video_chunk_args`: one decode
//!    per chunk, cascaded scaling), one ffmpeg at a time: first the H.264
//!    renditions, then the AV1 ones. CPU seconds are the ffmpeg children's
//!    user+system time (`getrusage(RUSAGE_CHILDREN)`), per media second.
//! 3. Assembles each rendition's chunks with reel's packager and measures
//!    its average bitrate, and its SSIM and PSNR against the source scaled
//!    to the rendition's size (ffmpeg's `ssim` and `psnr` filters, frame by
//!    frame).
//! 4. Equal quality: each AV1 rung is encoded once more at a fixed average
//!    bitrate (1.5 × the H.264 rung's measured bitrate when AV1 came out
//!    below H.264's SSIM, else 0.4 ×), and the bitrate at which AV1 reaches the H.264 rung's SSIM
//!    is interpolated between the two points (log bitrate against SSIM in
//!    dB); a target outside the two points is extrapolated and marked so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reel_media::encode::{video_chunk_args, EncodeSettings, RateControl};
use reel_media::plan::{PlanSettings, RenditionPlan, VideoCodec, VideoPlan};

use crate::pipeline::{children_cpu_seconds, make_source, run};

/// Settings of one codecs benchmark run.
pub struct CodecsBench {
    /// Source duration in seconds.
    pub seconds: u32,
}

/// One rendition's measured output.
struct Measured {
    name: String,
    kbps: f64,
    ssim: f64,
    psnr: f64,
}

/// Runs the benchmark and prints the tables.
pub fn run_bench(bench: CodecsBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let source = make_source(dir.path(), bench.seconds)?;
    let info = tokio::runtime::Runtime::new()?
        .block_on(reel_media::inspect(
            &source,
            &reel_media::MediaLimits::standard(),
            Duration::from_secs(120),
        ))
        .context("probing the source")?;
    let settings = PlanSettings {
        codecs: vec![VideoCodec::H264, VideoCodec::Av1],
        ..PlanSettings::standard()
    };
    let plan = reel_media::plan::plan(&info, &settings)
        .context("planning the source")?
        .video
        .context("the source has no video")?;
    let media_seconds = plan.duration_seconds();
    let of_codec = |codec: VideoCodec| -> Vec<RenditionPlan> {
        plan.renditions
            .iter()
            .filter(|rendition| rendition.codec == codec)
            .cloned()
            .collect()
    };
    let standard = EncodeSettings::standard();
    let (h264, h264_cpu) = encode_pass(
        dir.path(),
        &source,
        &plan,
        &of_codec(VideoCodec::H264),
        &standard,
    )?;
    let (av1, av1_cpu) = encode_pass(
        dir.path(),
        &source,
        &plan,
        &of_codec(VideoCodec::Av1),
        &standard,
    )?;
    // The second AV1 point of each rung: a fixed average bitrate on the
    // other side of the H.264 rung's quality.
    let second: Vec<RenditionPlan> = of_codec(VideoCodec::Av1)
        .into_iter()
        .zip(h264.iter().zip(&av1))
        .map(|(rendition, (h264_rung, av1_rung))| {
            // From the H.264 rung's measured bitrate (a capped CRF often
            // stays well under the rung's nominal rate).
            let share = if av1_rung.ssim < h264_rung.ssim {
                1.5
            } else {
                0.4
            };
            let bitrate_kbps = ((h264_rung.kbps * share).round() as u32).max(1);
            let maxrate_kbps = (f64::from(bitrate_kbps) * 1.1).round() as u32;
            RenditionPlan {
                name: format!("{}-b", rendition.name),
                bitrate_kbps,
                maxrate_kbps,
                bufsize_kbits: 2 * maxrate_kbps,
                ..rendition
            }
        })
        .collect();
    let fixed_rate = EncodeSettings {
        rate_control: RateControl::Bitrate,
        ..standard.clone()
    };
    let (av1_second, _) = encode_pass(dir.path(), &source, &plan, &second, &fixed_rate)?;

    println!(
        "source: {}x{} {} fps, {media_seconds:.1} s; x264 {} CRF 21, SVT-AV1 preset {} CRF 35, both capped by the rung's VBV",
        info.video.as_ref().map_or(0, |video| video.width),
        info.video.as_ref().map_or(0, |video| video.height),
        plan.frame_rate,
        standard.preset,
        standard.av1_preset
    );
    println!();
    println!("| ladder | CPU-seconds | CPU-s per media second | × H.264 |");
    println!("|---|---|---|---|");
    for (name, cpu) in [("H.264", h264_cpu), ("AV1", av1_cpu)] {
        println!(
            "| {name} ({} rungs) | {cpu:.1} | {:.2} | {:.2} |",
            h264.len(),
            cpu / media_seconds,
            cpu / h264_cpu
        );
    }
    println!();
    println!("| rung | H.264 kbit/s | H.264 SSIM dB / PSNR dB | AV1 kbit/s | AV1 SSIM dB / PSNR dB | AV1 2nd point kbit/s, SSIM dB | AV1 kbit/s at H.264's SSIM | share of H.264 |");
    println!("|---|---|---|---|---|---|---|---|");
    for ((h264_rung, av1_rung), second_rung) in h264.iter().zip(&av1).zip(&av1_second) {
        let (equal_kbps, extrapolated) = equal_quality_kbps(
            (av1_rung.kbps, ssim_db(av1_rung.ssim)),
            (second_rung.kbps, ssim_db(second_rung.ssim)),
            ssim_db(h264_rung.ssim),
        );
        println!(
            "| {} | {:.0} | {:.2} / {:.2} | {:.0} | {:.2} / {:.2} | {:.0}, {:.2} | {:.0}{} | {:.0} % |",
            h264_rung.name,
            h264_rung.kbps,
            ssim_db(h264_rung.ssim),
            h264_rung.psnr,
            av1_rung.kbps,
            ssim_db(av1_rung.ssim),
            av1_rung.psnr,
            second_rung.kbps,
            ssim_db(second_rung.ssim),
            equal_kbps,
            if extrapolated { " (extrapolated)" } else { "" },
            100.0 * equal_kbps / h264_rung.kbps
        );
    }
    Ok(())
}

/// SSIM as decibels, `-10 log10(1 - ssim)`, the scale ffmpeg prints.
fn ssim_db(ssim: f64) -> f64 {
    -10.0 * (1.0 - ssim).max(1e-12).log10()
}

/// The bitrate at quality `target` on the line through two (kbit/s,
/// quality) points in log bitrate, and whether `target` lies outside them.
fn equal_quality_kbps(first: (f64, f64), second: (f64, f64), target: f64) -> (f64, bool) {
    let (low, high) = if first.1 <= second.1 {
        (first, second)
    } else {
        (second, first)
    };
    if (high.1 - low.1).abs() < 1e-9 {
        return (low.0, true);
    }
    let slope = (high.0.ln() - low.0.ln()) / (high.1 - low.1);
    let kbps = (low.0.ln() + slope * (target - low.1)).exp();
    (kbps, target < low.1 || target > high.1)
}

/// Encodes every chunk of `plan` for `renditions` with reel's arguments,
/// one ffmpeg at a time; returns each rendition's measurements and the
/// CPU seconds of the encodes.
fn encode_pass(
    dir: &Path,
    source: &Path,
    plan: &VideoPlan,
    renditions: &[RenditionPlan],
    settings: &EncodeSettings,
) -> anyhow::Result<(Vec<Measured>, f64)> {
    let folder = |rendition: &RenditionPlan| dir.join(rendition.id().as_str());
    for rendition in renditions {
        std::fs::create_dir_all(folder(rendition))?;
    }
    let cpu_before = children_cpu_seconds();
    for chunk in &plan.chunks {
        let outputs: Vec<PathBuf> = renditions
            .iter()
            .map(|rendition| folder(rendition).join(format!("{:05}.mp4", chunk.index)))
            .collect();
        let args = video_chunk_args(source, plan, chunk, renditions, &outputs, settings);
        run(
            Command::new("ffmpeg").args(&args),
            &format!("encoding chunk {}", chunk.index),
        )?;
    }
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    let mut measured = Vec::new();
    for rendition in renditions {
        let mut parsed = Vec::new();
        for chunk in &plan.chunks {
            let path = folder(rendition).join(format!("{:05}.mp4", chunk.index));
            let data = std::fs::read(&path).with_context(|| format!("reading {path:?}"))?;
            parsed.push(reel_cmaf::parse_fragmented(Bytes::from(data))?);
        }
        let mut track = reel_cmaf::assemble(parsed)?;
        track.join_short_last_segment();
        let whole = folder(rendition).join("whole.mp4");
        let mut bytes = track.init.to_vec();
        for segment in &track.segments {
            bytes.extend_from_slice(&segment.data);
        }
        std::fs::write(&whole, bytes)?;
        let (ssim, psnr) = quality(&whole, source, plan, rendition)?;
        measured.push(Measured {
            name: rendition.name.trim_end_matches("-b").to_string(),
            kbps: track.average_bitrate() as f64 / 1000.0,
            ssim,
            psnr,
        });
    }
    Ok((measured, cpu_seconds))
}

/// The SSIM (All) and PSNR (average) of `encoded` against `source` scaled
/// to the rendition's size, frame by frame on the plan's grid.
fn quality(
    encoded: &Path,
    source: &Path,
    plan: &VideoPlan,
    rendition: &RenditionPlan,
) -> anyhow::Result<(f64, f64)> {
    let graph = format!(
        "[0:v]setpts=N/FRAME_RATE/TB,split[e1][e2];\
         [1:v]fps={rate},scale={w}:{h}:flags=bicubic,format=yuv420p,setpts=N/FRAME_RATE/TB,\
         trim=end_frame={frames},split[r1][r2];[e1][r1]ssim;[e2][r2]psnr",
        rate = plan.frame_rate,
        w = rendition.width,
        h = rendition.height,
        frames = plan.total_frames,
    );
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-v", "info", "-i"])
        .arg(encoded)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .context("starting ffmpeg for SSIM and PSNR")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        anyhow::bail!("ffmpeg SSIM/PSNR of {encoded:?} failed: {stderr}");
    }
    let value_after = |line_marker: &str, key: &str| -> anyhow::Result<f64> {
        let line = stderr
            .lines()
            .find(|line| line.contains(line_marker))
            .with_context(|| format!("no {line_marker} line in {stderr}"))?;
        let rest = &line[line
            .find(key)
            .with_context(|| format!("no {key} in {line}"))?
            + key.len()..];
        rest.split_whitespace()
            .next()
            .context("no value")?
            .parse()
            .with_context(|| format!("{key} in {line}"))
    };
    Ok((
        value_after("] SSIM ", "All:")?,
        value_after("] PSNR ", "average:")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_quality_interpolates_in_log_bitrate() {
        let (kbps, extrapolated) = equal_quality_kbps((1000.0, 10.0), (4000.0, 14.0), 12.0);
        assert!((kbps - 2000.0).abs() < 1e-6, "{kbps}");
        assert!(!extrapolated);
        let (kbps, extrapolated) = equal_quality_kbps((4000.0, 14.0), (1000.0, 10.0), 16.0);
        assert!((kbps - 8000.0).abs() < 1e-6, "{kbps}");
        assert!(extrapolated);
    }
}
