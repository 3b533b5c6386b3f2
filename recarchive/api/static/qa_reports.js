// The QA reports (/player/qa/reports): for a range of weeks or months (by default the
// last six finished ones), optionally one agent and one queue, a table per agent with a
// row per period, the sections' averages in a disclosure under it, and the two CSVs of
// the same report to download. Everything comes from GET /api/v1/qa/reports as it is
// (the archive counts, averages and audits); numbers are written in the page's language.
import { $, api, decimal, element, fillTable, row, showError, t } from "./pages.js";

const form = $("report-form");
const defaults = form.dataset;

// The form's filters as the API's query (empty fields left out).
function query(extra = {}) {
  const fields = form.elements;
  const params = new URLSearchParams({ period: fields.period.value });
  for (const name of ["from", "to", "agent", "queue"]) {
    const value = fields[name].value.trim();
    if (value) params.set(name, value);
  }
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params.toString();
}

const count = (value) => (value === null || value === undefined ? t("facts.none") : String(value));

// The change from the period before: an arrow for the eye, and words for everyone.
function trendCell(delta) {
  const td = element("td", null, "trend");
  if (delta === null || delta === undefined) {
    td.textContent = t("facts.none");
    return td;
  }
  const way = delta > 0 ? "up" : delta < 0 ? "down" : "same";
  const arrow = element("span", { up: "▲", down: "▼", same: "▶" }[way], `arrow ${way}`);
  arrow.setAttribute("aria-hidden", "true");
  td.append(arrow, " ", t(`qa.reports.trend.${way}`, { delta: decimal(delta, true) }));
  td.dataset.trend = way;
  return td;
}

function table(caption, headings, rows) {
  const node = element("table");
  node.append(element("caption", caption));
  const head = element("tr");
  head.append(
    ...headings.map((text) => {
      const th = element("th", text);
      th.scope = "col";
      return th;
    }),
  );
  node.append(element("thead"), element("tbody"));
  node.tHead.append(head);
  fillTable(node, rows);
  node.hidden = false;
  return node;
}

function periodRow(figures) {
  const tr = row(
    figures.period,
    count(figures.picked),
    count(figures.withdrawn),
    String(figures.evaluations),
    decimal(figures.average),
    decimal(figures.min),
    decimal(figures.max),
    String(figures.critical_failures),
    trendCell(figures.delta),
  );
  tr.firstChild.replaceWith(Object.assign(element("th", figures.period), { scope: "row" }));
  tr.dataset.period = figures.period;
  return tr;
}

function sectionRows(agent) {
  const rows = [];
  for (const figures of agent.periods) {
    for (const section of figures.sections) {
      const tr = row(figures.period, section.form, section.title || section.section_id, String(section.evaluations), decimal(section.average));
      Object.assign(tr.dataset, { period: figures.period, section: section.section_id });
      rows.push(tr);
    }
  }
  return rows;
}

function agentPart(agent) {
  const name = agent.agent ?? t("qa.reports.no_agent");
  const part = element("section", null, "card report-agent");
  part.dataset.agent = agent.agent ?? "";
  part.append(element("h2", name));
  const periods = table(t("qa.reports.periods_caption", { agent: name }), [
    t("qa.reports.col.period"), t("qa.reports.col.picked"), t("qa.reports.col.withdrawn"),
    t("qa.reports.col.evaluations"), t("qa.reports.col.average"), t("qa.reports.col.min"),
    t("qa.reports.col.max"), t("qa.reports.col.critical"), t("qa.reports.col.trend"),
  ], agent.periods.map(periodRow));
  periods.className = "report-periods";
  const details = element("details", null, "report-sections");
  details.append(element("summary", t("qa.reports.sections", { agent: name })));
  const rows = sectionRows(agent);
  if (rows.length) {
    details.append(table(t("qa.reports.sections_caption", { agent: name }), [
      t("qa.reports.col.period"), t("qa.reports.col.form"), t("qa.reports.col.section"),
      t("qa.reports.col.evaluations"), t("qa.reports.col.average"),
    ], rows));
  } else {
    details.append(element("p", t("qa.reports.no_sections"), "hint"));
  }
  part.append(periods, details);
  return part;
}

async function show(event) {
  event?.preventDefault();
  // The downloads carry the filters of the report shown, whatever is typed meanwhile.
  const [filters, agentsCsv, sectionsCsv] = [query(), query({ table: "agents" }), query({ table: "sections" })];
  showError("report-error", null);
  $("report-status").textContent = t("qa.loading");
  $("report-show").disabled = true;
  try {
    const report = await api(`/qa/reports?${filters}`);
    $("report-agents").replaceChildren(...report.agents.map(agentPart));
    $("csv-agents").href = `/api/v1/qa/reports.csv?${agentsCsv}`;
    $("csv-sections").href = `/api/v1/qa/reports.csv?${sectionsCsv}`;
    $("report-downloads").hidden = false;
    const range = { from: report.from, to: report.to, count: report.agents.length };
    $("report-status").textContent = report.agents.length ? t("qa.reports.shown", range) : t("qa.reports.none", range);
  } catch (error) {
    $("report-status").textContent = "";
    $("report-downloads").hidden = true;
    showError("report-error", error);
  } finally {
    $("report-show").disabled = false;
  }
}

// Switching weeks and months puts that kind's default range in the fields.
function chooseKind() {
  const kind = form.elements.period.value;
  form.elements.from.value = defaults[`${kind}From`];
  form.elements.to.value = defaults[`${kind}To`];
}

form.addEventListener("submit", show);
form.elements.period.addEventListener("change", chooseKind);
show();
