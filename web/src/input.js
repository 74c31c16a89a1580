// The player's hands: walking by keys or by a clicked tile, predicted here and sent as moves
// once per tick; digging by key or click. The server has the last word (PositionCorrected).

import { t } from "./lang.js";
import { findPath } from "./path.js";
import { toast } from "./state.js";

/** @typedef {import("./state.js").State} State */
/** @typedef {import("./net.js").Connection} Connection */

/** Walk a little under the server's budget, so jitter between frames never earns a refusal. */
const SPEED_SHARE = 0.9;
/** Digs per second at most when a dig key is held (the server takes one per tick). */
const MAX_DIGS_PER_SECOND = 10;

const KEYS = {
  up: ["KeyW", "ArrowUp"],
  down: ["KeyS", "ArrowDown"],
  left: ["KeyA", "ArrowLeft"],
  right: ["KeyD", "ArrowRight"],
  dig: ["Space", "KeyE"],
};

export class Hands {
  /** @param {State} state @param {() => Connection | null} connection */
  constructor(state, connection) {
    this.state = state;
    this.connection = connection;
    /** @type {Set<string>} */
    this.held = new Set();
    /** @type {{ x: number, y: number }[]} tiles still to walk through */
    this.path = [];
    this.lastSent = { x: NaN, y: NaN, at: 0 };
    this.lastDig = 0;
  }

  /** @param {KeyboardEvent} event */
  keyDown(event) {
    if (Object.values(KEYS).some((codes) => codes.includes(event.code))) {
      this.held.add(event.code);
      if (!KEYS.dig.includes(event.code)) this.path = [];
      event.preventDefault();
    }
  }

  /** @param {KeyboardEvent} event */
  keyUp(event) {
    this.held.delete(event.code);
  }

  /** Keys are let go when the page loses focus, so the player does not walk on by itself. */
  release() {
    this.held.clear();
  }

  /** Walks to a tile along a known path. @param {number} x @param {number} y */
  walkTo(x, y) {
    const me = this.state.me;
    const terrain = this.state.terrain;
    if (!me || !terrain) return;
    const path = findPath(terrain, { x: Math.floor(me.x), y: Math.floor(me.y) }, { x, y });
    if (!path) {
      toast(this.state, t("path.none"), "bad");
      return;
    }
    this.path = path;
  }

  /** Digs a tile now (a request the server answers in its next tick). @param {number} x @param {number} y */
  dig(x, y) {
    const connection = this.connection();
    if (!connection || this.state.phase !== "online") return;
    this.lastDig = performance.now();
    connection.ask("Dig", { X: x, Y: y });
  }

  /**
   * One animation frame: move the player as the keys or the path say, send where it is once per
   * tick, dig while the dig key is held.
   * @param {number} now @param {number} dt seconds since the last frame
   */
  update(now, dt) {
    const state = this.state;
    const me = state.me;
    const connection = this.connection();
    if (!me || !connection || state.phase !== "online") return;
    const step = me.maxSpeed * SPEED_SHARE * Math.min(dt, 0.1);
    const [dx, dy] = this.direction(me);
    if (dx !== 0 || dy !== 0) this.stepBy(dx * step, dy * step);
    const period = 1000 / state.tickRate;
    if ((me.x !== this.lastSent.x || me.y !== this.lastSent.y) && now - this.lastSent.at >= period) {
      connection.move(me.x, me.y);
      this.lastSent = { x: me.x, y: me.y, at: now };
    }
    if (this.isHeld("dig") && now - this.lastDig >= Math.max(period, 1000 / MAX_DIGS_PER_SECOND)) {
      this.dig(Math.floor(me.x), Math.floor(me.y));
    }
  }

  /** @param {keyof typeof KEYS} what */
  isHeld(what) {
    return KEYS[what].some((code) => this.held.has(code));
  }

  /**
   * The unit direction to walk in: the keys', or toward the next tile of the path.
   * @param {{ x: number, y: number }} me
   * @returns {[number, number]}
   */
  direction(me) {
    let dx = (this.isHeld("right") ? 1 : 0) - (this.isHeld("left") ? 1 : 0);
    let dy = (this.isHeld("down") ? 1 : 0) - (this.isHeld("up") ? 1 : 0);
    if (dx === 0 && dy === 0 && this.path.length > 0) {
      const next = this.path[0];
      dx = next.x + 0.5 - me.x;
      dy = next.y + 0.5 - me.y;
      if (Math.hypot(dx, dy) < 0.05) {
        this.path.shift();
        return this.path.length > 0 ? this.direction(me) : [0, 0];
      }
    }
    const length = Math.hypot(dx, dy);
    return length === 0 ? [0, 0] : [dx / length, dy / length];
  }

  /**
   * Moves the predicted position, never onto a tile the server would refuse: when the whole
   * step is blocked, slide along whichever axis is free; on a path, never past the waypoint.
   * @param {number} dx @param {number} dy
   */
  stepBy(dx, dy) {
    const me = /** @type {NonNullable<State["me"]>} */ (this.state.me);
    const terrain = this.state.terrain;
    if (this.path.length > 0 && this.held.size === 0) {
      const next = this.path[0];
      const left = Math.hypot(next.x + 0.5 - me.x, next.y + 0.5 - me.y);
      const length = Math.hypot(dx, dy);
      if (length > left) {
        dx *= left / length;
        dy *= left / length;
      }
    }
    for (const [mx, my] of [[dx, dy], [dx, 0], [0, dy]]) {
      if (mx === 0 && my === 0) continue;
      const x = me.x + mx;
      const y = me.y + my;
      if (!terrain || terrain.segmentClear(me.x, me.y, x, y)) {
        me.x = x;
        me.y = y;
        return;
      }
    }
  }
}
