// What the case pages share: their language's messages, the API client, DOM helpers.
// The messages come with the page (a JSON data block, never run). Data from the API is
// shown through textContent only, never as markup.
export const API = "/api/v1";

const MESSAGES = JSON.parse(document.getElementById("messages")?.textContent || "{}");
const LANG = document.documentElement.lang === "fi" ? "fi" : "en";
const LOCALE = LANG === "fi" ? "fi-FI" : "en-GB";

// The message `key` with its {names} filled from `values`; the key itself if missing.
export function t(key, values = {}) {
  const text = MESSAGES[key];
  if (text === undefined) return key;
  return text.replace(/\{([a-z_]+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export const hasMessage = (key) => key in MESSAGES;

export const $ = (id) => document.getElementById(id);

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function button(text, onClick, label) {
  const node = element("button", text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

// Scores and averages in the page's language: "82,5" in Finnish, "82.5" in English.
const DECIMAL = { minimumFractionDigits: 1, maximumFractionDigits: 2 };
const NUMBER = new Intl.NumberFormat(LOCALE, DECIMAL);
const SIGNED = new Intl.NumberFormat(LOCALE, { ...DECIMAL, signDisplay: "exceptZero" });

// `value` with one or two decimals (`signed`: with its + or −); the dash of a missing value.
export const decimal = (value, signed = false) =>
  value === null || value === undefined ? t("facts.none") : (signed ? SIGNED : NUMBER).format(value);

export const when = (iso) =>
  iso ? new Date(iso).toLocaleString(LOCALE, { dateStyle: "medium", timeStyle: "short" }) : t("facts.none");

export function clock(ms) {
  const total = Number.isFinite(ms) ? Math.max(0, Math.round(ms / 1000)) : 0;
  const s = String(total % 60).padStart(2, "0");
  const m = Math.floor(total / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  // "Not found: the case ..." in the page's language; the API's own words after the colon.
  describe() {
    const key = `error.${this.status}`;
    return hasMessage(key) ? `${t(key)}: ${this.message}` : this.message;
  }
}

export async function errorOf(response) {
  let code = "http_error";
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch (_) {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

// A request to the API with the session cookie; JSON in and out. `raw`: the Response itself.
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${API}${path}`, init);
  } catch (_) {
    throw new ApiError(0, "network", t("error.network"));
  }
  if (response.status === 401) {
    window.location.assign("/");
    throw new ApiError(401, "unauthenticated", t("error.signed_out"));
  }
  if (!response.ok) throw await errorOf(response);
  return raw ? response : response.json();
}

// Show `error` (an ApiError, an Error or a string) in the alert box `id`, or hide it.
export function showError(id, error) {
  const box = $(id);
  const text = !error ? "" : error instanceof ApiError ? error.describe() : String(error.message || error);
  box.textContent = text;
  box.hidden = !text;
}

// Replace the rows of `table`'s body; the table is shown only with rows, `empty` otherwise.
export function fillTable(table, rows, empty) {
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = rows.length === 0;
  if (empty) empty.hidden = rows.length !== 0;
}

export function row(...cells) {
  const tr = element("tr");
  for (const cell of cells) {
    tr.append(cell instanceof HTMLTableCellElement ? cell : element("td", cell || t("facts.none")));
  }
  return tr;
}

export function cellWith(...children) {
  const td = element("td");
  td.append(...children);
  return td;
}
