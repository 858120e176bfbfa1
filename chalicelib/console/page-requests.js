// The pending queue (manual approval): approve or reject, seeing what the device sent. Every string
// here came from a device (application name, attributes): text only.

import { api, path } from "./api.js";
import { append, field, fill, h, status, when } from "./dom.js";
import { action, errorBox, form, go, jsonBlock, link, pagedList } from "./ui.js";

function attributes(cr) {
  if (cr.type === "csr") return csrDetails(cr);
  const list = cr.info?.attributes || [];
  if (!list.length) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "attrs" }, list.map(([k, v]) => h("li", {}, h("span", { class: "k" }, k), " = ", h("span", { class: "v" }, v))));
}

/** What a PKCS#10 CSR asks for (the API's info: subject, SANs, key, EKUs): what an approval signs. */
function csrDetails(cr) {
  const info = cr.info || {};
  const rows = [
    ["Subject", info.subject || "(unreadable)"],
    ["SANs", (info.subjectAltName || []).join(", ") || "none"],
    ["Key", info.keyType || ""],
    ["Extended key usage", (info.extendedKeyUsage || []).join(", ") || "none requested"],
  ];
  return h("ul", { class: "attrs" }, rows.map(([k, v]) => h("li", {}, h("span", { class: "k" }, k), ": ", h("span", { class: "v mono" }, v))));
}

/** A SeaCat CR's application; a CSR's profile. */
function what(cr) {
  return cr.type === "csr" ? h("span", {}, "PKCS#10 CSR, profile ", h("span", { class: "mono" }, cr.profile || "")) : h("span", { class: "app" }, cr.seacat_application);
}

function identityOf(cr) {
  return cr.type === "csr" ? cr.identity : cr.seacat_identity;
}

async function queue(ctx, view) {
  const { tenant } = ctx.params;
  const box = h("div", {});
  const out = h("div", { "aria-live": "polite" });
  append(view, [
    h("p", {}, "Oldest first. Approving lets the device's next enrolment with the same key get its certificate; rejecting refuses this request only (block the identity to refuse it for good)."),
    out,
    box,
    h("p", {}, h("a", { href: link(["tenants", tenant, "audit"], { type: "cr.approved" }) }, "Decisions made (audit trail)"), " · ",
      h("a", { href: link(["tenants", tenant, "audit"], { type: "csr.approved" }) }, "CSRs approved"), " · ",
      h("a", { href: link(["tenants", tenant, "requests", "lookup"]) }, "Look a request up by id")),
  ]);
  const decide = (cr, verdict) => action(verdict === "approve" ? "Approve" : "Reject", async () => {
    const done = await api("PUT", path(tenant, "seacat", "cr", cr._id, verdict));
    list.remove(cr);
    const who = identityOf(done.request);
    status(`${who}: ${done.request.state}.`);
    fill(out, h("p", { class: "ok" }, `Request of ${who} (${done.request.type === "csr" ? `CSR, profile ${done.request.profile}` : done.request.seacat_application}) ${done.request.state}.`));
  }, { out, kind: verdict === "reject" ? "danger" : "primary" });
  const list = pagedList(box, {
    caption: `Pending certificate requests of ${tenant}`,
    empty: "No request is waiting.",
    columns: [
      { label: "Received", cell: (cr) => when(cr._c), nowrap: true },
      { label: "Application", cell: what },
      { label: "Identity", cell: (cr) => h("a", { href: link(["tenants", tenant, "identities"], { identity: identityOf(cr) }), class: "mono" }, identityOf(cr)) },
      { label: "Attributes / requested", cell: attributes },
      { label: "Decision", cell: (cr) => h("div", { class: "buttons" }, decide(cr, "approve"), decide(cr, "reject")) },
    ],
    fetchPage: (next) => api("GET", path(tenant, "seacat", "cr"), { query: { state: "pending", limit: 50, next } }),
  });
  await list.load();
}

async function lookup(ctx, view) {
  const { tenant } = ctx.params;
  const id = h("input", { name: "id", required: true, pattern: "[0-9a-fA-F]{96}", value: ctx.query.id || "", class: "mono", autocomplete: "off" });
  const result = h("div", {});
  append(view, [
    form("Show", [field("Request id (96 hex digits)", id)], () => go(["tenants", tenant, "requests", "lookup"], { id: id.value.trim() })),
    result,
  ]);
  if (!ctx.query.id) return;
  try {
    const cr = await api("GET", path(tenant, "seacat", "cr", ctx.query.id));
    fill(result,
      h("dl", { class: "facts" },
        h("dt", {}, "State"), h("dd", {}, cr.state),
        h("dt", {}, "Application"), h("dd", {}, what(cr)),
        h("dt", {}, "Identity"), h("dd", {}, h("a", { href: link(["tenants", tenant, "identities"], { identity: identityOf(cr) }) }, identityOf(cr))),
        h("dt", {}, cr.type === "csr" ? "Requested" : "Attributes"), h("dd", {}, attributes(cr)),
        h("dt", {}, "Received"), h("dd", {}, when(cr._c)),
        h("dt", {}, "Reason"), h("dd", {}, cr.reason || ""),
        h("dt", {}, "Decided by"), h("dd", {}, cr.decidedBy || ""),
        h("dt", {}, "Certificate"), h("dd", {}, cr.certificate ? h("a", { href: link(["tenants", tenant, "certificates"], { id: cr.certificate }) }, cr.certificate) : ""),
      ),
      h("details", {}, h("summary", {}, "As JSON"), jsonBlock({ ...cr, data: `${cr.data.length / 2} bytes` })));
  } catch (error) {
    fill(result, errorBox(error));
  }
}

export const routes = [
  { path: "/tenants/:tenant/requests", title: (p) => `Pending requests · ${p.tenant}`, render: queue },
  { path: "/tenants/:tenant/requests/lookup", title: (p) => `Certificate request · ${p.tenant}`, render: lookup },
];
