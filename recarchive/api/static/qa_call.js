// The QA call page's scorecard and clip cutting (/player/qa/calls/{id}); the player and
// its notes are player.js and player_notes.js. The scorecard: choose a form (its current
// version), answer, save a draft or submit; the archive computes the score and answers
// with it, shown as it came. An evaluation of this call already made opens for revision
// (each save is a new version of it). Once it exists, the trainer attaches notes of the
// call to it (their own or shared ones: the notes the page lists) and removes them.
import { $, api, clock, decimal, element, showError, t } from "./pages.js";

const recordingId = $("player").dataset.recordingId;
const audio = $("audio");
const state = { forms: [], version: null, evaluation: null, notes: [] };

function versionById(id) {
  for (const form of state.forms) {
    const version = form.versions.find((v) => v.id === id);
    if (version) return { form, version };
  }
  return null;
}

function questionLabel(question) {
  const label = element("span", question.text);
  if (question.critical) {
    label.append(" ", element("strong", t(`qa.score.critical.${question.critical}`), "critical"));
  }
  return label;
}

function radio(question, value, text, answer) {
  const label = element("label", null, "choice");
  const input = element("input");
  Object.assign(input, { type: "radio", name: question.id, value: String(value), checked: String(answer) === String(value) });
  label.append(input, ` ${text}`);
  return label;
}

// yes/no/n.a. and scales are radio groups in a fieldset; text is a labelled textarea.
function questionField(question, answer) {
  if (question.kind === "text") {
    const box = element("div", null, "question");
    const label = element("label");
    label.htmlFor = `q-${question.id}`;
    label.append(questionLabel(question));
    const area = element("textarea");
    Object.assign(area, { id: `q-${question.id}`, name: question.id, rows: 2, maxLength: 2000, value: answer ?? "" });
    box.append(label, area);
    return box;
  }
  const set = element("fieldset", null, "question");
  const legend = element("legend");
  legend.append(questionLabel(question));
  set.append(legend);
  if (question.kind === "yes_no_na") {
    for (const value of ["yes", "no", "na"]) set.append(radio(question, value, t(`qa.answer.${value}`), answer));
  } else {
    for (let value = question.min; value <= question.max; value += 1) set.append(radio(question, value, String(value), answer));
    if (question.allow_na) set.append(radio(question, "na", t("qa.answer.na"), answer));
  }
  return set;
}

function showQuestions(definition, answers = {}) {
  const sections = definition.sections.map((section) => {
    const part = element("section", null, "score-section");
    part.append(element("h3", section.title || section.id));
    part.append(...section.questions.map((q) => questionField(q, answers[q.id])));
    return part;
  });
  $("questions").replaceChildren(...sections);
  $("score-form").hidden = false;
}

function answersOf(definition) {
  const fields = $("score-form").elements;
  const answers = {};
  for (const section of definition.sections) {
    for (const question of section.questions) {
      const value = question.kind === "text" ? fields[question.id].value.trim() : fields[question.id].value;
      if (value === "" || value === undefined) continue;
      answers[question.id] = question.kind === "scale" && value !== "na" ? Number(value) : value;
    }
  }
  return answers;
}

// Scores as the page's language writes them ("50,0 %" in Finnish, "50.0 %" in English).
const percent = (score) => (score === null || score === undefined ? t("qa.result.not_scored") : `${decimal(score)} %`);

