// What the agent's pages and the disputes page share: a score in the page's language
// (Finnish decimal comma, Intl.NumberFormat) and an evaluation's status in words.
import { t } from "./pages.js";

const LOCALE = document.documentElement.lang === "fi" ? "fi-FI" : "en-GB";
const DECIMAL = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

// "83,3 %" in Finnish, "83.3 %" in English; "not scored" when nothing applied.
export const percent = (score) =>
  score === null || score === undefined ? t("qa.result.not_scored") : `${DECIMAL.format(score)} %`;

export const statusText = (status) => t(`qa.status.${status}`);
