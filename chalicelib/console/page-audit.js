// The audit trail: newest first, filtered by type and time (at most 31 days a query), paged.

import { api } from "./api.js";
import { append, field, h, when } from "./dom.js";
import { form, go, link, pagedList } from "./ui.js";

const TYPES = [
  "tenant.created", "tenant.updated", "key.generated", "key.imported", "ca.created", "ca.retired", "ca.revoked",
  "key.deletion_scheduled", "ocsp.signer_issued", "cr.received", "cr.approved", "cr.rejected", "csr.received", "csr.approved",
  "csr.rejected", "profile.created", "profile.updated", "profile.deleted", "certificate.issued", "certificate.renewed",
  "certificate.revoked", "identity.blocked", "identity.unblocked", "identity.revoked", "token.created", "token.revoked",
  "authentication.denied", "gateway_credential.created", "gateway_credential.dropped", "est_credential.created",
  "est_credential.used", "est_credential.revoked",
];

function local(value) {
  // <input type=datetime-local> speaks the reader's time zone; the API speaks UTC.
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function subjectCell(tenant, e) {
  if (!e.subject || !tenant || tenant === "_") return e.subject || "";
  if (/^[A-Z2-7]{16}$/.test(e.subject)) return h("a", { href: link(["tenants", tenant, "identities"], { identity: e.subject }), class: "mono" }, e.subject);
  if (/^[0-9a-f]{96}$/.test(e.subject) && /^csr?\./.test(e.type)) return h("a", { href: link(["tenants", tenant, "requests", "lookup"], { id: e.subject }), class: "mono short", title: e.subject }, `${e.subject.slice(0, 16)}…`);
  if (/^[0-9a-f]{96}$/.test(e.subject)) return h("a", { href: link(["tenants", tenant, "certificates"], { id: e.subject }), class: "mono short", title: e.subject }, `${e.subject.slice(0, 16)}…`);
  return e.subject;
}

function details(value) {
  if (!value || !Object.keys(value).length) return "";
  return h("ul", { class: "attrs" }, Object.entries(value).map(([k, v]) => h("li", {}, h("span", { class: "k" }, k), ": ", h("span", { class: "v" }, typeof v === "string" ? v : JSON.stringify(v)))));
}

async function render(ctx, view) {
  const tenant = ctx.params.tenant || "_";
  const q = ctx.query;
  const type = h("select", { name: "type" }, h("option", { value: "" }, "every type"), TYPES.map((t) => h("option", { value: t, selected: q.type === t }, t)));
  const from = h("input", { type: "datetime-local", name: "from" });
  const to = h("input", { type: "datetime-local", name: "to" });
  const segments = ctx.params.tenant ? ["tenants", tenant, "audit"] : ["audit"];
  append(view, [
    form("Filter", [
      field("Event type", type),
      field("From", from, q.from ? `now: ${when(q.from)}` : "Default: a day before 'to'."),
      field("To", to, q.to ? `now: ${when(q.to)}` : "Default: now. A query spans at most 31 days."),
    ], () => go(segments, { type: type.value, from: local(from.value), to: local(to.value) }), { class: "filters", role: "search" }),
  ]);
  const box = h("div", {});
  append(view, [box]);
  const list = pagedList(box, {
    caption: `Audit events of ${tenant === "_" ? "no tenant" : tenant}, newest first`,
    empty: "No event in this range.",
    columns: [
      { label: "At", cell: (e) => when(e.at), nowrap: true },
      { label: "Event", cell: (e) => e.type, nowrap: true },
      { label: "Outcome", cell: (e) => e.outcome || "", nowrap: true },
      { label: "Subject", cell: (e) => subjectCell(tenant, e) },
      { label: "Actor", cell: (e) => h("span", { class: "mono" }, e.actor), nowrap: true },
      { label: "Details", cell: (e) => details(e.details) },
    ],
    fetchPage: (next) => api("GET", "audit", { query: { tenant, type: q.type, from: q.from, to: q.to, limit: 50, next } }),
  });
  await list.load();
}

export const routes = [
  { path: "/tenants/:tenant/audit", title: (p) => `Audit trail · ${p.tenant}`, render },
  { path: "/audit", title: "Audit trail · events of no tenant", operator: true, render },
];
