// Drives headless Chromium for the browser tests (tests/tests/browser.rs): one JSON command
// per line on stdin, one JSON answer per line on stdout. The test keeps the logic; this only
// does what it is told, so a failure reads in the Rust test with its server beside it.
//
// Commands: {"op": "open", "url"} | {"op": "eval", "expr"} | {"op": "wait", "expr", "timeoutMs"}
// | {"op": "key", "key", "holdMs"} | {"op": "type", "selector", "text"} | {"op": "click", "selector"}
// | {"op": "mouse", "x", "y", "button"} | {"op": "screenshot", "path"} | {"op": "viewport", "width", "height"}
// | {"op": "close"}. Answers: {"ok": true, "value"} or {"ok": false, "error"}.

import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const executablePath = process.env.VELTRIX_CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // A machine without a GPU and without the outside network: no background connections.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
const page = await context.newPage();
/** @type {string[]} */
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console error: ${message.text()}`);
});

/** @param {any} command */
async function run(command) {
  switch (command.op) {
    case "open":
      await page.goto(command.url);
      return null;
    case "eval":
      return await page.evaluate(command.expr);
    case "wait": {
      const handle = await page.waitForFunction(command.expr, undefined, { timeout: command.timeoutMs ?? 10000, polling: 50 });
      return await handle.jsonValue();
    }
    case "key":
      await page.keyboard.down(command.key);
      await page.waitForTimeout(command.holdMs ?? 50);
      await page.keyboard.up(command.key);
      return null;
    case "type":
      await page.fill(command.selector, command.text);
      return null;
    case "click":
      await page.click(command.selector);
      return null;
    case "mouse":
      await page.mouse.click(command.x, command.y, { button: command.button ?? "left" });
      return null;
    case "screenshot":
      await page.screenshot({ path: command.path });
      return null;
    case "viewport":
      await page.setViewportSize({ width: command.width, height: command.height });
      return null;
    case "problems":
      return problems.splice(0);
    case "close":
      await browser.close();
      process.exit(0);
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ok: true, value: "ready" }) + "\n");
for await (const line of lines) {
  let answer;
  try {
    answer = { ok: true, value: (await run(JSON.parse(line))) ?? null };
  } catch (error) {
    answer = { ok: false, error: String(error instanceof Error ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
