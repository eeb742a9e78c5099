#!/usr/bin/env bash
# Generate a small test presentation with ffmpeg, for self-testing the clients:
#   OUT/hls/master.m3u8  CMAF HLS (fMP4), two video levels (360p, 240p) + one AAC audio group
#   OUT/dash/manifest.mpd  DASH (SegmentTemplate + SegmentTimeline), same ladder
# usage: make-fixture.sh OUT_DIR [SECONDS]
set -euo pipefail
OUT="${1:?usage: make-fixture.sh OUT_DIR [SECONDS]}"
SECS="${2:-10}"
mkdir -p "$OUT/hls" "$OUT/dash"
SRC=(-hide_banner -loglevel error -y
     -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000"
     -t "$SECS")
ENC=(-map 0:v -map 0:v -map 1:a
     -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0
     -filter:v:0 scale=640:360 -b:v:0 800k -maxrate:v:0 900k -bufsize:v:0 1600k
     -filter:v:1 scale=426:240 -b:v:1 400k -maxrate:v:1 450k -bufsize:v:1 800k
     -c:a aac -b:a 96k -ac 2)
ffmpeg "${SRC[@]}" "${ENC[@]}" \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 \
  -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$OUT/hls/%v/seg%03d.m4s" \
  -master_pl_name master.m3u8 \
  -var_stream_map "v:0,agroup:aud,name:360p v:1,agroup:aud,name:240p a:0,agroup:aud,name:audio" \
  "$OUT/hls/%v/index.m3u8"
ffmpeg "${SRC[@]}" "${ENC[@]}" \
  -f dash -seg_duration 2 -use_template 1 -use_timeline 1 \
  -adaptation_sets "id=0,streams=v id=1,streams=a" \
  "$OUT/dash/manifest.mpd"
