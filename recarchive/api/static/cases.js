// The list of dispute cases and the form that opens one (/player/cases).
import { $, api, cellWith, element, fillTable, row, showError, t, when } from "./pages.js";

function caseRow(item) {
  const link = element("a", item.reference);
  link.href = `/player/cases/${encodeURIComponent(item.id)}`;
  return row(
    cellWith(link),
    t(`kind.${item.kind}`),
    t(`status.${item.status}`),
    item.customer_id,
    item.document_ref,
    item.handler,
    when(item.opened_at),
    String(item.recordings),
  );
}

const chosenStatus = () => document.querySelector('input[name="status"]:checked')?.value || "open";

async function load() {
  const status = chosenStatus();
  $("status").textContent = t("cases.loading");
  try {
    const { cases } = await api(`/cases?status=${encodeURIComponent(status)}`);
    fillTable($("cases"), cases.map(caseRow));
    $("status").textContent =
      cases.length === 0 ? t("cases.none") : cases.length === 1 ? t("cases.count.one") : t("cases.count.other", { count: cases.length });
    showError("error", null);
  } catch (error) {
    $("status").textContent = "";
    showError("error", error);
  }
}

function filterChanged() {
  const url = new URL(window.location.href);
  url.searchParams.set("status", chosenStatus());
  window.history.replaceState(null, "", url);
  load();
}

async function openCase(event) {
  event.preventDefault();
  const form = event.target;
  const body = { reference: form.elements.reference.value.trim(), kind: form.elements.kind.value };
  for (const name of ["customer_id", "document_ref"]) {
    const value = form.elements[name].value.trim();
    if (value) body[name] = value;
  }
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  showError("new-error", null);
  try {
    const opened = await api("/cases", { method: "POST", body });
    window.location.assign(`/player/cases/${encodeURIComponent(opened.id)}`);
  } catch (error) {
    showError("new-error", error);
    submit.disabled = false;
  }
}

for (const radio of document.querySelectorAll('input[name="status"]')) radio.addEventListener("change", filterChanged);
$("new-case").addEventListener("submit", openCase);
load();
