// The disputed evaluations (/player/qa/disputes), for QA trainers: each with its call
// (a link to the call page), score, the agent's comment, and a form to answer it.
import { $, api, element, showError, t, when } from "./pages.js";
import { percent } from "./qa_agent.js";

function disputeOf(evaluation) {
  const disputes = evaluation.responses.filter((r) => r.kind === "dispute");
  return disputes[disputes.length - 1];
}

function answerForm(evaluation) {
  const form = element("form", null, "answer-form");
  form.noValidate = true;
  const id = `answer-${evaluation.id}`;
  const label = element("label", t("qa.disputes.answer_label"));
  label.htmlFor = id;
  const area = element("textarea");
  Object.assign(area, { id, name: "comment", rows: 3, maxLength: 2000, required: true });
  const error = element("p", null, "error");
  error.id = `${id}-error`;
  error.setAttribute("role", "alert");
  error.hidden = true;
  const send = element("button", t("qa.disputes.answer"));
  send.type = "submit";
  const actions = element("div", null, "actions");
  actions.append(send);
  form.append(label, area, error, actions);
  form.addEventListener("submit", (event) => answer(event, evaluation, area, error.id));
  return form;
}

function disputeItem(evaluation) {
  const item = element("li");
  item.dataset.evaluationId = evaluation.id;
  const link = element("a", t("qa.disputes.open_call"));
  link.href = `/player/qa/calls/${encodeURIComponent(evaluation.recording_id)}`;
  const call = element("p", t("qa.disputes.call", { started: when(evaluation.started_at), agent: evaluation.agent, queue: evaluation.queue }), "note-meta");
  call.append(" · ", link);
  const dispute = disputeOf(evaluation);
  item.append(
    call,
    element("p", t("qa.disputes.score", { score: percent(evaluation.score), version: evaluation.version }), "hint"),
    element("p", t("qa.disputes.comment", { user: dispute ? dispute.by : "", at: dispute ? when(dispute.at) : "" }), "hint"),
    element("p", dispute ? dispute.comment : t("facts.none"), "note-text dispute-comment"),
    answerForm(evaluation),
  );
  return item;
}

async function answer(event, evaluation, area, errorId) {
  event.preventDefault();
  const comment = area.value.trim();
  if (!comment) {
    showError(errorId, t("qa.disputes.empty"));
    area.focus();
    return;
  }
  showError(errorId, null);
  try {
    await api(`/qa/evaluations/${encodeURIComponent(evaluation.id)}/answer`, { method: "POST", body: { comment } });
    await load(false);
    $("disputes-status").textContent = t("qa.disputes.answered");
  } catch (error) {
    showError(errorId, error);
  }
}

async function load(announce = true) {
  try {
    const { items } = await api("/qa/evaluations?status=disputed");
    $("disputes").replaceChildren(...items.map(disputeItem));
    if (announce) {
      $("disputes-status").textContent = items.length ? t("qa.disputes.count", { count: items.length }) : t("qa.disputes.none");
    }
    showError("error", null);
  } catch (error) {
    $("disputes-status").textContent = "";
    showError("error", error);
  }
}

load();