function showResult(evaluation) {
  const facts = $("result-facts");
  facts.replaceChildren();
  const add = (term, value, id) => {
    const dd = element("dd", value);
    if (id) dd.id = id;
    facts.append(element("dt", term), dd);
  };
  add(t("qa.result.score"), percent(evaluation.score), "result-score");
  add(t("qa.result.status"), t(`qa.status.${evaluation.status}`), "result-status");
  add(t("qa.result.version"), String(evaluation.version), "result-version");
  add(t("qa.result.form"), `${evaluation.form.name} v${evaluation.form.version}`);
  const failed = evaluation.critical_failed.length ? evaluation.critical_failed.join(", ") : t("qa.result.none");
  add(t("qa.result.critical"), failed, "result-critical");
  const titles = {};
  const found = versionById(evaluation.form.version_id);
  for (const section of found ? found.version.definition.sections : []) titles[section.id] = section.title || section.id;
  $("result-sections").tBodies[0].replaceChildren(
    ...Object.entries(evaluation.sections).map(([id, score]) => {
      const tr = element("tr");
      tr.append(element("td", titles[id] || id), element("td", percent(score)));
      tr.dataset.section = id;
      return tr;
    }),
  );
  $("result").hidden = false;
  showEvaluationNotes(evaluation.notes);
}

function chooseForm() {
  const form = state.forms.find((f) => f.id === $("form-select").value);
  if (!form) return;
  state.version = form.versions.find((v) => v.id === form.current_version_id);
  showQuestions(state.version.definition);
}

async function save(event) {
  event.preventDefault();
  const submit = event.submitter?.value === "submit";
  const answers = answersOf(state.version.definition);
  showError("score-error", null);
  for (const button of $("score-form").querySelectorAll("button")) button.disabled = true;
  try {
    const evaluation = state.evaluation
      ? await api(`/qa/evaluations/${encodeURIComponent(state.evaluation.id)}`, { method: "PUT", body: { answers, submit } })
      : await api("/qa/evaluations", {
          method: "POST",
          body: { recording_id: recordingId, form_version_id: state.version.id, answers, submit },
        });
    state.evaluation = evaluation;
    $("form-choice").hidden = true;
    $("score-status").textContent = t(submit ? "qa.score.submitted" : "qa.score.saved", { version: evaluation.version });
    showResult(evaluation);
  } catch (error) {
    showError("score-error", error);
  } finally {
    for (const button of $("score-form").querySelectorAll("button")) button.disabled = false;
  }
}

async function loadScorecard() {
  try {
    const [{ items: forms }, { items: evaluations }] = await Promise.all([
      api("/qa/forms"),
      api(`/qa/evaluations?recording_id=${encodeURIComponent(recordingId)}`),
    ]);
    state.forms = forms;
    const existing = evaluations[0];
    const found = existing && versionById(existing.form.version_id);
    if (found) {
      state.evaluation = existing;
      state.version = found.version;
      $("score-status").textContent = t("qa.score.existing", { version: existing.version, user: existing.updated_by });
      showQuestions(found.version.definition, existing.answers);
      showResult(existing);
      return;
    }
    if (!forms.length) {
      $("score-status").textContent = t("qa.score.no_forms");
      return;
    }
    $("form-select").replaceChildren(
      ...forms.map((form) => {
        const option = element("option", t("qa.score.form_option", { name: form.name, version: form.version }));
        option.value = form.id;
        return option;
      }),
    );
    $("form-choice").hidden = false;
    $("score-status").textContent = t("qa.score.new");
    chooseForm();
  } catch (error) {
    $("score-status").textContent = "";
    showError("error", error);
  }
}

// --- notes that belong to the evaluation ------------------------------------------------

function evaluationNoteEntry(note) {
  const item = element("li");
  item.dataset.noteId = note.note_id;
  const at = clock(note.offset_ms);
  const remove = element("button", t("qa.evnotes.remove"));
  remove.type = "button";
  remove.setAttribute("aria-label", t("qa.evnotes.remove_label", { at }));
  remove.addEventListener("click", () => detachNote(note));
  item.append(
    element("span", at, "note-at"),
    " ",
    element("span", note.text, "note-text"),
    element("span", t("qa.evnotes.by", { user: note.author }), "note-meta hint"),
    " ",
    remove,
  );
  return item;
}

