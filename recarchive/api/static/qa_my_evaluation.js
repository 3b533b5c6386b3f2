// One of the agent's evaluations (/player/my/evaluations/{id}): the answers beside the
// form's questions by section, the scores the archive computed, the trainer's notes,
// what has been said since, the call (played for self_review), and acknowledging or
// disputing it (once, confirmed, while the API says it may be: `dispute_until`).
import { $, api, clock, element, showError, t, when } from "./pages.js";
import { percent, statusText } from "./qa_agent.js";

const evaluationId = $("evaluation").dataset.evaluationId;
const audio = $("audio");
const dialog = $("dispute-dialog");
const state = { evaluation: null, probed: false };

function answerText(question, answer) {
  if (answer === undefined || answer === null || answer === "") return t("qa.my.no_answer");
  if (answer === "yes" || answer === "no" || answer === "na") return t(`qa.answer.${answer}`);
  if (question.kind === "scale") return t("qa.my.scale", { value: answer, max: question.max });
  return String(answer);
}

function questionEntry(question, answers, failed) {
  const term = element("dt", question.text);
  if (question.critical) term.append(" ", element("strong", t(`qa.score.critical.${question.critical}`), "critical"));
  const value = element("dd", answerText(question, answers[question.id]));
  value.dataset.question = question.id;
  if (failed.includes(question.id)) value.append(" ", element("strong", t("qa.my.critical_failed"), "critical"));
  return [term, value];
}

function showAnswers(evaluation) {
  const definition = evaluation.form_definition || { sections: [] };
  const failed = evaluation.critical_failed;
  $("answers").replaceChildren(
    ...definition.sections.map((section) => {
      const part = element("section", null, "score-section");
      part.dataset.section = section.id;
      part.append(element("h3", section.title || section.id));
      part.append(element("p", t("qa.my.section_score", { score: percent(evaluation.sections[section.id]) }), "hint"));
      const list = element("dl", null, "facts");
      for (const question of section.questions) list.append(...questionEntry(question, evaluation.answers, failed));
      part.append(list);
      return part;
    }),
  );
}

function showFacts(evaluation) {
  const facts = $("evaluation-facts");
  facts.replaceChildren();
  const add = (term, value, id) => {
    const dd = element("dd", value);
    dd.id = id;
    facts.append(element("dt", term), dd);
  };
  add(t("qa.my.col.call"), when(evaluation.started_at), "fact-call");
  add(t("qa.my.col.queue"), evaluation.queue || t("facts.none"), "fact-queue");
  add(t("qa.result.score"), percent(evaluation.score), "fact-score");
  add(t("qa.result.status"), statusText(evaluation.status), "fact-status");
  add(t("qa.result.form"), t("qa.my.form", { name: evaluation.form.name, version: evaluation.form.version }), "fact-form");
  add(t("qa.result.version"), String(evaluation.version), "fact-version");
  const failed = evaluation.critical_failed.length ? String(evaluation.critical_failed.length) : t("qa.result.none");
  add(t("qa.result.critical"), failed, "fact-critical");
  add(t("qa.my.col.until"), evaluation.dispute_until ? when(evaluation.dispute_until) : t("facts.none"), "fact-until");
  facts.hidden = false;
}

function entry(heading, meta, text) {
  const item = element("li");
  item.append(element("p", heading, "note-meta"));
  if (text) item.append(element("p", text, "note-text"));
  item.append(element("p", meta, "hint"));
  return item;
}

function showNotes(evaluation) {
  const items = evaluation.notes.map((note) =>
    entry(t("qa.my.note_at", { at: clock(note.offset_ms) }), t("qa.my.by", { user: note.author }), note.text),
  );
  $("notes-list").replaceChildren(...items);
  $("notes-status").textContent = items.length ? t("qa.my.notes.count", { count: items.length }) : t("qa.my.notes.none");
}

function showResponses(evaluation) {
  const items = evaluation.responses.map((response) => {
    const item = entry(
      t(`qa.my.response.${response.kind}`, { version: response.version }),
      t("qa.my.by_at", { user: response.by, at: when(response.at) }),
      response.comment,
    );
    item.dataset.kind = response.kind;
    return item;
  });
  $("responses-list").replaceChildren(...items);
  $("responses-status").hidden = items.length > 0;
}

function showActions(evaluation) {
  const acknowledge = evaluation.status === "submitted" || evaluation.status === "dispute_answered";
  const open = evaluation.status === "submitted" && evaluation.dispute_until && new Date(evaluation.dispute_until) > new Date();
  $("acknowledge").hidden = !acknowledge;
  $("respond").hidden = !acknowledge;
  $("dispute-form").hidden = !open;
}

function show(evaluation) {
  state.evaluation = evaluation;
  $("evaluation-status").textContent = "";
  showFacts(evaluation);
  showAnswers(evaluation);
  showNotes(evaluation);
  showResponses(evaluation);
  showActions(evaluation);
  if (!audio.src) {
    audio.src = `/api/v1/recordings/${encodeURIComponent(evaluation.recording_id)}/audio?purpose=self_review`;
    audio.hidden = false;
  }
}

// The <audio> element does not say why it failed: one small request asks the API.
async function audioFailed() {
  if (state.probed) return;
  state.probed = true;
  let gone = false;
  try {
    const answer = await fetch(audio.src, { headers: { Range: "bytes=0-0" }, credentials: "same-origin" });
    gone = answer.status === 404 || answer.status === 410;
  } catch (_) {
    gone = false;
  }
  $("audio-status").textContent = t(gone ? "qa.my.audio.gone" : "qa.my.audio.error");
  if (gone) audio.hidden = true;
}

async function respond(path, body, done) {
  showError("respond-error", null);
  for (const node of document.querySelectorAll("#respond button, #dispute-form button")) node.disabled = true;
  try {
    const evaluation = await api(`/qa/my/evaluations/${encodeURIComponent(evaluationId)}/${path}`, { method: "POST", body });
    show({ ...evaluation, form_definition: evaluation.form_definition || state.evaluation.form_definition });
    $("respond-status").textContent = t(done, { version: evaluation.version });
    return true;
  } catch (error) {
    showError("respond-error", error);
    return false;
  } finally {
    for (const node of document.querySelectorAll("#respond button, #dispute-form button")) node.disabled = false;
  }
}

function askDispute(event) {
  event.preventDefault();
  if (!$("dispute-text").value.trim()) {
    showError("respond-error", t("qa.my.dispute.empty"));
    $("dispute-text").focus();
    return;
  }
  showError("respond-error", null);
  dialog.showModal();
}

async function confirmDispute(event) {
  event.preventDefault();
  dialog.close();
  const comment = $("dispute-text").value.trim();
  if (await respond("dispute", { comment }, "qa.my.disputed")) $("dispute-text").value = "";
}

async function load() {
  try {
    show(await api(`/qa/my/evaluations/${encodeURIComponent(evaluationId)}`));
  } catch (error) {
    $("evaluation-status").textContent = "";
    showError("error", error);
  }
}

audio.addEventListener("error", audioFailed);
$("acknowledge").addEventListener("click", () => respond("acknowledge", undefined, "qa.my.acknowledged"));
$("dispute-form").addEventListener("submit", askDispute);
$("dispute-confirm").addEventListener("submit", confirmDispute);
$("dispute-cancel").addEventListener("click", () => dialog.close());
load();
