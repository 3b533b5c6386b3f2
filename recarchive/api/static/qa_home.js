// The QA home (/player/qa): sampling plans (list, create) and a period's sample, drawn here
// or the stored one shown (drawing again returns the stored draw), each pick linked to its
// call page with whether it has an evaluation yet.
import { $, api, cellWith, clock, element, fillTable, row, showError, t, when } from "./pages.js";

const state = { plans: [] };
const form = $("sample-form");

const listOf = (text) => text.split(/[,\n]/).map((v) => v.trim()).filter(Boolean);

function filters(criteria) {
  const parts = [];
  if (criteria.queues.length) parts.push(t("qa.filter.queues", { values: criteria.queues.join(", ") }));
  if (criteria.reason_codes.length) parts.push(t("qa.filter.reasons", { values: criteria.reason_codes.join(", ") }));
  if (criteria.direction) parts.push(t(`qa.direction.${criteria.direction}`));
  if (criteria.min_duration_s !== null) parts.push(t("qa.filter.min", { seconds: criteria.min_duration_s }));
  if (criteria.max_duration_s !== null) parts.push(t("qa.filter.max", { seconds: criteria.max_duration_s }));
  return parts.join("; ") || t("qa.filter.none");
}

function planRow(plan) {
  return row(
    plan.name,
    String(plan.version),
    String(plan.criteria.calls_per_agent),
    t(`qa.period.${plan.criteria.period_kind}`),
    filters(plan.criteria),
  );
}

const chosenPlan = () => state.plans.find((plan) => plan.id === $("sample-plan").value);

// The period field follows the plan: an ISO week or a month, the last finished one by default.
function periodFollowsPlan() {
  const plan = chosenPlan();
  const kind = plan ? plan.criteria.period_kind : "week";
  const input = $("sample-period");
  input.value = kind === "month" ? form.dataset.lastMonth : form.dataset.lastWeek;
  input.placeholder = kind === "month" ? "2026-11" : "2026-W49";
  $("sample-period-label").textContent = t(`qa.sample.period_${kind}`);
}

async function loadPlans(selected) {
  try {
    const { items } = await api("/qa/plans");
    state.plans = items;
    fillTable($("plans"), items.map(planRow));
    $("plans-status").textContent = items.length ? t("qa.plans.count", { count: items.length }) : t("qa.plans.none");
    const select = $("sample-plan");
    select.replaceChildren(
      ...items.map((plan) => {
        const option = element("option", plan.name);
        option.value = plan.id;
        return option;
      }),
    );
    if (selected) select.value = selected;
    $("sample-draw").disabled = items.length === 0;
    periodFollowsPlan();
  } catch (error) {
    $("plans-status").textContent = "";
    showError("error", error);
  }
}

async function createPlan(event) {
  event.preventDefault();
  const fields = event.target.elements;
  const body = {
    name: fields.name.value.trim(),
    calls_per_agent: Number(fields.calls_per_agent.value),
    period_kind: fields.period_kind.value,
    queues: listOf(fields.queues.value),
    reason_codes: listOf(fields.reason_codes.value),
  };
  if (fields.direction.value) body.direction = fields.direction.value;
  for (const name of ["min_duration_s", "max_duration_s"]) {
    if (fields[name].value !== "") body[name] = Number(fields[name].value);
  }
  showError("new-plan-error", null);
  try {
    const plan = await api("/qa/plans", { method: "POST", body });
    event.target.reset();
    await loadPlans(plan.id);
    $("sample-status").textContent = t("qa.plan.created", { name: plan.name });
  } catch (error) {
    showError("new-plan-error", error);
  }
}

function fact(list, term, value) {
  list.append(element("dt", term), element("dd", value));
}

// Which picks have an evaluation: one request per agent of the sample.
async function evaluatedCalls(agents) {
  const done = new Set();
  for (const agent of agents) {
    const { items } = await api(`/qa/evaluations?agent=${encodeURIComponent(agent)}`);
    for (const evaluation of items) done.add(evaluation.recording_id);
  }
  return done;
}

function pickRow(pick, evaluated) {
  const link = element("a", t("qa.sample.evaluate"));
  link.href = `/player/qa/calls/${encodeURIComponent(pick.id)}`;
  link.setAttribute("aria-label", t("qa.sample.evaluate_label", { agent: pick.agent || "", started: when(pick.started_at) }));
  const status = evaluated.has(pick.id) ? t("qa.sample.evaluated") : t("qa.sample.not_evaluated");
  const tr = row(pick.agent, pick.queue, when(pick.started_at), clock(pick.duration_s * 1000), status, cellWith(link));
  tr.dataset.recordingId = pick.id;
  return tr;
}

function showSample(sample, evaluated) {
  const facts = $("sample-facts");
  facts.replaceChildren();
  fact(facts, t("qa.sample.period"), sample.period);
  fact(facts, t("qa.sample.plan_version"), String(sample.plan_version));
  fact(facts, t("qa.sample.drawn"), t("qa.sample.drawn_by", { at: when(sample.drawn_at), user: sample.drawn_by }));
  fact(facts, t("qa.sample.candidates"), String(sample.candidates));
  fact(facts, t("qa.sample.picked"), String(sample.picked));
  fact(facts, t("qa.sample.withdrawn"), String(sample.withdrawn));
  fact(facts, t("qa.sample.seed"), sample.seed);
  facts.hidden = false;
  const agents = sample.agents.map((a) => row(a.agent, String(a.candidates), String(a.picked), String(a.withdrawn)));
  fillTable($("sample-agents"), agents);
  const withdrawn = $("sample-withdrawn");
  withdrawn.textContent = t("qa.sample.withdrawn_note", { count: sample.withdrawn });
  withdrawn.hidden = sample.withdrawn === 0;
  fillTable($("picks"), sample.recordings.map((pick) => pickRow(pick, evaluated)));
  $("sample-status").textContent = sample.already_drawn
    ? t("qa.sample.stored", { period: sample.period, count: sample.recordings.length })
    : t("qa.sample.new", { period: sample.period, count: sample.recordings.length });
}

async function drawSample(event) {
  event.preventDefault();
  const plan = chosenPlan();
  if (!plan) return;
  const period = $("sample-period").value.trim();
  const button = $("sample-draw");
  button.disabled = true;
  $("sample-status").textContent = t("qa.loading");
  showError("error", null);
  try {
    const sample = await api(`/qa/plans/${encodeURIComponent(plan.id)}/samples`, { method: "POST", body: { period } });
    const agents = [...new Set(sample.recordings.map((pick) => pick.agent).filter(Boolean))];
    showSample(sample, await evaluatedCalls(agents));
  } catch (error) {
    $("sample-status").textContent = "";
    showError("error", error);
  } finally {
    button.disabled = false;
  }
}

$("sample-plan").addEventListener("change", periodFollowsPlan);
form.addEventListener("submit", drawSample);
$("new-plan").addEventListener("submit", createPlan);
loadPlans();
