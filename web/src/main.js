// The page: login, then one loop per animation frame (input, the map, the panels, the
// outgoing frame). `window.veltrix` exposes the state to tests and to the curious.

import { loadLanguage, t } from "./lang.js";
import { Hands } from "./input.js";
import { Connection } from "./net.js";
import { Renderer } from "./render.js";
import { createState } from "./state.js";
import { Panels } from "./ui.js";

const TOAST_MS = 6000;

const state = createState();
/** @type {Connection | null} */
let connection = null;

/** @param {string} id */
const find = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const canvas = /** @type {HTMLCanvasElement} */ (find("map"));
const renderer = new Renderer(canvas, state);
const hands = new Hands(state, () => connection);
const panels = new Panels(state, () => connection);

const api = { state, renderer, hands, connection: () => connection, t };
/** @type {any} */ (window).veltrix = api;

await loadLanguage(navigator.languages ?? [navigator.language]);
for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(/** @type {string} */ (node.getAttribute("data-text")));
for (const node of document.querySelectorAll("[data-placeholder]")) {
  /** @type {HTMLInputElement} */ (node).placeholder = t(/** @type {string} */ (node.getAttribute("data-placeholder")));
}
document.title = t("title");

const params = new URLSearchParams(location.search);
const nameInput = /** @type {HTMLInputElement} */ (find("name"));
const tokenInput = /** @type {HTMLInputElement} */ (find("token"));
const serverInput = /** @type {HTMLInputElement} */ (find("server"));
nameInput.value = params.get("name") ?? localStorage.getItem("veltrix.name") ?? "";
tokenInput.value = params.get("token") ?? "";
serverInput.value = params.get("server") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;

find("login").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("veltrix.name", nameInput.value);
  play(nameInput.value.trim(), tokenInput.value.trim() || null, serverInput.value.trim());
});

/** @param {string} name @param {string | null} token @param {string} url */
function play(name, token, url) {
  connection?.close();
  connection = new Connection(state, { url, name, token });
}

find("team-form").addEventListener("submit", (event) => {
  event.preventDefault();
  connection?.ask("JoinTeam", { Team: /** @type {HTMLInputElement} */ (find("team")).value });
});
find("team-leave").addEventListener("click", () => connection?.ask("JoinTeam", { Team: "" }));
find("ask-rank").addEventListener("click", () => connection?.ask("Rank", {}));
find("command-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (find("command"));
  if (input.value.trim() === "") return;
  state.commandLog.push(`> ${input.value}`);
  connection?.command(input.value.trim());
  input.value = "";
  canvas.focus();
});

function isTyping() {
  const active = document.activeElement;
  return active instanceof HTMLInputElement || active instanceof HTMLTextAreaElement;
}

window.addEventListener("keydown", (event) => {
  if (state.phase === "login" || state.phase === "refused") return;
  if (event.key === "Escape") canvas.focus();
  if (isTyping()) return;
  if (event.key === "Enter") {
    find("command").focus();
    event.preventDefault();
  } else if (event.key === "+" || event.key === "=") renderer.zoom(1.25);
  else if (event.key === "-") renderer.zoom(0.8);
  else hands.keyDown(event);
});
window.addEventListener("keyup", (event) => hands.keyUp(event));
window.addEventListener("blur", () => hands.release());
window.addEventListener("resize", () => renderer.resize());

/** @param {MouseEvent} event */
function tileAt(event) {
  const box = canvas.getBoundingClientRect();
  return renderer.toTile(event.clientX - box.left, event.clientY - box.top);
}
canvas.addEventListener("mousemove", (event) => (renderer.hover = tileAt(event)));
canvas.addEventListener("mouseleave", () => (renderer.hover = null));
canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("mousedown", (event) => {
  canvas.focus();
  const tile = tileAt(event);
  if (event.button === 2 || event.shiftKey) hands.dig(tile.x, tile.y);
  else if (event.button === 0) hands.walkTo(tile.x, tile.y);
});

let shownPhase = "";
let last = performance.now();
/** @param {number} now */
function frame(now) {
  const dt = (now - last) / 1000;
  last = now;
  if (state.phase !== shownPhase) showPhase();
  while (state.toasts.length > 0 && now - state.toasts[0].at > TOAST_MS) {
    state.toasts.shift();
    state.version += 1;
  }
  if (state.rankStale && state.phase === "online") {
    state.rankStale = false;
    connection?.ask("Rank", {});
  }
  hands.update(now, dt);
  connection?.flush();
  if (state.me) renderer.draw(now);
  panels.update(now);
  requestAnimationFrame(frame);
}

function showPhase() {
  shownPhase = state.phase;
  const inGame = state.me !== null && state.phase !== "refused" && state.phase !== "login";
  find("login").hidden = inGame;
  find("game").hidden = !inGame;
  find("login-problem").textContent =
    state.phase === "refused" ? (state.problem ?? "")
    : state.phase === "connecting" || state.phase === "reconnecting" ? (state.problem ?? t("login.connecting", { server: serverInput.value }))
    : "";
  if (inGame) {
    renderer.resize();
    // The login form is gone: keys go to the map, not to a hidden field.
    if (!find("game").contains(document.activeElement)) canvas.focus();
  }
}

if (params.get("name") && params.get("play") !== null) play(nameInput.value, tokenInput.value || null, serverInput.value);
requestAnimationFrame(frame);
