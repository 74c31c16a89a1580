// A walk from the player's tile to a clicked tile over the tiles this client knows: A* with
// eight directions, no corner cutting (as the server's movement check), octile distance.

/** @typedef {import("./terrain.js").Terrain} Terrain */

const STEPS = [
  [1, 0, 1], [-1, 0, 1], [0, 1, 1], [0, -1, 1],
  [1, 1, Math.SQRT2], [1, -1, Math.SQRT2], [-1, 1, Math.SQRT2], [-1, -1, Math.SQRT2],
];

/** How many tiles a search may look at before it gives up (a click far into the unknown). */
const MAX_VISITED = 40000;

/**
 * The tiles to walk through, from the one after `from` to `to`, or null when no known walk
 * leads there.
 * @param {Terrain} terrain
 * @param {{ x: number, y: number }} from a tile
 * @param {{ x: number, y: number }} to a tile
 * @returns {{ x: number, y: number }[] | null}
 */
export function findPath(terrain, from, to) {
  if (!terrain.walkable(to.x, to.y)) return null;
  const width = terrain.width;
  const key = (/** @type {number} */ x, /** @type {number} */ y) => y * width + x;
  const goal = key(to.x, to.y);
  const h = (/** @type {number} */ x, /** @type {number} */ y) => {
    const dx = Math.abs(x - to.x);
    const dy = Math.abs(y - to.y);
    return Math.max(dx, dy) + (Math.SQRT2 - 1) * Math.min(dx, dy);
  };
  /** @type {Map<number, number>} */
  const cost = new Map([[key(from.x, from.y), 0]]);
  /** @type {Map<number, number>} */
  const came = new Map();
  const open = new Heap();
  open.push(h(from.x, from.y), key(from.x, from.y));
  let visited = 0;
  while (open.size > 0 && visited < MAX_VISITED) {
    const current = open.pop();
    if (current === goal) return walkBack(came, current, width, key(from.x, from.y));
    visited += 1;
    const cx = current % width;
    const cy = (current - cx) / width;
    const here = /** @type {number} */ (cost.get(current));
    for (const [dx, dy, step] of STEPS) {
      const nx = cx + dx;
      const ny = cy + dy;
      if (!terrain.walkable(nx, ny)) continue;
      if (dx !== 0 && dy !== 0 && (!terrain.walkable(cx + dx, cy) || !terrain.walkable(cx, cy + dy))) continue;
      const next = key(nx, ny);
      const through = here + step;
      if (through < (cost.get(next) ?? Infinity)) {
        cost.set(next, through);
        came.set(next, current);
        open.push(through + h(nx, ny), next);
      }
    }
  }
  return null;
}

/** @param {Map<number, number>} came @param {number} at @param {number} width @param {number} start */
function walkBack(came, at, width, start) {
  const path = [];
  while (at !== start) {
    path.push({ x: at % width, y: Math.floor(at / width) });
    at = /** @type {number} */ (came.get(at));
  }
  return path.reverse();
}

/** A binary min-heap of (priority, value). */
class Heap {
  constructor() {
    /** @type {number[]} */
    this.priorities = [];
    /** @type {number[]} */
    this.values = [];
  }

  get size() {
    return this.values.length;
  }

  /** @param {number} priority @param {number} value */
  push(priority, value) {
    const p = this.priorities;
    const v = this.values;
    let i = v.length;
    p.push(priority);
    v.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (p[parent] <= priority) break;
      p[i] = p[parent];
      v[i] = v[parent];
      i = parent;
    }
    p[i] = priority;
    v[i] = value;
  }

  pop() {
    const p = this.priorities;
    const v = this.values;
    const top = v[0];
    const lastP = /** @type {number} */ (p.pop());
    const lastV = /** @type {number} */ (v.pop());
    if (v.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= v.length) break;
        const r = l + 1;
        const c = r < v.length && p[r] < p[l] ? r : l;
        if (p[c] >= lastP) break;
        p[i] = p[c];
        v[i] = v[c];
        i = c;
      }
      p[i] = lastP;
      v[i] = lastV;
    }
    return top;
  }
}
