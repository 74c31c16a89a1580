// The page's words, read from lang/<language>.lang (the mod's language file format), with
// en-US behind every other language.

/** @type {Map<string, string>} */
let words = new Map();

/** @param {string} text */
export function parseLang(text) {
  /** @type {Map<string, string>} */
  const out = new Map();
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const eq = trimmed.indexOf("=");
    if (eq < 0) continue;
    out.set(trimmed.slice(0, eq).trim(), trimmed.slice(eq + 1).trim());
  }
  return out;
}

/**
 * Loads en-US and, when the browser prefers another language the server has, that one over it.
 * @param {readonly string[]} preferred the browser's languages, best first
 */
export async function loadLanguage(preferred) {
  const base = parseLang(await fetchText("lang/en-US.lang"));
  for (const language of preferred) {
    if (language === "en-US") break;
    const text = await fetchText(`lang/${language}.lang`).catch(() => null);
    if (text !== null) {
      for (const [key, value] of parseLang(text)) base.set(key, value);
      break;
    }
  }
  words = base;
}

/** @param {string} path */
async function fetchText(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.text();
}

/**
 * The words for `key` with `{name}` filled from `values`; the key itself when it is missing,
 * so a gap shows rather than hides.
 * @param {string} key @param {Record<string, string | number>} [values]
 */
export function t(key, values = {}) {
  const text = words.get(key) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/** Whether the language files have `key`. @param {string} key */
export function has(key) {
  return words.has(key);
}

/** An item's or effect's name: `name.<kind>.<id>` when the files have it, else its id with spaces. @param {string} kind @param {string} id */
export function nameOf(kind, id) {
  const key = `name.${kind}.${id}`;
  return words.has(key) ? t(key) : id.replaceAll("_", " ");
}
