// The browser every test client here drives: Debian's chromium, headless,
// with no network of its own (no component updates, sync or QUIC) and
// autoplay allowed. REEL_CHROMIUM overrides the path.
export const CHROMIUM = process.env.REEL_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