// The evaluation's notes, and a checkbox for each note of the call the trainer may attach.
function showEvaluationNotes(notes) {
  state.evaluation.notes = notes;
  $("evaluation-notes-list").replaceChildren(...notes.map(evaluationNoteEntry));
  $("evaluation-notes-status").textContent = notes.length
    ? t("qa.evnotes.count", { count: notes.length })
    : t("qa.evnotes.none");
  showAttachable();
}

function showAttachable() {
  if (!state.evaluation) return;
  const attached = new Set(state.evaluation.notes.map((note) => note.note_id));
  const choices = state.notes.map((note) => {
    const label = element("label", null, "choice");
    const box = element("input");
    Object.assign(box, { type: "checkbox", name: "note", value: note.id });
    const again = attached.has(note.id) ? ` (${t("qa.evnotes.attached_already")})` : "";
    label.append(box, ` ${clock(note.offset_ms)} ${note.text}${again}`);
    return label;
  });
  $("attach-choices").replaceChildren(...choices);
  $("attach-form").hidden = choices.length === 0;
}

async function changeNotes(request) {
  showError("evaluation-notes-error", null);
  try {
    const { items } = await request();
    showEvaluationNotes(items);
    return true;
  } catch (error) {
    showError("evaluation-notes-error", error);
    return false;
  }
}

async function attachNotes(event) {
  event.preventDefault();
  const noteIds = [...$("attach-choices").querySelectorAll("input:checked")].map((box) => box.value);
  if (!noteIds.length) {
    showError("evaluation-notes-error", t("qa.evnotes.choose_first"));
    return;
  }
  const path = `/qa/evaluations/${encodeURIComponent(state.evaluation.id)}/notes`;
  $("attach-notes").disabled = true;
  if (await changeNotes(() => api(path, { method: "POST", body: { note_ids: noteIds } }))) {
    $("evaluation-notes-status").textContent = t("qa.evnotes.attached", { count: noteIds.length });
  }
  $("attach-notes").disabled = false;
}

async function detachNote(note) {
  const evaluation = encodeURIComponent(state.evaluation.id);
  const path = `/qa/evaluations/${evaluation}/notes/${encodeURIComponent(note.note_id)}`;
  if (await changeNotes(() => api(path, { method: "DELETE" }))) {
    $("evaluation-notes-status").textContent = t("qa.evnotes.removed", { at: clock(note.offset_ms) });
    $("evaluation-notes-title").focus();
  }
}

// --- clips ---------------------------------------------------------------------------

const position = () => Math.round(audio.currentTime * 10) / 10;

async function cutClip(event) {
  event.preventDefault();
  const fields = event.target.elements;
  const body = {
    recording_id: recordingId,
    start_ms: Math.round(Number(fields.start.value) * 1000),
    end_ms: Math.round(Number(fields.end.value) * 1000),
    title: fields.title.value.trim(),
    purpose: fields.purpose.value.trim(),
    agent_only: fields.agent_only.checked,
  };
  if (!body.title || !body.purpose) {
    showError("clip-error", t("qa.clip.missing"));
    return;
  }
  showError("clip-error", null);
  $("clip-status").textContent = t("qa.clip.cutting");
  try {
    const clip = await api("/qa/clips", { method: "POST", body });
    $("clip-status").textContent = t("qa.clip.done", { title: clip.title });
    fields.title.value = "";
    fields.purpose.value = "";
  } catch (error) {
    $("clip-status").textContent = "";
    showError("clip-error", error);
  }
}

$("clip-start-now").addEventListener("click", () => ($("clip-start").value = String(position())));
$("clip-end-now").addEventListener("click", () => ($("clip-end").value = String(position())));
$("clip-form").addEventListener("submit", cutClip);
$("form-select").addEventListener("change", chooseForm);
$("form-choice").addEventListener("submit", (event) => event.preventDefault());
$("score-form").addEventListener("submit", save);
$("attach-form").addEventListener("submit", attachNotes);
document.addEventListener("recarchive:notes", (event) => {
  state.notes = event.detail;
  showAttachable();
});
loadScorecard();
