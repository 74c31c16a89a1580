// The tiles this client has been sent, chunk by chunk, and what can be walked.

import { chunkTiles } from "./protocol.js";

export const GROUND = 0;
export const ROCK = 1;
export const WATER = 2;
/** A tile no chunk has told us of yet: drawn dark, never walked into. */
export const UNKNOWN = 255;

export class Terrain {
  /** @param {number} width @param {number} height @param {number} chunk */
  constructor(width, height, chunk) {
    this.width = width;
    this.height = height;
    this.chunk = chunk;
    /** @type {Map<string, { x: number, y: number, width: number, height: number, tiles: Uint8Array, version: number }>} */
    this.chunks = new Map();
    /** Bumped whenever a chunk arrives, so pictures of chunks know when to redraw. */
    this.version = 0;
  }

  /** @param {{ x: number, y: number, width: number, height: number, tiles: Uint8Array }} message */
  add(message) {
    const tiles = chunkTiles(message);
    this.version += 1;
    const key = `${message.x},${message.y}`;
    this.chunks.set(key, { x: message.x, y: message.y, width: message.width, height: message.height, tiles, version: this.version });
  }

  /** The tile at (x, y), by integer tile coordinates. @param {number} x @param {number} y */
  at(x, y) {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return UNKNOWN;
    const cx = x - (x % this.chunk);
    const cy = y - (y % this.chunk);
    const chunk = this.chunks.get(`${cx},${cy}`);
    if (!chunk) return UNKNOWN;
    return chunk.tiles[(y - cy) * chunk.width + (x - cx)];
  }

  /** @param {number} x @param {number} y */
  walkable(x, y) {
    return this.at(x, y) === GROUND;
  }

  /**
   * Whether the straight line from a to b stays on walkable tiles, checked as the server does:
   * every tile the segment touches, and through a corner both tiles beside it.
   * @param {number} ax @param {number} ay @param {number} bx @param {number} by
   */
  segmentClear(ax, ay, bx, by) {
    let x = Math.floor(ax);
    let y = Math.floor(ay);
    const endX = Math.floor(bx);
    const endY = Math.floor(by);
    const dx = bx - ax;
    const dy = by - ay;
    const stepX = Math.sign(dx);
    const stepY = Math.sign(dy);
    const tDeltaX = stepX !== 0 ? Math.abs(1 / dx) : Infinity;
    const tDeltaY = stepY !== 0 ? Math.abs(1 / dy) : Infinity;
    let tMaxX = stepX > 0 ? (x + 1 - ax) * tDeltaX : stepX < 0 ? (ax - x) * tDeltaX : Infinity;
    let tMaxY = stepY > 0 ? (y + 1 - ay) * tDeltaY : stepY < 0 ? (ay - y) * tDeltaY : Infinity;
    if (!this.walkable(x, y)) return false;
    for (let guard = 0; (x !== endX || y !== endY) && guard < 4096; guard += 1) {
      if (Math.abs(tMaxX - tMaxY) < 1e-9) {
        if (!this.walkable(x + stepX, y) || !this.walkable(x, y + stepY)) return false;
        x += stepX;
        y += stepY;
        tMaxX += tDeltaX;
        tMaxY += tDeltaY;
      } else if (tMaxX < tMaxY) {
        x += stepX;
        tMaxX += tDeltaX;
      } else {
        y += stepY;
        tMaxY += tDeltaY;
      }
      if (tMaxX > 1 && tMaxY > 1 && (x !== endX || y !== endY)) break;
      if (!this.walkable(x, y)) return false;
    }
    return this.walkable(endX, endY);
  }
}
