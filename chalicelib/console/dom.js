// DOM helpers. Data only ever becomes text (textContent, attribute values): never markup.

/** h("tag", {attr: value, on: {click: fn}}, child, ...): an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (name === "class") {
      el.className = String(value);
    } else if (/^on/i.test(name) || name === "innerHTML" || name === "outerHTML" || name === "srcdoc") {
      throw new Error(`refused attribute ${name}`);
    } else if (name === "href" && !/^(#|blob:|\.\.?\/|[a-z0-9-]+(\.[a-z0-9]+)?$)/i.test(String(value))) {
      throw new Error("refused link target");
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

// Characters that reorder or hide the text around them (bidi embeddings, overrides and isolates,
// marks) or break a line where none is shown: a device's string must not make "gnp.exe" read "exe.png".
const REORDERING = /[\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child).replace(REORDERING, "\ufffd")));
  }
  return el;
}

/** Replace an element's children (never innerHTML: Trusted Types would refuse it anyway). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A date-time as the reader's UTC text; empty for none. */
export function when(value) {
  if (!value) return "";
  const iso = /[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** A table: columns [{label, cell(row) -> node|string, nowrap?}], rows; a caption for screen readers. */
export function table(caption, columns, rows, empty = "Nothing to show.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) => h("tr", {}, columns.map((c) => h("td", { "data-label": c.label, class: c.nowrap ? "nowrap" : null }, c.cell(row))))),
      ),
    ),
  );
}

/** Label + control, the label bound to the control by id. */
let ids = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++ids}`;
  control.id = id;
  const note = hint ? h("small", {}, hint) : null;
  if (control.type === "checkbox") return h("div", { class: "field check" }, control, h("label", { for: id }, label), note);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, note);
}

/** Offer bytes as a file download (a blob: URL, revoked right after). */
export function download(name, bytes, type) {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A status line for the screen reader and the eye. */
export function status(message) {
  const el = document.getElementById("status");
  fill(el, message || "");
  el.classList.toggle("shown", Boolean(message));
}
