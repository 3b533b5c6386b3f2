// The training library (/player/qa/library): every clip the library may still serve,
// played in the page (purpose training, audited by the API) or deleted after a confirm.
import { $, api, cellWith, clock, element, fillTable, row, showError, t, when } from "./pages.js";

const dialog = $("delete-dialog");
const state = { pending: null };

function kept(clip) {
  return clip.kept_until
    ? t("qa.library.kept_until", { at: when(clip.kept_until) })
    : t("qa.library.with_call", { at: when(clip.retain_until) });
}

function clipRow(clip) {
  const play = element("button", t("qa.library.play"));
  play.type = "button";
  play.setAttribute("aria-label", t("qa.library.play_label", { title: clip.title }));
  play.addEventListener("click", () => playClip(clip));
  const remove = element("button", t("qa.library.delete"));
  remove.type = "button";
  remove.setAttribute("aria-label", t("qa.library.delete_label", { title: clip.title }));
  remove.addEventListener("click", () => askDelete(clip));
  const actions = cellWith(play, remove);
  actions.className = "actions";
  const tr = row(
    clip.title,
    clip.purpose,
    clip.agent,
    clock(clip.duration_ms),
    kept(clip),
    clip.agent_only ? t("qa.library.yes") : t("qa.library.no"),
    actions,
  );
  tr.dataset.clipId = clip.id;
  return tr;
}

function playClip(clip) {
  const audio = $("clip-audio");
  audio.src = `/api/v1/qa/clips/${encodeURIComponent(clip.id)}/audio`;
  $("clip-playing").textContent = clip.title;
  $("clip-player").hidden = false;
  audio.play().catch(() => audio.focus());
}

function askDelete(clip) {
  state.pending = clip;
  $("delete-what").textContent = t("qa.library.delete_body", { title: clip.title });
  dialog.showModal();
}

async function confirmDelete(event) {
  event.preventDefault();
  const clip = state.pending;
  dialog.close();
  if (!clip) return;
  try {
    await api(`/qa/clips/${encodeURIComponent(clip.id)}`, { method: "DELETE", raw: true });
    $("library-status").textContent = t("qa.library.deleted", { title: clip.title });
    await load(false);
  } catch (error) {
    showError("error", error);
  }
}

async function load(announce = true) {
  try {
    const { items } = await api("/qa/clips");
    fillTable($("clips"), items.map(clipRow));
    if (announce) {
      $("library-status").textContent = items.length ? t("qa.library.count", { count: items.length }) : t("qa.library.none");
    }
    showError("error", null);
  } catch (error) {
    $("library-status").textContent = "";
    showError("error", error);
  }
}

$("delete-form").addEventListener("submit", confirmDelete);
$("delete-cancel").addEventListener("click", () => dialog.close());
load();
