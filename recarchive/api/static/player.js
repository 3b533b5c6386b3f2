// The recarchive web player: search, ask why, then stream with Range requests.
// Talks only to /api/v1 with the sign-in cookie; the API decides what may be seen
// and played, and audits every request. No framework, no inline script (CSP).
// The QA call page (/player/qa/calls/{id}) uses the same player without search: its
// #player names the recording (data-recording-id), played for training, and the page
// carries its language's messages (a JSON data block); the search page speaks English.
"use strict";

(() => {
  const API = "/api/v1";
  const MESSAGES = JSON.parse(document.getElementById("messages")?.textContent || "{}");
  // The page's text for `key`, else the English `fallback`; {names} filled from `values`.
  const t = (key, fallback, values = {}) =>
    (MESSAGES[key] ?? fallback).replace(/\{([a-z_]+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  const CASE_PURPOSES = new Set(["dispute", "data_subject_request"]);
  const PURPOSE_LABELS = {
    training: t("qa.player.training", "Training and quality"),
    dispute: "Billing or contract dispute",
    data_subject_request: "Data-subject request",
  };
  const ERROR_PREFIXES = {
    403: t("error.403", "Not allowed"),
    404: t("error.404", "Not found"),
    410: t("error.410", "Deleted"),
    416: t("qa.player.error_416", "Cannot seek there"),
    422: t("error.422", "Check the input"),
    503: t("error.503", "Temporarily unavailable"),
  };
  const SKIP_S = 10;

  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  const dialog = $("purpose-dialog");
  const caseInput = $("case-ref");
  const state = {
    me: null, query: null, cursor: null, pending: null, item: null, graph: null, seeking: false,
    purpose: null, caseRef: "",
  };

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function errorOf(response) {
    let code = "http_error";
    let message = `the server answered ${response.status}`;
    try {
      const body = await response.json();
      if (body && body.error) ({ code, message } = body.error);
    } catch (_) {
      // not JSON: keep the status line
    }
    return new ApiError(response.status, code, message);
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    if (response.status === 401) {
      window.location.assign("/");
      throw new ApiError(401, "unauthenticated", "your sign-in has ended; sign in again");
    }
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  function showError(error) {
    const box = $("error");
    const prefix = error && ERROR_PREFIXES[error.status];
    box.textContent = error ? (prefix ? `${prefix}: ${error.message}` : error.message) : "";
    box.hidden = !error;
  }

  function clock(seconds) {
    const total = Number.isFinite(seconds) ? Math.max(0, Math.floor(seconds)) : 0;
    const s = String(total % 60).padStart(2, "0");
    const m = Math.floor(total / 60);
    return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  const LOCALE = { fi: "fi-FI", en: "en-GB" }[document.documentElement.lang] || undefined;
  const localTime = (iso) =>
    new Date(iso).toLocaleString(LOCALE, { dateStyle: "medium", timeStyle: "short" });

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function badges(codes, container, className = "badge") {
    container.replaceChildren(...codes.map((code) => element("li", code, className)));
    return container;
  }

  // --- search -------------------------------------------------------------------

  function searchParams(form) {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      const text = String(value).trim();
      // Sent as typed: "from" is inclusive and "to" exclusive, in the form as in the API.
      if (text) params.append(name, text);
    }
    return params;
  }

  function resultRow(item) {
    const row = document.createElement("tr");
    const flags = [item.held && "held", item.restricted && "restricted", item.objected && "objected"];
    row.append(
      element("td", localTime(item.started_at)),
      element("td", clock(item.duration_s)),
      element("td", item.direction),
      element("td", item.agent || "–"),
      element("td", item.queue || "–"),
    );
    for (const [codes, className] of [[item.reasons, "badge"], [flags.filter(Boolean), "badge flag"]]) {
      const cell = element("td");
      cell.append(badges(codes, element("ul", null, "badges"), className));
      row.append(cell);
    }
    if (item.customer) {
      row.append(element("td", item.customer.customer_id || item.customer.match));
    }
    const listen = element("button", "Listen");
    listen.type = "button";
    listen.setAttribute("aria-label", `Listen to the call of ${localTime(item.started_at)}`);
    listen.addEventListener("click", () => askPurpose(item));
    const cell = element("td");
    cell.append(listen);
    row.append(cell);
    return row;
  }

  async function loadPage() {
    const params = new URLSearchParams(state.query);
    if (state.cursor) params.set("cursor", state.cursor);
    try {
      const page = await getJson(`${API}/recordings?${params}`);
      const body = $("results").tBodies[0];
      body.append(...page.items.map(resultRow));
      state.cursor = page.next_cursor;
      const shown = body.rows.length;
      $("results").hidden = shown === 0;
      $("more").hidden = !state.cursor;
      $("status").textContent = shown ? `${shown} recording${shown === 1 ? "" : "s"} shown.` : "No recordings match.";
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  function search(event) {
    event.preventDefault();
    state.query = searchParams(event.target);
    state.cursor = null;
    $("results").tBodies[0].replaceChildren();
    $("status").textContent = "Searching…";
    loadPage();
  }

  // --- purpose ------------------------------------------------------------------

  function purposeOptions(purposes) {
    const box = $("purpose-options");
    if (!purposes.length) {
      box.replaceChildren(element("p", "Your role may not play recordings."));
      $("purpose-play").disabled = true;
      return;
    }
    box.replaceChildren(
      ...purposes.map((purpose, index) => {
        const label = element("label", null, "choice");
        const input = element("input");
        Object.assign(input, { type: "radio", name: "purpose", value: purpose, checked: index === 0 });
        input.addEventListener("change", caseRequirement);
        label.append(input, ` ${PURPOSE_LABELS[purpose] || purpose}`);
        return label;
      }),
    );
  }

  const chosenPurpose = () => $("purpose-form").elements.purpose?.value || "";

  function caseRequirement() {
    const required = CASE_PURPOSES.has(chosenPurpose());
    caseInput.required = required;
    caseInput.setAttribute("aria-required", String(required));
  }

  function purposeError(message) {
    const box = $("purpose-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function askPurpose(item) {
    state.pending = item;
    $("purpose-call").textContent = `Call of ${localTime(item.started_at)}, ${clock(item.duration_s)}`;
    purposeError(null);
    caseRequirement();
    dialog.showModal();
  }

  function confirmPurpose(event) {
    event.preventDefault();
    const purpose = chosenPurpose();
    const caseRef = caseInput.value.trim();
    if (!purpose) {
      purposeError("Choose a purpose.");
    } else if (CASE_PURPOSES.has(purpose) && !caseRef) {
      purposeError("Give the case reference: this purpose needs one.");
      caseInput.focus();
    } else {
      dialog.close();
      openPlayer(state.pending, purpose, caseRef);
      play();
    }
  }

  // --- integrity ----------------------------------------------------------------

  // When the recording's bytes were last read whole and compared with its SHA-256 (by
  // `recarchive verify` or by a full read served), as GET /recordings/{id} says.
  const VIA_LABELS = { playback: "on playback", verify: "by the integrity check" };

  function minute(iso) {
    const d = new Date(iso);
    const two = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
  }

  function showIntegrity(integrity) {
    const line = $("player-integrity");
    line.classList.remove("ok", "failed");
    if (!integrity) {
      line.textContent = t("qa.player.unverified", "SHA-256 not verified yet");
      return;
    }
    const how = t(`qa.player.via.${integrity.via}`, VIA_LABELS[integrity.via] || integrity.via);
    if (integrity.ok) {
      line.textContent = t("qa.player.verified", "SHA-256 verified {at} ({how})", { at: minute(integrity.last_checked_at), how });
      line.classList.add("ok");
    } else {
      const last = integrity.last_ok_at ? `; last verified ${minute(integrity.last_ok_at)}` : "";
      line.textContent =
        `Warning: the audio did not match its SHA-256 at the last check, ${minute(integrity.last_checked_at)} (${how})${last}`;
      line.classList.add("failed");
    }
  }

  async function refreshIntegrity() {
    const item = state.item;
    if (!item) return;
    try {
      const view = await getJson(`${API}/recordings/${encodeURIComponent(item.id)}`);
      if (state.item === item) showIntegrity(view.integrity);
    } catch (_) {
      // the line keeps what it said; the player's errors speak for themselves
    }
  }

  // --- player -------------------------------------------------------------------

  const clockTime = (iso) => new Date(iso).toLocaleTimeString(LOCALE, { timeStyle: "short" });

  // A transferred call's recordings, oldest first: "Part 2 of 3 — 10:42"; the others load
  // that part for the same purpose. Only the parts the API lists (those the role may see).
  function showParts(item) {
    const parts = [item, ...(item.parts || [])].sort((a, b) => a.started_at.localeCompare(b.started_at));
    const list = $("player-parts");
    list.hidden = parts.length < 2;
    list.firstElementChild.replaceChildren(
      ...parts.map((part, index) => {
        const label = t("qa.player.part", "Part {number} of {count} — {at}", {
          number: index + 1, count: parts.length, at: clockTime(part.started_at),
        });
        const entry = element("li");
        if (part.id === item.id) {
          entry.append(element("strong", label));
          entry.setAttribute("aria-current", "true");
        } else {
          const link = element("a", label);
          link.href = `#${encodeURIComponent(part.id)}`;
          link.addEventListener("click", (event) => {
            event.preventDefault();
            playPart(part.id);
          });
          entry.append(link);
        }
        return entry;
      }),
    );
  }

  async function playPart(id) {
    try {
      const item = await getJson(`${API}/recordings/${encodeURIComponent(id)}`);
      audio.pause();
      openPlayer(item, state.purpose, state.caseRef);
      play();
    } catch (error) {
      showError(error);
    }
  }

  function openPlayer(item, purpose, caseRef, focus = true) {
    state.item = item;
    Object.assign(state, { purpose, caseRef });
    const params = new URLSearchParams({ purpose });
    if (caseRef) params.set("case", caseRef);
    audio.src = `${API}/recordings/${encodeURIComponent(item.id)}/audio?${params}`;
    audio.defaultPlaybackRate = audio.playbackRate = Number($("speed").value);
    $("player-call").textContent = t("qa.player.call", "{started} · {direction} · agent {agent} · queue {queue}", {
      started: localTime(item.started_at),
      direction: t(`qa.direction.${item.direction}`, item.direction),
      agent: item.agent || "–",
      queue: item.queue || "–",
    });
    $("player-purpose").textContent =
      `${t("qa.player.purpose", "Purpose: {purpose}", { purpose: PURPOSE_LABELS[purpose] || purpose })}${caseRef ? `, case ${caseRef}` : ""}`;
    badges(item.reasons, $("player-reasons"));
    if ("integrity" in item) showIntegrity(item.integrity);
    else {
      $("player-integrity").textContent = "";
      refreshIntegrity(); // search results do not carry it
    }
    showParts(item);
    $("channels").value = "both";
    $("channels-box").hidden = item.audio.channels !== 2;
    updateTime(0, item.duration_s);
    showError(null);
    $("player").hidden = false;
    if (focus) $("play").focus();
    // The notes (player_notes.js, for QA trainers) follow the recording being played.
    document.dispatchEvent(new CustomEvent("recarchive:recording", { detail: item }));
  }

  // Caller on the left channel, agent on the right. Four gains route each channel
  // to each ear: "both" keeps the stereo image (left to left, right to right);
  // "caller" or "agent" sends that one channel alone to both ears.
  function channelGraph() {
    if (state.graph || !window.AudioContext) return state.graph;
    const context = new AudioContext();
    const splitter = context.createChannelSplitter(2);
    const merger = context.createChannelMerger(2);
    const route = {};
    for (const [name, from, to] of [["ll", 0, 0], ["lr", 0, 1], ["rl", 1, 0], ["rr", 1, 1]]) {
      const gain = context.createGain();
      splitter.connect(gain, from);
      gain.connect(merger, 0, to);
      route[name] = gain;
    }
    context.createMediaElementSource(audio).connect(splitter);
    merger.connect(context.destination);
    state.graph = { context, route };
    return state.graph;
  }

  const ROUTING = {
    both: { ll: 1, lr: 0, rl: 0, rr: 1 },
    caller: { ll: 1, lr: 1, rl: 0, rr: 0 },
    agent: { ll: 0, lr: 0, rl: 1, rr: 1 },
  };

  function applyChannels() {
    if (!state.graph) return;
    const levels = ROUTING[$("channels").value] || ROUTING.both;
    for (const [name, level] of Object.entries(levels)) state.graph.route[name].gain.value = level;
  }

  async function play() {
    if (!state.item) return;
    if (state.item.audio.channels === 2 && channelGraph()) {
      applyChannels();
      if (state.graph.context.state === "suspended") await state.graph.context.resume();
    }
    try {
      await audio.play();
    } catch (error) {
      if (error.name === "NotAllowedError") showError(new ApiError(0, "blocked", t("qa.player.blocked", "press Play to start")));
      // other failures arrive as the element's "error" event
    }
  }

  function togglePlay() {
    if (!state.item) return;
    if (audio.paused) play();
    else audio.pause();
  }

  function duration() {
    return Number.isFinite(audio.duration) ? audio.duration : state.item?.duration_s || 0;
  }

  function skip(delta) {
    if (!state.item) return;
    audio.currentTime = Math.min(Math.max(audio.currentTime + delta, 0), duration());
  }

  function updateTime(current, total) {
    const seek = $("seek");
    seek.max = String(total);
    if (!state.seeking) seek.value = String(current);
    seek.setAttribute("aria-valuetext", t("qa.player.valuetext", "{at} of {total}", { at: clock(current), total: clock(total) }));
    $("time").textContent = `${clock(current)} / ${clock(total)}`;
  }

  function playState() {
    const label = audio.paused ? t("qa.player.play", "Play") : t("qa.player.pause", "Pause");
    $("play").textContent = label;
    $("play").setAttribute("aria-label", label);
  }

  // The element's error hides the API's answer: ask again for one byte to show it.
  async function explainAudioError() {
    const url = audio.currentSrc || audio.src;
    if (!url) return;
    let error = new ApiError(0, "media", t("qa.player.media", "the browser could not play this recording's audio"));
    try {
      const response = await fetch(url, { headers: { Range: "bytes=0-0" } });
      if (!response.ok) error = await errorOf(response);
      else await response.body?.cancel();
    } catch (_) {
      // keep the generic message
    }
    showError(error);
  }

  function onKey(event) {
    if (dialog?.open || $("player").hidden || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const tag = target.tagName;
    const typing =
      (tag === "INPUT" && target.type !== "range") || tag === "SELECT" || tag === "TEXTAREA" || target.isContentEditable;
    if (typing) return;
    if (event.key === " " && tag !== "BUTTON") {
      event.preventDefault();
      togglePlay();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      skip(event.key === "ArrowLeft" ? -SKIP_S : SKIP_S);
    }
  }

  // --- wiring -------------------------------------------------------------------

  function wire() {
    if ($("search")) {
      $("search").addEventListener("submit", search);
      $("more").addEventListener("click", loadPage);
      $("purpose-form").addEventListener("submit", confirmPurpose);
      $("purpose-cancel").addEventListener("click", () => dialog.close());
    }
    $("play").addEventListener("click", togglePlay);
    $("back").addEventListener("click", () => skip(-SKIP_S));
    $("forward").addEventListener("click", () => skip(SKIP_S));
    $("speed").addEventListener("change", (event) => {
      audio.defaultPlaybackRate = audio.playbackRate = Number(event.target.value);
    });
    $("channels").addEventListener("change", applyChannels);
    const seek = $("seek");
    seek.addEventListener("input", () => {
      state.seeking = true;
      audio.currentTime = Number(seek.value);
    });
    seek.addEventListener("change", () => {
      state.seeking = false;
    });
    for (const name of ["play", "pause", "ended"]) audio.addEventListener(name, playState);
    for (const name of ["timeupdate", "durationchange", "seeked"]) {
      audio.addEventListener(name, () => updateTime(audio.currentTime, duration()));
    }
    audio.addEventListener("error", explainAudioError);
    // A full play was a full read, checked as it was served: show the check it recorded.
    for (const name of ["ended", "error"]) audio.addEventListener(name, refreshIntegrity);
    document.addEventListener("keydown", onKey);
  }

  // The QA call page: its one recording, ready to play for training (not started).
  async function openNamed(id) {
    try {
      openPlayer(await getJson(`${API}/recordings/${encodeURIComponent(id)}`), "training", "", false);
    } catch (error) {
      showError(error);
    }
  }

  async function start() {
    wire();
    const named = $("player").dataset.recordingId;
    if (named) {
      await openNamed(named);
      return;
    }
    try {
      state.me = await getJson(`${API}/me`);
      purposeOptions(state.me.purposes);
    } catch (error) {
      showError(error);
    }
  }

  start();
})();
