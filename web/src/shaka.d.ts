// Shaka Player's DASH-only bundle has no type declarations of its own; src/player/engines.ts
// describes the few members it uses.
declare module 'shaka-player/dist/shaka-player.dash.js';
