// The panels beside the map: status, hunt, inventory, effects, clues and hints, leaderboard,
// team, command box and toasts. Drawn again only when the state's version changed (and once a
// second for the clocks), never per animation frame.

import { nameOf, t } from "./lang.js";

/** @typedef {import("./state.js").State} State */
/** @typedef {import("./net.js").Connection} Connection */

/** HotCold bands from cold to burning on a blue-to-orange scale, which colour-blind eyes tell apart; each band also has its own label and position on the gauge. */
const HEAT = ["Cold", "Cool", "Warm", "Hot", "Burning"];
const HEAT_COLOURS = ["#2166ac", "#67a9cf", "#d9d9d9", "#f4a582", "#e66101"];
const ARROWS = /** @type {Record<string, string>} */ ({
  North: "↑", NorthEast: "↗", East: "→", SouthEast: "↘", South: "↓", SouthWest: "↙", West: "←", NorthWest: "↖",
});

/**
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

export class Panels {
  /** @param {State} state @param {() => Connection | null} connection */
  constructor(state, connection) {
    this.state = state;
    this.connection = connection;
    this.shownVersion = -1;
    this.shownSecond = -1;
    /** @param {string} id */
    const find = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
    this.status = find("status");
    this.huntBox = find("hunt");
    this.inventory = find("inventory");
    this.pending = find("pending");
    this.effects = find("effects");
    this.clues = find("clues");
    this.board = find("board");
    this.rank = find("rank");
    this.team = find("team-now");
    this.toasts = find("toasts");
    this.commandLog = find("command-log");
    this.sense = find("sense");
  }

  /** @param {number} now */
  update(now) {
    const second = Math.floor(now / 1000);
    if (this.state.version === this.shownVersion && second === this.shownSecond) return;
    const changed = this.state.version !== this.shownVersion;
    this.shownVersion = this.state.version;
    this.shownSecond = second;
    this.showStatus();
    this.showHunt(now);
    this.showEffects(now);
    if (!changed) return;
    this.showInventory();
    this.showClues();
    this.showBoard();
    this.showToasts();
    this.team.textContent = this.state.team ? t("team.now", { team: this.state.team }) : t("team.none");
    this.sense.textContent = this.state.sense != null ? t("sense.count", { count: this.state.sense }) : "";
    this.commandLog.textContent = this.state.commandLog.slice(-8).join("\n");
  }

  showStatus() {
    const s = this.state;
    const text =
      s.phase === "online" ? t("status.online", { name: s.me?.name ?? "", server: s.serverName })
      : s.phase === "reconnecting" ? t("status.reconnecting", { attempt: "…" })
      : s.phase === "connecting" ? t("login.connecting", { server: s.serverName || location.host })
      : (s.problem ?? t("status.offline"));
    this.status.textContent = text;
    this.status.dataset.phase = s.phase;
  }

  /** @param {number} now */
  showHunt(now) {
    const hunt = this.state.hunt;
    if (!hunt) {
      this.huntBox.textContent = t("hunt.none");
      return;
    }
    const left = hunt.endsAt != null ? Math.max(0, Math.ceil((hunt.endsAt - now) / 1000)) : null;
    this.huntBox.replaceChildren(
      el("p", {}, [hunt.text]),
      ...(left != null && hunt.event !== "Ended" ? [el("p", { class: "countdown" }, [t("hunt.countdown", { seconds: left })])] : []),
    );
  }

  showInventory() {
    const free = this.state.slots.filter((slot) => !slot).length;
    const slots = this.state.slots.flatMap((slot, index) => {
      if (!slot) return [];
      const use = el("button", { type: "button", "data-item": slot.Item }, [t("inventory.use")]);
      use.addEventListener("click", () => this.connection()?.ask("UseItem", { Item: slot.Item }));
      const discard = el("button", { type: "button", "data-item": slot.Item }, [t("inventory.discard")]);
      discard.addEventListener("click", () => this.connection()?.ask("Discard", { Item: slot.Item, Quantity: 1 }));
      return el("li", { class: "slot", "data-slot": String(index) }, [
        el("span", { class: "item" }, [`${nameOf("item", slot.Item)} × ${slot.Quantity}`]),
        use,
        discard,
      ]);
    });
    // No slots at all: the server runs no mod with an inventory.
    const room = this.state.slots.length > 0 ? [el("li", { class: "free" }, [t("inventory.free", { count: free })])] : [];
    this.inventory.replaceChildren(...slots, ...room);
    this.pending.replaceChildren(
      ...(this.state.pending.length === 0
        ? [el("li", {}, [t("inventory.nothing_pending")])]
        : this.state.pending.map((s) => el("li", {}, [`${nameOf("item", s.Item)} × ${s.Quantity}`]))),
    );
  }

  /** @param {number} now */
  showEffects(now) {
    const effects = [...this.state.effects.values()];
    this.effects.replaceChildren(
      ...(effects.length === 0
        ? [el("li", {}, [t("effects.none")])]
        : effects.map((e) => {
            const left = Math.max(0, Math.ceil((e.endsAt - now) / 1000));
            return el("li", {}, [`${nameOf("effect", e.id)}${e.stacks > 1 ? ` ×${e.stacks}` : ""}: ${left} s`]);
          })),
    );
  }

  showClues() {
    const clues = [...this.state.clues.values()];
    if (clues.length === 0) {
      this.clues.replaceChildren(el("li", {}, [t("clues.none")]));
      return;
    }
    this.clues.replaceChildren(
      ...clues.map((clue) => {
        const item = el("li", { "data-clue": clue.Clue, "data-kind": clue.Kind }, [el("strong", {}, [nameOf("clue", clue.Clue)])]);
        if (clue.Text) item.append(el("p", { class: "riddle" }, [clue.Text]));
        if (clue.Kind === "HotCold" || clue.Kind === "Compass") {
          const ask = el("button", { type: "button" }, [t("clues.ask")]);
          ask.addEventListener("click", () => this.connection()?.ask("AskClue", { Clue: clue.Clue }));
          item.append(ask);
        }
        if (clue.hint?.Band) item.append(heatGauge(clue.hint.Band));
        if (clue.Kind === "Compass" && clue.hint) {
          const direction = clue.hint.Direction;
          item.append(
            el("p", { class: "compass", "data-direction": direction ?? "" }, [
              direction ? `${ARROWS[direction] ?? "?"} ${t("hint.direction", { clue: "", direction: t(`direction.${direction}`) }).replace(/^:\s*/, "")}` : t("hint.here", { clue: "" }),
            ]),
          );
        }
        return item;
      }),
    );
  }

  showBoard() {
    const board = this.state.board;
    if (!board || board.Top.length === 0) {
      this.board.replaceChildren(el("tr", {}, [el("td", { colspan: "4" }, [t("board.none")])]));
    } else {
      this.board.replaceChildren(
        ...board.Top.map((row) =>
          el("tr", row.Player === this.state.me?.name ? { class: "me" } : {}, [
            el("td", {}, [String(row.Rank)]),
            el("td", {}, [row.Player]),
            el("td", {}, [String(row.Vaults)]),
            el("td", {}, [String(row.Score)]),
          ]),
        ),
      );
    }
    const rank = this.state.rank;
    this.rank.textContent = !rank ? "" : rank.Rank == null ? t("board.unranked") : t("board.rank", { rank: rank.Rank, of: rank.Of, vaults: rank.Vaults, score: rank.Score });
  }

  showToasts() {
    this.toasts.replaceChildren(...this.state.toasts.map((toast) => el("li", { class: toast.kind }, [toast.text])));
  }
}

/** A HotCold band as a gauge: five cells from cold to burning, the band's cell marked and named. @param {string} band */
function heatGauge(band) {
  const at = HEAT.indexOf(band);
  const gauge = el("div", { class: "heat", role: "meter", "aria-valuemin": "0", "aria-valuemax": "4", "aria-valuenow": String(Math.max(0, at)), "aria-valuetext": band, "data-band": band });
  HEAT.forEach((name, i) => {
    const cell = el("span", { class: i === at ? "cell here" : "cell", title: name });
    cell.style.background = HEAT_COLOURS[i];
    gauge.append(cell);
  });
  gauge.append(el("span", { class: "label" }, [band]));
  return gauge;
}
