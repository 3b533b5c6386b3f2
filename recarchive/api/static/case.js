// One dispute case (/player/cases/{id}): facts, hold, recordings (played here for the case's
// dispute), notes, custody record, evidence packages, closing. Every change goes through
// /api/v1/cases, which checks the role and audits; the page redraws from the API's answer.
import {
  $, api, button, cellWith, clock, element, fillTable, hasMessage, row, showError, t, when,
} from "./pages.js";

const CASE_ID = $("case").dataset.caseId;
const PATH = `/cases/${encodeURIComponent(CASE_ID)}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const audio = $("audio");
const state = { detail: null, closeReason: "" };

// --- facts and hold -------------------------------------------------------------

function fact(list, label, value) {
  list.append(element("dt", label), element("dd", value || t("facts.none")));
}

const by = (at, user) => (at ? t("facts.by", { at: when(at), user: user || t("facts.none") }) : null);

function showFacts(detail) {
  $("case-title").textContent = t("case.title", { reference: detail.reference });
  document.title = `${t("case.title", { reference: detail.reference })} · recarchive`;
  const list = $("facts");
  list.replaceChildren();
  fact(list, t("facts.reference"), detail.reference);
  fact(list, t("facts.kind"), t(`kind.${detail.kind}`));
  fact(list, t("facts.status"), t(`status.${detail.status}`));
  fact(list, t("facts.customer"), detail.customer_id);
  fact(list, t("facts.document"), detail.document_ref);
  fact(list, t("facts.handler"), detail.handler);
  fact(list, t("facts.opened"), by(detail.opened_at, detail.opened_by));
  if (detail.status === "closed") {
    fact(list, t("facts.closed"), by(detail.closed_at, detail.closed_by));
    fact(list, t("facts.close_reason"), detail.close_reason);
    fact(list, t("facts.delete_after"), detail.delete_after ? when(detail.delete_after) : null);
  }
}

function showHold(hold) {
  $("hold").hidden = !hold;
  $("hold-none").hidden = Boolean(hold);
  if (!hold) return;
  $("hold-id").textContent = hold.id;
  $("hold-since").textContent = when(hold.placed_at);
  $("hold-recordings").textContent = String(hold.recordings);
  for (const id of ["hold-released", "hold-released-term"]) $(id).hidden = !hold.released_at;
  $("hold-released").textContent = hold.released_at ? when(hold.released_at) : "";
}

// --- recordings and playback ------------------------------------------------------

function recordingRow(item, open) {
  const deleted = item.status === "deleted";
  const started = deleted ? t("rec.deleted") : when(item.started_at);
  const status = hasMessage(`rec.status.${item.status}`) ? t(`rec.status.${item.status}`) : item.status;
  const actions = element("td", null, "actions");
  if (!deleted) {
    actions.append(button(t("rec.play"), () => play(item), t("rec.play_label", { started })));
  }
  if (open) {
    actions.append(button(t("rec.unlink"), () => unlink(item), t("rec.unlink_label", { started })));
  }
  const tr = row(
    started,
    deleted ? null : clock(item.duration_ms),
    item.agent,
    item.queue,
    status,
    deleted ? null : String(item.other_holds),
    by(item.added_at, item.added_by),
    actions,
  );
  tr.dataset.recordingId = item.id;
  return tr;
}

function showRecordings(detail) {
  const open = detail.status === "open";
  fillTable($("recordings"), detail.recordings.map((item) => recordingRow(item, open)), $("recordings-none"));
  $("link").hidden = !open;
}

function play(item) {
  const reference = state.detail.reference;
  const params = new URLSearchParams({ purpose: "dispute", case: reference });
  audio.src = `/api/v1/recordings/${encodeURIComponent(item.id)}/audio?${params}`;
  $("player-call").textContent = t("player.call", {
    started: when(item.started_at),
    agent: item.agent || t("facts.none"),
    queue: item.queue || t("facts.none"),
  });
  $("player-purpose").textContent = t("player.purpose", { reference });
  $("player").hidden = false;
  showError("error", null);
  audio.play().catch((error) => {
    if (error.name === "NotAllowedError") showError("error", t("player.blocked"));
    // other failures arrive as the element's "error" event
  });
  audio.focus();
}

// The element's error hides the API's answer: ask again for one byte to show it.
async function explainAudioError() {
  const url = audio.currentSrc || audio.src;
  if (!url) return;
  let shown = t("player.media");
  try {
    const response = await fetch(url, { headers: { Range: "bytes=0-0" } });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      const key = `error.${response.status}`;
      const message = body?.error?.message || `HTTP ${response.status}`;
      shown = hasMessage(key) ? `${t(key)}: ${message}` : message;
    } else {
      await response.body?.cancel();
    }
  } catch (_) {
    // keep the generic message
  }
  showError("error", shown);
}

async function linkRecordings(event) {
  event.preventDefault();
  const values = $("link-ids").value.split(/[\s,;]+/).filter(Boolean);
  const wrong = values.find((value) => !UUID.test(value));
  if (!values.length || wrong) {
    showError("error", wrong ? t("link.invalid", { value: wrong }) : t("link.empty"));
    $("link-ids").focus();
    return;
  }
  if (await change(`${PATH}/recordings`, "POST", { recording_ids: values })) {
    $("link-ids").value = "";
    $("link-ids").focus();
  }
}

const unlink = (item) => change(`${PATH}/recordings/${encodeURIComponent(item.id)}`, "DELETE");

// --- notes --------------------------------------------------------------------------

function showNotes(notes) {
  $("notes").replaceChildren(
    ...notes.map((note) => {
      const entry = element("li");
      entry.append(element("p", note.text, "note-text"), element("p", t("notes.by", { user: note.author, at: when(note.at) }), "hint"));
      return entry;
    }),
  );
  $("notes-none").hidden = notes.length !== 0;
}

async function addNote(event) {
  event.preventDefault();
  const text = $("note-text").value.trim();
  if (!text) {
    showError("error", t("notes.empty"));
    $("note-text").focus();
    return;
  }
  if (await change(`${PATH}/notes`, "POST", { text })) $("note-text").value = "";
}

// Enter saves the note, Shift+Enter starts a new line (the form submits with Enter).
function noteKey(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("note-form").requestSubmit();
  }
}

// --- custody record -----------------------------------------------------------------

function custodyRow(entry) {
  const action = element("td", hasMessage(`action.${entry.action}`) ? t(`action.${entry.action}`) : entry.action);
  action.dataset.action = entry.action;
  const recording = element("td");
  if (entry.recording_id) {
    const code = element("code", `${entry.recording_id.slice(0, 8)}…`);
    code.title = entry.recording_id;
    recording.append(code);
  }
  const role = entry.actor_role && hasMessage(`role.${entry.actor_role}`) ? t(`role.${entry.actor_role}`) : entry.actor_role;
  const tr = row(when(entry.at), entry.actor, role, action, recording);
  tr.dataset.seq = String(entry.seq);
  return tr;
}

async function loadCustody() {
  try {
    const { entries } = await api(`${PATH}/custody`);
    fillTable($("custody"), entries.map(custodyRow), $("custody-none"));
  } catch (error) {
    showError("error", error);
  }
}

// --- evidence packages --------------------------------------------------------------

function showExports(exports) {
  const rows = exports.map((item) => {
    const digest = element("code", item.manifest_sha256 ? `${item.manifest_sha256.slice(0, 16)}…` : "");
    digest.title = item.manifest_sha256 || "";
    return row(
      when(item.at),
      item.made_by,
      String(item.recordings),
      cellWith(digest),
      item.timestamped_at ? when(item.timestamped_at) : t("exports.not_timestamped"),
    );
  });
  fillTable($("exports"), rows, $("exports-none"));
}

function fileName(response) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
  const name = match ? decodeURIComponent(match[1]) : "";
  return /^[\w.-]+$/.test(name) ? name : `evidence-${CASE_ID}.zip`;
}

async function exportPackage() {
  const trigger = $("export");
  trigger.disabled = true;
  showError("export-error", null);
  $("export-status").textContent = t("exports.working");
  try {
    const response = await api(`${PATH}/export`, { method: "POST", raw: true });
    const name = fileName(response);
    const url = URL.createObjectURL(await response.blob());
    const link = element("a");
    Object.assign(link, { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    $("export-status").textContent = t("exports.done", { file: name });
    await load();
  } catch (error) {
    $("export-status").textContent = "";
    showError("export-error", t("exports.failed", { status: error.status || "–", message: error.message }));
  } finally {
    trigger.disabled = false;
  }
}

// --- closing ------------------------------------------------------------------------

function askClose(event) {
  event.preventDefault();
  const reason = $("close-reason").value.trim();
  if (!reason) {
    showError("close-error", t("close.reason_needed"));
    $("close-reason").focus();
    return;
  }
  showError("close-error", null);
  state.closeReason = reason;
  $("close-confirm-title").textContent = t("close.confirm_title", { reference: state.detail.reference });
  $("close-confirm-body").textContent = t("close.confirm_body", { reason });
  $("close-dialog").showModal();
  $("close-cancel").focus();
}

async function confirmClose(event) {
  event.preventDefault();
  $("close-dialog").close();
  if (await change(`${PATH}/close`, "POST", { reason: state.closeReason }, "close-error")) {
    $("close-reason").value = "";
    $("case-title").focus();
  }
}

function showClosing(detail) {
  const open = detail.status === "open";
  $("close-form").hidden = !open;
  $("note-form").hidden = !open; // a closed case's record no longer changes
  $("closed-note").hidden = open;
}

// --- the case as a whole --------------------------------------------------------------

function show(detail) {
  state.detail = detail;
  showFacts(detail);
  showHold(detail.hold);
  showRecordings(detail);
  showNotes(detail.notes);
  showExports(detail.exports);
  showClosing(detail);
}

// A change through the API; the case is redrawn from its answer. True when it was made.
async function change(path, method, body, errorBox = "error") {
  try {
    show(await api(path, { method, body }));
    showError(errorBox, null);
    await loadCustody();
    return true;
  } catch (error) {
    showError(errorBox, error);
    return false;
  }
}

async function load() {
  try {
    show(await api(PATH));
    showError("error", null);
  } catch (error) {
    showError("error", error);
  }
}

function wire() {
  $("link").addEventListener("submit", linkRecordings);
  $("note-form").addEventListener("submit", addNote);
  $("note-text").addEventListener("keydown", noteKey);
  $("custody-refresh").addEventListener("click", loadCustody);
  $("export").addEventListener("click", exportPackage);
  $("close-form").addEventListener("submit", askClose);
  $("close-confirm").addEventListener("submit", confirmClose);
  $("close-cancel").addEventListener("click", () => $("close-dialog").close());
  audio.addEventListener("error", explainAudioError);
  audio.addEventListener("playing", loadCustody);
}

wire();
await load();
await loadCustody();
