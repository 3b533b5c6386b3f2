// The agent's own evaluations (/player/my): each with its call's date, queue, form,
// status, score and until when it may be disputed; a link opens one.
import { $, api, cellWith, element, fillTable, row, showError, t, when } from "./pages.js";
import { percent, statusText } from "./qa_agent.js";

function evaluationRow(evaluation) {
  const link = element("a", t("qa.my.open"));
  link.href = `/player/my/evaluations/${encodeURIComponent(evaluation.id)}`;
  link.setAttribute("aria-label", t("qa.my.open_label", { started: when(evaluation.started_at) }));
  const score = element("td", percent(evaluation.score), "score");
  const tr = row(
    when(evaluation.started_at),
    evaluation.queue,
    t("qa.my.form", { name: evaluation.form.name, version: evaluation.form.version }),
    statusText(evaluation.status),
    score,
    evaluation.dispute_until ? when(evaluation.dispute_until) : null,
    cellWith(link),
  );
  tr.dataset.evaluationId = evaluation.id;
  return tr;
}

async function load() {
  try {
    const { items } = await api("/qa/my/evaluations");
    fillTable($("evaluations"), items.map(evaluationRow));
    $("my-status").textContent = items.length ? t("qa.my.count", { count: items.length }) : t("qa.my.none");
  } catch (error) {
    $("my-status").textContent = "";
    showError("error", error);
  }
}

load();
