// The QA call page's scorecard and clip cutting (/player/qa/calls/{id}); the player and
// its notes are player.js and player_notes.js. The scorecard: choose a form (its current
// version), answer, save a draft or submit; the archive computes the score and answers
// with it, shown as it came. An evaluation of this call already made opens for revision
// (each save is a new version of it).
import { $, api, element, showError, t } from "./pages.js";

const recordingId = $("player").dataset.recordingId;
const audio = $("audio");
const state = { forms: [], version: null, evaluation: null };

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

const percent = (score) => (score === null || score === undefined ? t("qa.result.not_scored") : `${score.toFixed(1)} %`);

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
loadScorecard();
