// The wire, as docs/protocol.md describes it: frames of MessagePack values, the server's
// messages, and the treasure hunt's mod messages inside them. Nothing here keeps state.

/** @typedef {import("@msgpack/msgpack")} MsgPack */
/** @type {MsgPack} */
const MessagePack = /** @type {any} */ (globalThis).MessagePack;

export const PROTOCOL_VERSION = 1;
export const HUNT = "Veltrix:TreasureHunt";

// 64-bit integers (ticks, player ids) may exceed 2^53: read them as BigInt and turn ids into
// strings, so a JavaScript number never rounds one.
const decoderOptions = { useBigInt64: true };

/**
 * A server message: its kind and its fields. For a mod message, `kind` is the mod's kind
 * (`DigProgress`), `ns` its namespace and `body` its decoded body.
 * @typedef {{ kind: string, ns?: string, request?: number | null, body: any }} ServerMessage
 */

/**
 * Decodes a server frame into its tick and messages. A message that cannot be read is skipped
 * (and counted), as the protocol asks of clients, so one new kind never loses a frame.
 * @param {ArrayBuffer | Uint8Array} bytes
 * @returns {{ tick: number, messages: ServerMessage[], skipped: number }}
 */
export function decodeFrame(bytes) {
  const frame = /** @type {any} */ (MessagePack.decode(bytes, decoderOptions));
  if (frame === null || typeof frame !== "object" || !Array.isArray(frame.messages)) {
    throw new Error("not a server frame");
  }
  const messages = [];
  let skipped = 0;
  for (const raw of frame.messages) {
    const message = readMessage(raw);
    if (message) messages.push(message);
    else skipped += 1;
  }
  return { tick: Number(frame.tick), messages, skipped };
}

/**
 * @param {any} raw
 * @returns {ServerMessage | null}
 */
function readMessage(raw) {
  if (raw === null || typeof raw !== "object") return null;
  const keys = Object.keys(raw);
  if (keys.length !== 1) return null;
  const kind = keys[0];
  const fields = raw[kind];
  if (kind !== "Mod") return { kind, body: fields };
  try {
    const body = MessagePack.decode(fields.body, decoderOptions);
    return { kind: fields.kind, ns: fields.ns, request: fields.request ?? null, body };
  } catch {
    return null;
  }
}

/**
 * Encodes a client frame: an array of client messages.
 * @param {object[]} messages
 */
export function encodeFrame(messages) {
  return MessagePack.encode(messages);
}

/** @param {string} name @param {string | null} token */
export function hello(name, token) {
  return { Hello: { protocol: PROTOCOL_VERSION, name, token } };
}

/** @param {number} seq @param {number} x @param {number} y */
export function move(seq, x, y) {
  return { Move: { seq, x, y } };
}

/** @param {number} request @param {string} line */
export function command(request, line) {
  return { Command: { request, line } };
}

/**
 * A treasure hunt message: `kind` is one of the mod's client kinds, `body` its PascalCase map.
 * @param {string} kind @param {number | null} request @param {object} body
 */
export function hunt(kind, request, body) {
  return { Mod: { ns: HUNT, kind, request, body: MessagePack.encode(body) } };
}

/** A player id as a string: ids are u64 and may not fit a JavaScript number. @param {unknown} id */
export function playerId(id) {
  return String(id);
}

/**
 * The tiles of a `Terrain` chunk, run-length decoded: one byte per tile, rows from the top,
 * 0 ground, 1 rock, 2 water.
 * @param {{ width: number, height: number, tiles: Uint8Array }} chunk
 */
export function chunkTiles(chunk) {
  const out = new Uint8Array(chunk.width * chunk.height);
  let at = 0;
  const runs = chunk.tiles;
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const count = runs[i];
    out.fill(runs[i + 1], at, Math.min(out.length, at + count));
    at += count;
  }
  if (at !== out.length) throw new Error(`a terrain chunk holds ${at} tiles, not ${out.length}`);
  return out;
}
