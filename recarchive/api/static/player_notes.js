// QA trainers' notes on the timeline of the recording being played: markers on the
// seek bar and a list under the player (each seeks the audio to its moment), and a
// form that adds a note at the current position. Talks to /api/v1 with the sign-in
// cookie (the note routes take it, from this site only); the API decides which
// notes may be read and which call may take one. Text is only ever textContent.
// Its words come from the page's messages (the QA call page's, in Finnish or English),
// else English (the search page's player).
"use strict";

(() => {
  const API = "/api/v1";
  const MESSAGES = JSON.parse(document.getElementById("messages")?.textContent || "{}");
  // The page's text for `key`, else the English `fallback`; {names} filled from `values`.
  const t = (key, fallback, values = {}) =>
    (MESSAGES[key] ?? fallback).replace(/\{([a-z_]+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  const $ = (id) => document.getElementById(id);
  const audio = $("audio");
  const state = { item: null, notes: [] };

  function clock(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const s = String(total % 60).padStart(2, "0");
    const m = Math.floor(total / 60);
    return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      window.location.assign("/");
      throw new Error(t("error.signed_out", "your sign-in has ended; sign in again"));
    }
    if (!response.ok) {
      let message = t("qa.notes.status", "the server answered {status}", { status: response.status });
      try {
        const answer = await response.json();
        if (answer && answer.error) message = answer.error.message;
      } catch (_) {
        // not JSON: keep the status line
      }
      throw new Error(message);
    }
    return response.status === 204 ? null : response.json();
  }

  function noteError(message) {
    const box = $("note-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  const durationMs = () => Math.round((state.item?.duration_s || 0) * 1000);

  function seekTo(note) {
    audio.currentTime = note.offset_ms / 1000;
    $("seek").value = String(audio.currentTime);
  }

  function describe(note) {
    const whose = note.mine ? t("qa.notes.you", "you") : note.author;
    return note.visibility === "shared"
      ? t("qa.notes.shared_by", "shared, by {user}", { user: whose })
      : t("qa.notes.private_by", "private, by {user}", { user: whose });
  }

  function marker(note) {
    const button = element("button", null, `note-marker ${note.visibility}`);
    button.type = "button";
    button.dataset.noteId = note.id;
    const total = durationMs();
    button.style.left = `${total ? Math.min(100, (100 * note.offset_ms) / total) : 0}%`;
    const label = t("qa.notes.marker", "Note at {at}: {text}", { at: clock(note.offset_ms), text: note.text });
    button.setAttribute("aria-label", label);
    button.title = label;
    button.addEventListener("click", () => seekTo(note));
    return button;
  }

  function entry(note) {
    const item = element("li");
    item.dataset.noteId = note.id;
    const at = element("button", clock(note.offset_ms), "note-at");
    at.type = "button";
    at.setAttribute("aria-label", t("qa.notes.go_to", "Go to {at}", { at: clock(note.offset_ms) }));
    at.addEventListener("click", () => seekTo(note));
    item.append(at, element("span", note.text, "note-text"), element("span", describe(note), "note-meta"));
    if (note.mine) {
      const remove = element("button", t("qa.notes.delete", "Delete"));
      remove.type = "button";
      remove.setAttribute("aria-label", t("qa.notes.delete_label", "Delete the note at {at}", { at: clock(note.offset_ms) }));
      remove.addEventListener("click", () => removeNote(note));
      item.append(remove);
    }
    return item;
  }

  function render() {
    $("note-markers").replaceChildren(...state.notes.map(marker));
    $("notes-list").replaceChildren(...state.notes.map(entry));
    const count = state.notes.length;
    $("notes-status").textContent =
      count === 0
        ? t("qa.notes.none", "No notes on this call yet.")
        : count === 1
          ? t("qa.notes.count_one", "1 note on this call.")
          : t("qa.notes.count", "{count} notes on this call.", { count });
    // The QA call page offers these notes for attaching to the call's evaluation.
    document.dispatchEvent(new CustomEvent("recarchive:notes", { detail: [...state.notes] }));
  }

  async function load(item) {
    state.item = item;
    state.notes = [];
    render();
    noteError(null);
    try {
      const page = await api("GET", `${API}/recordings/${encodeURIComponent(item.id)}/notes`);
      if (state.item === item) {
        state.notes = page.items;
        render();
      }
    } catch (error) {
      noteError(t("qa.notes.read_failed", "Notes could not be read: {message}", { message: error.message }));
    }
  }

  async function addNote(event) {
    event.preventDefault();
    const item = state.item;
    const text = $("note-text").value.trim();
    if (!item) return;
    if (!text) {
      noteError(t("qa.notes.empty", "Write the note first."));
      $("note-text").focus();
      return;
    }
    const offset = Math.min(Math.max(Math.round(audio.currentTime * 1000), 0), durationMs());
    const body = { offset_ms: offset, text, visibility: $("note-shared").checked ? "shared" : "private" };
    $("note-add").disabled = true;
    try {
      const note = await api("POST", `${API}/recordings/${encodeURIComponent(item.id)}/notes`, body);
      if (state.item === item) {
        state.notes = [...state.notes, note].sort((a, b) => a.offset_ms - b.offset_ms);
        render();
      }
      $("note-text").value = "";
      $("note-shared").checked = false;
      noteError(null);
    } catch (error) {
      noteError(t("qa.notes.add_failed", "The note was not added: {message}", { message: error.message }));
    } finally {
      $("note-add").disabled = false;
    }
  }

  async function removeNote(note) {
    try {
      await api("DELETE", `${API}/qa/notes/${encodeURIComponent(note.id)}`);
      state.notes = state.notes.filter((n) => n.id !== note.id);
      render();
      noteError(null);
    } catch (error) {
      noteError(t("qa.notes.delete_failed", "The note was not deleted: {message}", { message: error.message }));
    }
  }

  function position() {
    $("note-at").textContent = clock(audio.currentTime * 1000);
  }

  $("note-form").addEventListener("submit", addNote);
  $("note-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("note-form").requestSubmit();
    }
  });
  for (const name of ["timeupdate", "seeked"]) audio.addEventListener(name, position);
  document.addEventListener("recarchive:recording", (event) => load(event.detail));
})();
