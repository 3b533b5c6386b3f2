// The scorecard forms (/player/qa/forms), read only: each form's versions, each version's
// sections and questions in a disclosure (<details>, opened from the keyboard too).
import { $, api, element, showError, t, when } from "./pages.js";

function questionItem(question) {
  const item = element("li", question.text);
  const facts = [t(`qa.kind.${question.kind}`)];
  if (question.kind === "scale") facts.push(`${question.min}–${question.max}`);
  if (question.kind !== "text") facts.push(t("qa.forms.weight", { weight: question.weight ?? 1 }));
  if (question.critical) facts.push(t(`qa.score.critical.${question.critical}`));
  item.append(" ", element("span", `(${facts.join(", ")})`, "hint"));
  return item;
}

function versionDetails(form, version) {
  const details = element("details");
  const current = version.version === form.version ? ` · ${t("qa.forms.current")}` : "";
  details.append(element("summary", t("qa.forms.version", { version: version.version, at: when(version.created_at), user: version.created_by }) + current));
  for (const section of version.definition.sections) {
    details.append(element("h4", section.title || section.id));
    const list = element("ol");
    list.append(...section.questions.map(questionItem));
    details.append(list);
  }
  return details;
}

async function load() {
  try {
    const { items } = await api("/qa/forms");
    $("forms").replaceChildren(
      ...items.map((form) => {
        const part = element("section", null, "form-entry");
        part.append(element("h2", form.name));
        part.append(...form.versions.map((version) => versionDetails(form, version)));
        return part;
      }),
    );
    $("forms-status").textContent = items.length ? t("qa.forms.count", { count: items.length }) : t("qa.forms.none");
  } catch (error) {
    $("forms-status").textContent = "";
    showError("error", error);
  }
}

load();
