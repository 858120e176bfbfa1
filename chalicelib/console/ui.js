// What the pages share: links, errors, confirmations, a paged list with its progress.

import { ApiError } from "./api.js";
import { append, fill, h, status, table } from "./dom.js";

/** A hash URL from a route's segments and a query: every segment encoded. */
export function link(segments, query) {
  const path = "#/" + segments.map((s) => encodeURIComponent(String(s))).join("/");
  const q = new URLSearchParams(Object.entries(query || {}).filter(([, v]) => v !== "" && v != null));
  return q.toString() ? `${path}?${q}` : path;
}

export function go(segments, query) {
  location.hash = link(segments, query);
}

export function errorBox(error) {
  const text = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error.message || error);
  return h("p", { class: "error", role: "alert" }, text);
}

/** A button that runs `action` once at a time, showing its outcome in `out` (or the status line). */
export function action(label, run, { confirm: question, out, kind } = {}) {
  const button = h("button", { type: "button", class: kind || null });
  button.textContent = label;
  button.addEventListener("click", async () => {
    if (question && !window.confirm(question)) return;
    button.disabled = true;
    if (out) fill(out, "");
    try {
      await run(button);
    } catch (error) {
      if (out) fill(out, errorBox(error));
      else status(`${label} failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A form whose submit runs `run(form)`; errors shown under it. */
export function form(label, controls, run, attrs = {}) {
  const out = h("div", { class: "out", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, label);
  const el = h("form", { ...attrs, class: `form ${attrs.class || ""}`.trim() }, controls, h("div", { class: "actions" }, submit), out);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    fill(out, "");
    try {
      await run(el, out);
    } catch (error) {
      fill(out, errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

/**
 * A paged list: the first page at once, "Load more" for the next, the count loaded so far and
 * whether more exist. `fetchPage(next)` answers {items, next}.
 */
export function pagedList(container, { caption, columns, fetchPage, empty }) {
  const holder = h("div", {});
  const progress = h("p", { class: "progress", role: "status" });
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const rows = [];
  let next = null;
  const rowsChanged = () => fill(holder, table(caption, columns, rows, empty));
  const load = async () => {
    more.disabled = true;
    container.setAttribute("aria-busy", "true");
    fill(progress, rows.length ? `Loading more… (${rows.length} shown)` : "Loading…");
    try {
      const page = await fetchPage(next);
      rows.push(...page.items);
      next = page.next || null;
      rowsChanged();
      fill(progress, `${rows.length} shown${next ? ", more available" : rows.length ? ", all loaded" : ""}.`);
      more.hidden = !next;
    } catch (error) {
      fill(progress, errorBox(error));
    } finally {
      more.disabled = false;
      container.removeAttribute("aria-busy");
    }
  };
  more.addEventListener("click", load);
  append(container, [holder, progress, more]);
  const api = {
    load,
    rows,
    remove(row) {
      const i = rows.indexOf(row);
      if (i >= 0) rows.splice(i, 1);
      rowsChanged();
      fill(progress, `${rows.length} shown${next ? ", more available" : ""}.`);
    },
  };
  return api;
}

/** A secret shown once, with a copy button; it lives in the page only until the page changes. */
export function shownOnce(title, secret, note) {
  const code = h("code", { class: "secret" }, secret);
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      status("Copied.");
    } catch {
      status("Copy refused by the browser: select the text instead.");
    }
  });
  return h("div", { class: "once", role: "alert" }, h("strong", {}, title), h("p", {}, note || "Shown this once: store it now."), code, copy);
}

/** JSON as indented text (a <pre>, never markup). */
export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}
