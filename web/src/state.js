// What this client knows of the game, changed only by the server's messages (apply) and by
// the player's own predicted movement (input.js). Rendering and panels read it.

import { playerId } from "./protocol.js";
import { Terrain } from "./terrain.js";

/**
 * @typedef {{ Item: string, Quantity: number }} Stack
 * @typedef {{ id: string, name: string, x: number, y: number,
 *   from: { x: number, y: number, at: number }, to: { x: number, y: number, at: number } }} Other
 * @typedef {{ Clue: string, Kind: string, Key?: string, Text?: string, X?: number, Y?: number,
 *   Radius?: number, Vault?: string, hint?: { Band?: string | null, Direction?: string | null, at: number } }} Clue
 * @typedef {{ id: string, stacks: number, endsAt: number }} Effect
 * @typedef {{ text: string, kind: "info" | "good" | "bad", at: number }} Toast
 * @typedef {{ x: number, y: number, at: number, by: string, vault: string }} Sparkle
 */

/** How far behind the newest update other players are drawn, so their motion is smooth. */
export const INTERPOLATION_MS = 120;

export function createState() {
  return {
    /** @type {"login" | "connecting" | "online" | "reconnecting" | "refused"} */
    phase: "login",
    /** @type {string | null} the last refusal or close, in words */
    problem: null,
    serverName: "",
    tickRate: 20,
    /** how many times a second others' moves arrive (Welcome.world.state_update_rate) */
    updateRate: 20,
    tick: 0,
    /** @type {{ id: string, name: string, x: number, y: number, maxSpeed: number } | null} */
    me: null,
    /** @type {Terrain | null} */
    terrain: null,
    interestRadius: 32,
    /** @type {Map<string, Other>} */
    others: new Map(),
    /** @type {Set<string>} the names of every player this client has seen */
    everSeen: new Set(),
    /** @type {(Stack | null)[]} */
    slots: [],
    /** @type {Stack[]} */
    pending: [],
    /** @type {Map<string, Effect>} */
    effects: new Map(),
    /** @type {Map<string, Clue>} */
    clues: new Map(),
    /** @type {{ Top: { Rank: number, Player: string, Vaults: number, Score: number }[], Players: number } | null} */
    board: null,
    /** @type {{ Rank: number | null, Of: number, Vaults: number, Score: number } | null} */
    rank: null,
    /** Whether the player's rank should be asked again (the board changed). */
    rankStale: false,
    /** @type {string | null} */
    team: null,
    /** @type {{ hunt: string, event: string, text: string, endsAt: number | null } | null} */
    hunt: null,
    /** @type {{ x: number, y: number, effort: number, required: number, at: number } | null} */
    dig: null,
    /** @type {Sparkle[]} */
    sparkles: [],
    /** @type {Toast[]} */
    toasts: [],
    /** @type {number | null} */
    sense: null,
    /** The highest event number seen: what a catch-up asks after. */
    lastSeq: 0,
    /** @type {Set<string>} vaults this client knows are opened */
    opened: new Set(),
    /** @type {Map<string, { x: number, y: number }>} the tiles of opened vaults it saw sparkle */
    openedTiles: new Map(),
    /** @type {string[]} command output, newest last */
    commandLog: [],
    /** Bumped when anything a panel shows changes. */
    version: 0,
  };
}

/** @typedef {ReturnType<typeof createState>} State */

/**
 * @param {State} state
 * @param {string} text
 * @param {"info" | "good" | "bad"} [kind]
 */
export function toast(state, text, kind = "info") {
  state.toasts.push({ text, kind, at: performance.now() });
  if (state.toasts.length > 6) state.toasts.shift();
  state.version += 1;
}

/**
 * The Welcome: a new session starts; what the server will send again (players near, the
 * inventory, effects, clues) is forgotten, what it will not (opened vaults, the last event) is kept.
 * @param {State} state
 * @param {any} welcome
 * @param {string} name
 */
export function welcome(state, welcome, name) {
  const world = welcome.world;
  state.phase = "online";
  state.problem = null;
  state.serverName = welcome.server_name;
  state.tickRate = welcome.tick_rate;
  state.tick = Number(welcome.tick);
  state.me = { id: playerId(welcome.player), name, x: welcome.x, y: welcome.y, maxSpeed: world?.max_speed ?? 8 };
  if (world && (!state.terrain || state.terrain.width !== world.width || state.terrain.height !== world.height)) {
    state.terrain = new Terrain(world.width, world.height, world.chunk);
  }
  state.interestRadius = world?.interest_radius ?? 32;
  // 0 or missing (an older server): every tick.
  state.updateRate = world?.state_update_rate || welcome.tick_rate;
  state.others.clear();
  state.effects.clear();
  state.dig = null;
  state.version += 1;
}
