// What each server message does to the state, and what the player is told of it.

import { nameOf, t } from "./lang.js";
import { HUNT, playerId } from "./protocol.js";
import { INTERPOLATION_MS, toast } from "./state.js";

/** @typedef {import("./state.js").State} State */
/** @typedef {import("./protocol.js").ServerMessage} ServerMessage */

/**
 * @param {State} state
 * @param {ServerMessage} message
 * @param {number} tick the frame's tick
 * @param {number} now performance.now() when the frame arrived
 */
export function apply(state, message, tick, now) {
  state.tick = Math.max(state.tick, tick);
  if (message.ns === HUNT) return applyHunt(state, message, now);
  if (message.ns !== undefined) return;
  const body = message.body;
  switch (message.kind) {
    case "PlayerAppeared": {
      const id = playerId(body.player);
      const at = { x: body.x, y: body.y, at: now };
      state.others.set(id, { id, name: body.name, x: body.x, y: body.y, from: at, to: at });
      state.everSeen.add(body.name);
      break;
    }
    case "PlayerMoved": {
      const other = state.others.get(playerId(body.player));
      if (!other) break;
      // Interpolate from where the player is drawn now to the new position over one state update.
      other.from = { x: other.x, y: other.y, at: now };
      other.to = { x: body.x, y: body.y, at: now + Math.max(INTERPOLATION_MS, 1000 / state.updateRate) };
      break;
    }
    case "PlayerGone":
      state.others.delete(playerId(body.player));
      break;
    case "PositionCorrected":
      if (state.me) {
        state.me.x = body.x;
        state.me.y = body.y;
      }
      toast(state, t(`correction.${body.reason ?? "Unknown"}`), "bad");
      break;
    case "Terrain":
      state.terrain?.add(body);
      break;
    case "Error":
      toast(state, errorText(body.code, body.message), "bad");
      break;
    case "CommandResult":
      state.commandLog.push(`${body.ok ? "" : "✗ "}${body.text}`);
      if (state.commandLog.length > 50) state.commandLog.shift();
      state.version += 1;
      break;
    default:
      break;
  }
}

/**
 * An error code in words: the page's own text for it, and the server's explanation.
 * @param {string} code @param {string} message
 */
export function errorText(code, message) {
  if (code === "Refused") return message;
  const key = `error.${code}`;
  const own = t(key, { message });
  return own === key ? t("error.Unknown", { message }) : `${own} (${message})`;
}

/**
 * @param {State} state @param {ServerMessage} message @param {number} now
 */
function applyHunt(state, message, now) {
  const b = message.body;
  const seconds = (/** @type {number | bigint} */ ticks) => Number(ticks) / state.tickRate;
  state.version += 1;
  switch (message.kind) {
    case "DigProgress":
      state.dig = { x: b.X, y: b.Y, effort: b.Effort, required: b.Required, at: now };
      break;
    case "VaultDiscovered":
      state.sparkles.push({ x: b.X + 0.5, y: b.Y + 0.5, at: now, by: b.By, vault: b.Vault });
      state.opened.add(b.Vault);
      state.openedTiles.set(b.Vault, { x: b.X, y: b.Y });
      if (b.By !== state.me?.name) toast(state, t("vault.discovered", { by: b.By, vault: nameOf("vault", b.Vault) }), "info");
      break;
    case "VaultClaimed":
      seen(state, b.Seq);
      state.opened.add(b.Vault);
      if (b.By !== state.me?.name) toast(state, t("vault.claimed", { by: b.By, vault: nameOf("vault", b.Vault) }));
      break;
    case "LootGranted":
      seen(state, b.Seq);
      state.opened.add(b.Vault);
      state.dig = null;
      toast(state, t("dig.opened", { vault: nameOf("vault", b.Vault) }), "good");
      if (b.Items.length > 0) toast(state, t("loot.got", { items: stacks(b.Items) }), "good");
      if (b.Pending.length > 0) toast(state, t("loot.pending", { items: stacks(b.Pending) }));
      break;
    case "InventoryChanged":
      state.slots = b.Slots;
      state.pending = b.Pending;
      break;
    case "Discarded":
      toast(state, t("discarded", { quantity: b.Quantity, item: nameOf("item", b.Item) }));
      break;
    case "TeamChanged":
      state.team = b.Team ?? null;
      break;
    case "Clue":
      state.clues.set(b.Clue, { ...b, hint: state.clues.get(b.Clue)?.hint });
      break;
    case "Hint": {
      /** @type {import("./state.js").Clue} */
      const clue = state.clues.get(b.Clue) ?? { Clue: b.Clue, Kind: b.Kind };
      clue.hint = { Band: b.Band, Direction: b.Direction, at: now };
      state.clues.set(b.Clue, clue);
      break;
    }
    case "HuntAnnounced":
      state.hunt = {
        hunt: b.Hunt,
        event: b.Event,
        text: b.Text,
        endsAt: b.SecondsLeft != null ? now + b.SecondsLeft * 1000 : b.Event === "Ended" ? null : (state.hunt?.endsAt ?? null),
      };
      if (b.FinalBoard) state.board = b.FinalBoard;
      toast(state, b.Text, b.Event === "Started" ? "good" : "info");
      break;
    case "Leaderboard":
      state.board = b;
      // The board changed: the player's own place may have too, when it is on the board.
      if (state.rank != null || b.Top.some((/** @type {{ Player: string }} */ row) => row.Player === state.me?.name)) {
        state.rankStale = true;
      }
      break;
    case "YourRank":
      state.rank = b;
      break;
    case "EffectStarted":
      state.effects.set(b.Effect, { id: b.Effect, stacks: b.Stacks, endsAt: now + seconds(b.Ticks) * 1000 });
      if (message.request != null) toast(state, t("effect.started", { effect: nameOf("effect", b.Effect), seconds: Math.round(seconds(b.Ticks)) }), "good");
      break;
    case "EffectEnded":
      state.effects.delete(b.Effect);
      toast(state, t("effect.ended", { effect: nameOf("effect", b.Effect) }));
      break;
    case "TreasureSense":
      state.sense = b.Vaults;
      break;
    case "CaughtUp":
      seen(state, b.Seq);
      break;
    case "Snapshot":
      seen(state, b.Seq);
      for (const vault of b.Opened) state.opened.add(vault);
      break;
    default:
      state.version -= 1;
      break;
  }
}

/** @param {State} state @param {number | bigint} seq */
function seen(state, seq) {
  state.lastSeq = Math.max(state.lastSeq, Number(seq));
}

/** @param {{ Item: string, Quantity: number }[]} list */
function stacks(list) {
  return list.map((s) => `${s.Quantity} ${nameOf("item", s.Item)}`).join(", ");
}
