// Identities: look one up; its status and certificates; block, unblock, revoke.

import { api, path } from "./api.js";
import { append, field, fill, h, status, when } from "./dom.js";
import { action, errorBox, form, go, link, pagedList } from "./ui.js";
import { downloadCertificate } from "./page-cas.js";

export const REASONS = [
  "unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "privilegeWithdrawn",
];

export function reasonSelect() {
  return h("select", { name: "reason" }, REASONS.map((r) => h("option", { value: r }, r)));
}

async function render(ctx, view) {
  const { tenant } = ctx.params;
  const wanted = (ctx.query.identity || "").trim().toUpperCase();
  const input = h("input", { name: "identity", required: true, pattern: "[A-Za-z2-7]{16}", value: wanted, class: "mono", autocomplete: "off" });
  const result = h("div", {});
  append(view, [
    form("Search", [field("Identity (16 characters, A-Z and 2-7)", input, "Identities and their applications are listed in the pending queue and the audit trail.")],
      () => go(["tenants", tenant, "identities"], { identity: input.value.trim().toUpperCase() }), { role: "search" }),
    result,
  ]);
  if (!wanted) return;
  let identity;
  try {
    identity = await api("GET", path(tenant, "seacat", "identity", wanted));
  } catch (error) {
    fill(result, errorBox(error));
    return;
  }
  if (ctx.stale()) return;
  const out = h("div", { "aria-live": "polite" });
  const reason = reasonSelect();
  const state = identity.revoked ? `revoked ${when(identity.revoked.at)} (${identity.revoked.reason})`
    : identity.blocked ? "blocked"
    : identity.certificate ? "enrolled"
    : identity.approved ? "approved, not enrolled yet" : "no certificate";
  const certs = h("div", {});
  fill(result,
    h("h2", {}, h("span", { class: "mono" }, identity.identity)),
    h("dl", { class: "facts" },
      h("dt", {}, "Application"), h("dd", { class: "app" }, identity.application || ""),
      h("dt", {}, "State"), h("dd", {}, h("span", { class: `badge ${identity.revoked ? "revoked" : identity.blocked ? "blocked" : "ok"}` }, state)),
      h("dt", {}, "Current certificate"), h("dd", {}, identity.certificate ? h("a", { href: link(["tenants", tenant, "certificates"], { id: identity.certificate }) }, `expires ${when(identity.notAfter)}`) : "none"),
      h("dt", {}, "Certificates issued"), h("dd", {}, String(identity.certificates)),
      h("dt", {}, "First seen"), h("dd", {}, when(identity._c)),
    ),
    h("div", { class: "buttons" },
      identity.blocked
        ? action("Unblock", async () => { await api("PUT", path(tenant, "seacat", "identity", wanted, "unblock")); status("Unblocked."); ctx.refresh(); }, { out })
        : action("Block", async () => { await api("PUT", path(tenant, "seacat", "identity", wanted, "block")); status("Blocked."); ctx.refresh(); }, { out, confirm: "Block this identity? Its enrolments and its certificate at the gateway are refused." }),
    ),
    identity.revoked ? null : h("div", { class: "inline" }, field("Revocation reason", reason),
      action("Revoke identity", async () => {
        await api("PUT", path(tenant, "seacat", "identity", wanted, "revoke"), { body: { reason: reason.value } });
        status("Identity revoked.");
        ctx.refresh();
      }, { out, kind: "danger", confirm: "Revoke this identity and every certificate it holds? This cannot be undone." })),
    out,
    h("h3", {}, "Certificates"),
    certs,
  );
  const list = pagedList(certs, {
    caption: `Certificates of ${wanted}, newest first`,
    empty: "No certificate.",
    columns: [
      { label: "Status", cell: (c) => h("span", { class: `badge ${c.status}` }, c.status) },
      { label: "Not after", cell: (c) => when(c.notAfter) },
      { label: "Serial", cell: (c) => h("span", { class: "mono" }, c.serialNumber) },
      { label: "Certificate", cell: (c) => h("a", { href: link(["tenants", tenant, "certificates"], { id: c.id }) }, "details") },
      { label: "Download", cell: (c) => [action("PEM", () => downloadCertificate(tenant, c.id, "pem")), action("DER", () => downloadCertificate(tenant, c.id, "der"))] },
    ],
    fetchPage: (next) => api("GET", path(tenant, "seacat", "identity", wanted, "certificates"), { query: { limit: 20, next } }),
  });
  await list.load();
}

export const routes = [{ path: "/tenants/:tenant/identities", title: (p) => `Identities · ${p.tenant}`, render }];
