// The connection: the handshake, frames both ways, requests that survive a reconnect, and
// reconnecting with catch-up when the connection drops.

import { t } from "./lang.js";
import { apply, errorText } from "./events.js";
import { command, decodeFrame, encodeFrame, hello, hunt, move } from "./protocol.js";
import { toast, welcome } from "./state.js";

/** @typedef {import("./state.js").State} State */

/** Refusals a new attempt cannot cure: the page stops and says why. */
const FINAL = new Set(["ProtocolVersion", "BadCredentials", "TokenExpired", "Banned", "Replaced", "Kicked"]);
/** Closes after which reconnecting would only repeat the problem. */
const NO_RETRY_CLOSE = new Set([1008]);

export class Connection {
  /**
   * @param {State} state
   * @param {{ url: string, name: string, token: string | null }} login
   */
  constructor(state, login) {
    this.state = state;
    this.login = login;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** Request ids count up from a random point, so a new page never repeats an old id. */
    this.nextRequest = Math.floor(Math.random() * 0x7fffffff);
    this.nextSeq = 1;
    /** Requests sent and not answered yet, sent again with the same id after a reconnect. @type {Map<number, object>} */
    this.unanswered = new Map();
    /** @type {object[]} messages waiting for this animation frame's flush */
    this.outgoing = [];
    this.attempt = 0;
    this.stopped = false;
    /** The last problem's error code, to decide whether to try again. @type {string | null} */
    this.lastCode = null;
    this.framesIn = 0;
    this.open();
  }

  open() {
    const state = this.state;
    state.phase = this.attempt === 0 ? "connecting" : "reconnecting";
    state.version += 1;
    const socket = new WebSocket(this.login.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.lastCode = null;
    let welcomed = false;
    socket.onopen = () => socket.send(encodeFrame([hello(this.login.name, this.login.token)]));
    socket.onmessage = (event) => {
      if (!(event.data instanceof ArrayBuffer)) return;
      const now = performance.now();
      const frame = decodeFrame(event.data);
      this.framesIn += 1;
      for (const message of frame.messages) {
        if (message.kind === "Welcome" && message.ns === undefined) {
          welcomed = true;
          this.welcomed(message.body);
          continue;
        }
        if (message.kind === "Error" && message.ns === undefined) this.lastCode = message.body.code;
        this.answered(message);
        if (message.kind === "Error" && !welcomed) {
          state.problem = errorText(message.body.code, message.body.message);
          state.version += 1;
          continue;
        }
        apply(state, message, frame.tick, now);
      }
    };
    socket.onclose = (event) => this.closed(event, welcomed);
  }

  /** @param {any} body */
  welcomed(body) {
    const again = this.attempt > 0;
    this.attempt = 0;
    welcome(this.state, body, this.login.name);
    // What happened while away: the events after the last one seen, then the requests still
    // unanswered, with their ids, so none is applied twice.
    // Moves queued while away are stale: the player starts where the Welcome says.
    this.outgoing = [hunt("CatchUp", this.request(), { After: this.state.lastSeq }), ...this.unanswered.values()];
    if (again) toast(this.state, t("status.caughtup"), "good");
  }

  /**
   * Forgets a request once something answers it: a mod message or an error naming its id, or
   * a command's result.
   * @param {import("./protocol.js").ServerMessage} message
   */
  answered(message) {
    const id = message.ns !== undefined ? message.request : message.body?.request;
    if (id != null) this.unanswered.delete(id);
  }

  /** @param {CloseEvent} event @param {boolean} welcomed */
  closed(event, welcomed) {
    const state = this.state;
    if (this.stopped) return;
    const code = this.lastCode;
    if ((code && FINAL.has(code)) || (!welcomed && NO_RETRY_CLOSE.has(event.code) && code !== "NameTaken")) {
      state.phase = "refused";
      state.problem ??= errorText(code ?? "Unknown", event.reason || `connection closed (${event.code})`);
      state.version += 1;
      return;
    }
    this.attempt += 1;
    state.phase = "reconnecting";
    state.version += 1;
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5));
    setTimeout(() => this.stopped || this.open(), delay);
  }

  close() {
    this.stopped = true;
    this.socket?.close(1000);
    this.state.phase = "login";
    this.state.version += 1;
  }

  /** A new request id. */
  request() {
    this.nextRequest = (this.nextRequest + 1) >>> 0;
    return this.nextRequest;
  }

  /** @param {number} x @param {number} y */
  move(x, y) {
    const seq = this.nextSeq++;
    this.outgoing.push(move(seq, x, y));
    return seq;
  }

  /**
   * A treasure hunt request; kept until answered and sent again after a reconnect.
   * @param {string} kind @param {object} body
   */
  ask(kind, body) {
    const id = this.request();
    const message = hunt(kind, id, body);
    this.remember(id, message);
    this.outgoing.push(message);
    return id;
  }

  /** @param {string} line */
  command(line) {
    const id = this.request();
    const message = command(id, line);
    this.remember(id, message);
    this.outgoing.push(message);
    return id;
  }

  /**
   * Keeps a request to send again after a reconnect; the server remembers a player's last 16
   * ids, so only as many are worth repeating.
   * @param {number} id @param {object} message
   */
  remember(id, message) {
    this.unanswered.set(id, message);
    if (this.unanswered.size > 16) this.unanswered.delete(/** @type {number} */ (this.unanswered.keys().next().value));
  }

  /** Sends what this frame queued, as one WebSocket message. */
  flush() {
    if (this.outgoing.length === 0 || this.socket?.readyState !== WebSocket.OPEN || this.state.phase !== "online") return;
    this.socket.send(encodeFrame(this.outgoing));
    this.outgoing = [];
  }
}
