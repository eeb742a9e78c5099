#!/usr/bin/env python3
"""Parse an HLS multivariant playlist (+ every playlist it references) and a DASH MPD
with third-party parsers (PyPI m3u8, mpegdash) and print one JSON summary on stdout.

usage: check-manifests.py MASTER_URL MPD_URL
       (either argument may be "-" to skip that manifest)

Exit 0 when everything fetched and parsed, 1 on any fetch/parse/structure failure
(stdout then still carries JSON with an "error" field; the message also goes to
stderr), 2 on bad usage. Run it with tests/clients/.venv/bin/python; when started
with another interpreter that lacks the packages it re-executes itself in that venv.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = float(os.environ.get("REEL_CHECK_TIMEOUT", "20"))

try:
    import m3u8
    from mpegdash.parser import MPEGDASHParser
except ImportError:  # not in the venv: re-exec there if it exists
    venv_py = os.path.join(HERE, ".venv", "bin", "python")
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(HERE, ".venv"))
    if os.path.exists(venv_py) and not in_venv:
        os.execv(venv_py, [venv_py, os.path.abspath(__file__), *sys.argv[1:]])
    sys.stderr.write(
        "check-manifests: m3u8/mpegdash not importable; run scripts/install-test-clients.sh\n"
    )
    sys.exit(1)


class CheckError(Exception):
    pass


def fail(out, msg):
    out["error"] = msg
    print(json.dumps(out))
    sys.stderr.write(f"check-manifests: ERROR: {msg}\n")
    sys.exit(1)


def load_playlist(uri, what):
    try:
        return m3u8.load(uri, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        raise CheckError(f"{what} {uri}: HTTP {e.code}") from e
    except urllib.error.URLError as e:
        raise CheckError(f"{what} {uri}: {e.reason}") from e
    except Exception as e:  # parser errors (m3u8.ParseError, ValueError, ...)
        raise CheckError(f"{what} {uri}: {type(e).__name__}: {e}") from e


def media_playlist_summary(pl, uri):
    """Segment count / durations of a media playlist (already loaded)."""
    if pl.is_variant:
        raise CheckError(f"{uri}: expected a media playlist, got a multivariant playlist")
    durs = [float(s.duration or 0) for s in pl.segments]
    init = None
    if pl.segment_map:
        init = pl.segment_map[0].uri
    return {
        "segments": len(durs),
        "duration_sum": round(sum(durs), 6),
        "max_segment_duration": max(durs) if durs else None,
        "target_duration": pl.target_duration,
        "endlist": bool(pl.is_endlist),
        "playlist_type": pl.playlist_type,
        "version": pl.version,
        "init": init,
        "independent_segments": bool(pl.is_independent_segments),
    }


def check_hls(master_url, warnings):
    master = load_playlist(master_url, "master playlist")
    if not master.is_variant:
        raise CheckError(f"{master_url}: not a multivariant playlist (no EXT-X-STREAM-INF)")
    if len(master.playlists) < 1:
        raise CheckError(f"{master_url}: no variant streams")

    loaded = {}  # absolute uri -> summary, so shared playlists are fetched once

    def summary_for(abs_uri, what):
        if abs_uri not in loaded:
            pl = load_playlist(abs_uri, what)
            s = media_playlist_summary(pl, abs_uri)
            if s["segments"] == 0:
                raise CheckError(f"{what} {abs_uri}: no segments")
            if not s["endlist"]:
                warnings.append(f"{abs_uri}: no EXT-X-ENDLIST")
            td = s["target_duration"]
            if td is not None and s["max_segment_duration"] is not None:
                if round(s["max_segment_duration"]) > td:
                    warnings.append(
                        f"{abs_uri}: segment of {s['max_segment_duration']}s exceeds "
                        f"EXT-X-TARGETDURATION {td}"
                    )
            loaded[abs_uri] = s
        return loaded[abs_uri]

    variants = []
    for p in master.playlists:
        si = p.stream_info
        v = {
            "uri": p.uri,
            "absolute_uri": p.absolute_uri,
            "bandwidth": si.bandwidth,
            "average_bandwidth": si.average_bandwidth,
            "resolution": list(si.resolution) if si.resolution else None,
            "codecs": si.codecs,
            "frame_rate": si.frame_rate,
            "audio": si.audio,
        }
        v.update(summary_for(p.absolute_uri, "variant playlist"))
        variants.append(v)

    media = {"audio": [], "subtitles": [], "video": [], "closed-captions": []}
    for m in master.media:
        kind = (m.type or "").lower()
        entry = {
            "type": m.type,
            "group_id": m.group_id,
            "name": m.name,
            "language": m.language,
            "default": m.default,
            "autoselect": m.autoselect,
            "channels": m.channels,
            "uri": m.uri,
            "absolute_uri": m.absolute_uri if m.uri else None,
        }
        if m.uri:
            entry.update(summary_for(m.absolute_uri, f"{m.type} rendition playlist"))
        media.setdefault(kind, []).append(entry)

    iframes = []
    for ip in master.iframe_playlists:
        si = ip.iframe_stream_info
        e = {
            "uri": ip.uri,
            "absolute_uri": ip.absolute_uri,
            "bandwidth": si.bandwidth,
            "average_bandwidth": si.average_bandwidth,
            "resolution": list(si.resolution) if si.resolution else None,
            "codecs": si.codecs,
        }
        pl = load_playlist(ip.absolute_uri, "I-frame playlist")
        if not pl.is_i_frames_only:
            warnings.append(f"{ip.absolute_uri}: lacks EXT-X-I-FRAMES-ONLY")
        e.update(media_playlist_summary(pl, ip.absolute_uri))
        iframes.append(e)

    return {
        "version": master.version,
        "independent_segments": bool(master.is_independent_segments),
        "variants": variants,
        "audio": media["audio"],
        "subtitles": media["subtitles"],
        "iframe_playlists": len(iframes),
        "iframes": iframes,
    }


_ISO_DUR = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def iso_duration(s):
    if not s:
        return None
    m = _ISO_DUR.match(s.strip())
    if not m:
        return None
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]


def first(*lists):
    for lst in lists:
        if lst:
            return lst[0]
    return None


def timeline_duration(tmpl, period_dur):
    """Sum of S@d*(r+1)/timescale over the SegmentTimeline (r=-1 runs to period end)."""
    if tmpl is None or not tmpl.segment_timelines:
        return None, None
    ts = tmpl.timescale or 1
    ss = tmpl.segment_timelines[0].Ss or []
    total = 0  # in timescale units
    count = 0
    pos = 0
    for i, s in enumerate(ss):
        if s.t is not None:
            pos = s.t
        r = s.r or 0
        if r < 0:
            nxt = ss[i + 1].t if i + 1 < len(ss) and ss[i + 1].t is not None else None
            end = nxt if nxt is not None else (
                round(period_dur * ts) + (tmpl.presentation_time_offset or 0)
                if period_dur is not None else None
            )
            if end is None or not s.d:
                r = 0
            else:
                r = max(0, -(-(end - pos) // s.d) - 1)  # ceil
        total += s.d * (r + 1)
        pos += s.d * (r + 1)
        count += r + 1
    return round(total / ts, 6), count


def content_type_of(aset, rep):
    ct = aset.content_type
    if ct:
        return ct
    mime = rep.mime_type or aset.mime_type or ""
    if mime:
        return mime.split("/")[0]
    return None


def check_mpd(mpd_url):
    try:
        with urllib.request.urlopen(mpd_url, timeout=TIMEOUT) as r:
            text = r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        raise CheckError(f"MPD {mpd_url}: HTTP {e.code}") from e
    except urllib.error.URLError as e:
        raise CheckError(f"MPD {mpd_url}: {e.reason}") from e
    except UnicodeDecodeError as e:
        raise CheckError(f"MPD {mpd_url}: not UTF-8: {e}") from e
    if "<MPD" not in text:
        raise CheckError(f"MPD {mpd_url}: no <MPD> element")
    try:
        mpd = MPEGDASHParser.parse(text)
    except Exception as e:
        raise CheckError(f"MPD {mpd_url}: {type(e).__name__}: {e}") from e

    periods = mpd.periods or []
    if not periods:
        raise CheckError(f"MPD {mpd_url}: no Period")
    mpd_dur = iso_duration(mpd.media_presentation_duration)
    out_sets = []
    for pi, period in enumerate(periods):
        pdur = iso_duration(period.duration)
        if pdur is None and len(periods) == 1:
            pdur = mpd_dur
        for aset in period.adaptation_sets or []:
            reps = []
            for rep in aset.representations or []:
                tmpl = first(rep.segment_templates, aset.segment_templates, period.segment_templates)
                tl_dur, tl_count = timeline_duration(tmpl, pdur)
                reps.append({
                    "id": rep.id,
                    "bandwidth": rep.bandwidth,
                    "width": rep.width or aset.width,
                    "height": rep.height or aset.height,
                    "codecs": rep.codecs or aset.codecs,
                    "mime_type": rep.mime_type or aset.mime_type,
                    "frame_rate": rep.frame_rate or aset.frame_rate,
                    "audio_sampling_rate": rep.audio_sampling_rate or aset.audio_sampling_rate,
                    "timescale": tmpl.timescale if tmpl else None,
                    "segments": tl_count,
                    "timeline_duration_s": tl_dur,
                })
            ct = aset.content_type
            if not ct and aset.representations:
                ct = content_type_of(aset, aset.representations[0])
            out_sets.append({
                "period": pi,
                "id": aset.id,
                "content_type": ct,
                "mime_type": aset.mime_type,
                "lang": aset.lang,
                "representations": reps,
            })
    return {
        "type": mpd.type,
        "profiles": mpd.profiles,
        "media_presentation_duration_s": mpd_dur,
        "min_buffer_time_s": iso_duration(mpd.min_buffer_time),
        "periods": len(periods),
        "adaptation_sets": out_sets,
    }


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    master_url, mpd_url = argv[1], argv[2]
    out = {"master_url": master_url, "mpd_url": mpd_url, "warnings": []}
    try:
        if master_url != "-":
            out.update(check_hls(master_url, out["warnings"]))
        if mpd_url != "-":
            out["mpd"] = check_mpd(mpd_url)
    except CheckError as e:
        fail(out, str(e))
    except Exception as e:  # a bug here or an unexpected parser failure
        fail(out, f"{type(e).__name__}: {e}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
