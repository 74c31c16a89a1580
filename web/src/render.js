// The map on a 2D canvas: the known tiles (each chunk drawn once into a small picture and
// scaled), clue areas, opened vaults, sparkles, dig progress and the players, following the
// player. Runs every animation frame, so it allocates little and reads the state only.

import { GROUND, ROCK, WATER } from "./terrain.js";

/** @typedef {import("./state.js").State} State */

/** Tile colours, ground, rock and water, told apart by lightness as much as by hue. */
const TILE_RGB = {
  [GROUND]: [122, 158, 96],
  [ROCK]: [88, 84, 92],
  [WATER]: [44, 96, 160],
};
const UNKNOWN_COLOUR = "#15171c";
const SPARKLE_MS = 2500;

export class Renderer {
  /** @param {HTMLCanvasElement} canvas @param {State} state */
  constructor(canvas, state) {
    this.canvas = canvas;
    this.state = state;
    this.context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { alpha: false }));
    /** Pixels per tile, in CSS pixels. */
    this.tileSize = 24;
    /** Where the camera looks (tiles): the player, eased so corrections do not jump. */
    this.camera = { x: 0, y: 0 };
    /** The player as drawn: eased toward its position. */
    this.drawn = { x: NaN, y: NaN };
    /** @type {Map<string, { canvas: HTMLCanvasElement, version: number }>} */
    this.chunkPictures = new Map();
    /** @type {{ x: number, y: number } | null} the tile under the pointer */
    this.hover = null;
    /** Frame times (ms) of the last frames, for the performance figure. */
    this.frameTimes = new Float64Array(600);
    this.frames = 0;
    this.lastFrame = 0;
    this.width = 0;
    this.height = 0;
  }

  /** Fits the canvas to its box and the screen's pixel density. */
  resize() {
    const ratio = window.devicePixelRatio || 1;
    const box = this.canvas.getBoundingClientRect();
    this.width = box.width;
    this.height = box.height;
    this.canvas.width = Math.round(box.width * ratio);
    this.canvas.height = Math.round(box.height * ratio);
    this.context.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.context.imageSmoothingEnabled = false;
  }

  /** @param {number} factor */
  zoom(factor) {
    this.tileSize = Math.min(64, Math.max(6, this.tileSize * factor));
  }

  /** A tile position on the screen (CSS pixels from the canvas's top left). @param {number} x @param {number} y */
  toScreen(x, y) {
    return {
      x: (x - this.camera.x) * this.tileSize + this.width / 2,
      y: (y - this.camera.y) * this.tileSize + this.height / 2,
    };
  }

  /** The tile under a point of the canvas. @param {number} px @param {number} py */
  toTile(px, py) {
    return {
      x: Math.floor((px - this.width / 2) / this.tileSize + this.camera.x),
      y: Math.floor((py - this.height / 2) / this.tileSize + this.camera.y),
    };
  }

  /** @param {number} now performance.now() */
  draw(now) {
    if (this.lastFrame > 0) this.frameTimes[this.frames++ % this.frameTimes.length] = now - this.lastFrame;
    const dt = this.lastFrame > 0 ? (now - this.lastFrame) / 1000 : 0;
    this.lastFrame = now;
    const state = this.state;
    const g = this.context;
    g.fillStyle = UNKNOWN_COLOUR;
    g.fillRect(0, 0, this.width, this.height);
    const me = state.me;
    if (!me) return;
    this.follow(me, dt);
    this.drawTerrain(g);
    this.drawClues(g);
    this.drawOpened(g);
    this.drawDig(g, now);
    this.drawHover(g, me);
    this.drawOthers(g, now);
    this.drawMe(g);
    this.drawSparkles(g, now);
  }

  /** @param {{ x: number, y: number }} me @param {number} dt */
  follow(me, dt) {
    const far = !Number.isFinite(this.drawn.x) || Math.hypot(me.x - this.drawn.x, me.y - this.drawn.y) > 4;
    const ease = far ? 1 : Math.min(1, dt * 18);
    this.drawn.x += (me.x - this.drawn.x) * ease;
    this.drawn.y += (me.y - this.drawn.y) * ease;
    if (far) this.drawn = { x: me.x, y: me.y };
    this.camera.x = this.drawn.x;
    this.camera.y = this.drawn.y;
  }

  /** @param {CanvasRenderingContext2D} g */
  drawTerrain(g) {
    const terrain = this.state.terrain;
    if (!terrain) return;
    const size = terrain.chunk;
    const left = this.toTile(0, 0);
    const right = this.toTile(this.width, this.height);
    for (let cy = Math.max(0, left.y - (left.y % size)); cy <= right.y && cy < terrain.height; cy += size) {
      for (let cx = Math.max(0, left.x - (left.x % size)); cx <= right.x && cx < terrain.width; cx += size) {
        const chunk = terrain.chunks.get(`${cx},${cy}`);
        if (!chunk) continue;
        const picture = this.chunkPicture(`${cx},${cy}`, chunk);
        const at = this.toScreen(cx, cy);
        g.drawImage(picture, at.x, at.y, chunk.width * this.tileSize + 0.5, chunk.height * this.tileSize + 0.5);
      }
    }
  }

  /**
   * A chunk as a picture of one pixel per tile, made again only when the chunk changed.
   * @param {string} key
   * @param {{ width: number, height: number, tiles: Uint8Array, version: number }} chunk
   */
  chunkPicture(key, chunk) {
    const kept = this.chunkPictures.get(key);
    if (kept && kept.version === chunk.version) return kept.canvas;
    const canvas = kept?.canvas ?? document.createElement("canvas");
    canvas.width = chunk.width;
    canvas.height = chunk.height;
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const image = g.createImageData(chunk.width, chunk.height);
    for (let i = 0; i < chunk.tiles.length; i += 1) {
      const rgb = TILE_RGB[/** @type {0 | 1 | 2} */ (chunk.tiles[i])] ?? [21, 23, 28];
      // A faint checker keeps single tiles readable on open ground.
      const shade = ((i % chunk.width) + Math.floor(i / chunk.width)) % 2 === 0 ? 0 : 6;
      image.data[i * 4] = rgb[0] - shade;
      image.data[i * 4 + 1] = rgb[1] - shade;
      image.data[i * 4 + 2] = rgb[2] - shade;
      image.data[i * 4 + 3] = 255;
    }
    g.putImageData(image, 0, 0);
    this.chunkPictures.set(key, { canvas, version: chunk.version });
    return canvas;
  }

  /** Clue areas as circles, reveals as crosses. @param {CanvasRenderingContext2D} g */
  drawClues(g) {
    g.lineWidth = 2;
    for (const clue of this.state.clues.values()) {
      if (clue.X == null || clue.Y == null) continue;
      if (clue.Kind === "Area" && clue.Radius != null) {
        const at = this.toScreen(clue.X, clue.Y);
        g.setLineDash([8, 6]);
        g.strokeStyle = "rgba(255, 214, 102, 0.9)";
        g.fillStyle = "rgba(255, 214, 102, 0.08)";
        g.beginPath();
        g.arc(at.x, at.y, clue.Radius * this.tileSize, 0, Math.PI * 2);
        g.fill();
        g.stroke();
        g.setLineDash([]);
      } else if (clue.Kind === "Reveal") {
        const at = this.toScreen(clue.X + 0.5, clue.Y + 0.5);
        const r = this.tileSize * 0.4;
        g.strokeStyle = "#ffd666";
        g.beginPath();
        g.moveTo(at.x - r, at.y - r);
        g.lineTo(at.x + r, at.y + r);
        g.moveTo(at.x + r, at.y - r);
        g.lineTo(at.x - r, at.y + r);
        g.stroke();
      }
    }
  }

  /** Opened vaults this client saw sparkle, as open chests. @param {CanvasRenderingContext2D} g */
  drawOpened(g) {
    const s = this.tileSize;
    for (const tile of this.state.openedTiles.values()) {
      const at = this.toScreen(tile.x, tile.y);
      if (at.x < -s || at.y < -s || at.x > this.width || at.y > this.height) continue;
      g.fillStyle = "#8a5a2b";
      g.fillRect(at.x + s * 0.15, at.y + s * 0.35, s * 0.7, s * 0.45);
      g.fillStyle = "#ffd666";
      g.fillRect(at.x + s * 0.15, at.y + s * 0.25, s * 0.7, s * 0.12);
    }
  }

  /** The dug tile with a ring filled to the effort so far. @param {CanvasRenderingContext2D} g @param {number} now */
  drawDig(g, now) {
    const dig = this.state.dig;
    if (!dig || now - dig.at > 10000) return;
    const at = this.toScreen(dig.x + 0.5, dig.y + 0.5);
    const r = this.tileSize * 0.45;
    g.lineWidth = 3;
    g.strokeStyle = "rgba(0, 0, 0, 0.4)";
    g.beginPath();
    g.arc(at.x, at.y, r, 0, Math.PI * 2);
    g.stroke();
    g.strokeStyle = "#ffd666";
    g.beginPath();
    g.arc(at.x, at.y, r, -Math.PI / 2, -Math.PI / 2 + (Math.PI * 2 * dig.effort) / Math.max(1, dig.required));
    g.stroke();
  }

  /** @param {CanvasRenderingContext2D} g @param {{ x: number, y: number }} me */
  drawHover(g, me) {
    if (!this.hover) return;
    const at = this.toScreen(this.hover.x, this.hover.y);
    const reach = Math.hypot(this.hover.x + 0.5 - me.x, this.hover.y + 0.5 - me.y) <= 3;
    g.lineWidth = 1;
    g.strokeStyle = reach ? "rgba(255, 255, 255, 0.8)" : "rgba(255, 255, 255, 0.3)";
    g.strokeRect(at.x + 0.5, at.y + 0.5, this.tileSize - 1, this.tileSize - 1);
  }

  /** Other players where they were INTERPOLATION_MS ago, between their last two updates. @param {CanvasRenderingContext2D} g @param {number} now */
  drawOthers(g, now) {
    const r = Math.max(3, this.tileSize * 0.32);
    const labels = this.tileSize >= 14 && this.state.others.size <= 120;
    g.font = "12px system-ui, sans-serif";
    g.textAlign = "center";
    for (const other of this.state.others.values()) {
      const span = other.to.at - other.from.at;
      const share = span <= 0 ? 1 : Math.min(1, Math.max(0, (now - other.from.at) / span));
      other.x = other.from.x + (other.to.x - other.from.x) * share;
      other.y = other.from.y + (other.to.y - other.from.y) * share;
      const at = this.toScreen(other.x, other.y);
      if (at.x < -r || at.y < -r || at.x > this.width + r || at.y > this.height + r) continue;
      g.fillStyle = "#e8e8f0";
      g.beginPath();
      g.arc(at.x, at.y, r, 0, Math.PI * 2);
      g.fill();
      if (labels) {
        g.fillStyle = "rgba(255, 255, 255, 0.85)";
        g.fillText(other.name, at.x, at.y - r - 4);
      }
    }
  }

  /** @param {CanvasRenderingContext2D} g */
  drawMe(g) {
    const at = this.toScreen(this.drawn.x, this.drawn.y);
    const r = Math.max(4, this.tileSize * 0.38);
    g.fillStyle = "#ff9f1c";
    g.strokeStyle = "#1b1b1b";
    g.lineWidth = 2;
    g.beginPath();
    g.arc(at.x, at.y, r, 0, Math.PI * 2);
    g.fill();
    g.stroke();
  }

  /** The discovery sparkle: a ring and rays growing from the vault, fading. @param {CanvasRenderingContext2D} g @param {number} now */
  drawSparkles(g, now) {
    const sparkles = this.state.sparkles;
    while (sparkles.length > 0 && now - sparkles[0].at > SPARKLE_MS) sparkles.shift();
    for (const sparkle of sparkles) {
      const age = (now - sparkle.at) / SPARKLE_MS;
      const at = this.toScreen(sparkle.x, sparkle.y);
      const r = this.tileSize * (0.5 + age * 3);
      g.globalAlpha = 1 - age;
      g.strokeStyle = "#fff3b0";
      g.lineWidth = 3;
      g.beginPath();
      g.arc(at.x, at.y, r, 0, Math.PI * 2);
      g.stroke();
      g.fillStyle = "#ffd666";
      for (let i = 0; i < 12; i += 1) {
        const angle = (i / 12) * Math.PI * 2 + age * 2;
        const d = r * (0.6 + 0.4 * ((i * 7) % 5) / 5);
        g.fillRect(at.x + Math.cos(angle) * d - 2, at.y + Math.sin(angle) * d - 2, 4, 4);
      }
      g.globalAlpha = 1;
    }
  }

  /** The median and 99th percentile of recent frame times, in milliseconds. */
  frameStats() {
    const n = Math.min(this.frames, this.frameTimes.length);
    const sorted = Array.from(this.frameTimes.subarray(0, n)).sort((a, b) => a - b);
    const pick = (/** @type {number} */ q) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]);
    return { frames: n, median: pick(0.5), p99: pick(0.99) };
  }
}
