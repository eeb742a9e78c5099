// Storyboard thumbnails: reel writes a WebVTT file whose cues name a sprite
// image and the thumbnail's rectangle in it (`storyboard-0.jpg#xywh=0,0,160,90`,
// the W3C Media Fragments spatial syntax).

export interface StoryboardCue {
  start: number;
  end: number;
  imageUrl: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** "01:02:03.500" or "02:03.500" → seconds. */
function parseTimestamp(text: string): number {
  const parts = text.trim().split(':').map(Number);
  if (parts.some((part) => Number.isNaN(part))) return Number.NaN;
  return parts.reduce((total, part) => total * 60 + part, 0);
}

export function parseStoryboard(vtt: string, baseUrl: string): StoryboardCue[] {
  const cues: StoryboardCue[] = [];
  const lines = vtt.split(/\r?\n/);
  for (let lineIdx = 0; lineIdx < lines.length; lineIdx++) {
    const timing = /^\s*([\d:.]+)\s+-->\s+([\d:.]+)/.exec(lines[lineIdx]);
    if (!timing) continue;
    const payload = (lines[lineIdx + 1] ?? '').trim();
    const fragment = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(payload);
    if (!fragment) continue;
    const start = parseTimestamp(timing[1]);
    const end = parseTimestamp(timing[2]);
    if (!Number.isFinite(start) || !Number.isFinite(end)) continue;
    cues.push({
      start,
      end,
      imageUrl: new URL(fragment[1], baseUrl).href,
      x: Number(fragment[2]),
      y: Number(fragment[3]),
      width: Number(fragment[4]),
      height: Number(fragment[5]),
    });
  }
  return cues;
}

export async function loadStoryboard(url: string): Promise<StoryboardCue[]> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`storyboard ${url} answered ${response.status}`);
  return parseStoryboard(await response.text(), response.url || url);
}

export function cueAt(cues: StoryboardCue[], time: number): StoryboardCue | null {
  for (const cue of cues) {
    if (time >= cue.start && time < cue.end) return cue;
  }
  return cues.length && time >= cues[cues.length - 1].end ? cues[cues.length - 1] : null;
}
