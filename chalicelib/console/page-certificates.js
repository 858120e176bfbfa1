// Certificates: one by id (its fields, revoke with a reason, PEM/DER), and the tenant's revoked ones.

import { api, path } from "./api.js";
import { append, field, fill, h, status, when } from "./dom.js";
import { action, errorBox, form, go, link, pagedList } from "./ui.js";
import { downloadCertificate } from "./page-cas.js";
import { reasonSelect } from "./page-identities.js";

async function render(ctx, view) {
  const { tenant } = ctx.params;
  const wanted = (ctx.query.id || "").trim();
  const input = h("input", { name: "id", required: true, value: wanted, class: "mono", autocomplete: "off" });
  const result = h("div", {});
  append(view, [
    form("Show", [field("Certificate id (96 hex digits, or TENANT:id)", input)],
      () => go(["tenants", tenant, "certificates"], { id: input.value.trim() }), { role: "search" }),
    result,
  ]);
  if (!wanted) {
    fill(result,
      h("p", {}, "Open a certificate from an identity, a request or the audit trail; the CA certificates' expiry is on ",
        h("a", { href: link(["tenants", tenant, "cas"]) }, "CA certificates"), "."),
      h("h2", {}, "Revoked in the last 31 days"));
    const from = new Date(Date.now() - 31 * 86400000 + 60000).toISOString();
    const revoked = pagedList(result, {
      caption: `Certificates of ${tenant} revoked in the last 31 days (the audit trail's certificate.revoked), newest first`,
      empty: "No certificate was revoked in the last 31 days.",
      columns: [
        { label: "Revoked", cell: (e) => when(e.at), nowrap: true },
        { label: "Reason", cell: (e) => e.outcome || "", nowrap: true },
        { label: "Identity", cell: (e) => (e.details?.identity ? h("a", { href: link(["tenants", tenant, "identities"], { identity: e.details.identity }), class: "mono" }, e.details.identity) : "") },
        { label: "Certificate", cell: (e) => h("a", { href: link(["tenants", tenant, "certificates"], { id: e.subject }), class: "mono short", title: e.subject }, `${String(e.subject).slice(0, 16)}…`) },
        { label: "By", cell: (e) => h("span", { class: "mono" }, e.actor) },
      ],
      fetchPage: (next) => api("GET", "audit", { query: { tenant, type: "certificate.revoked", from, limit: 50, next } }),
    });
    await revoked.load();
    return;
  }
  let cert;
  try {
    cert = await api("GET", path(tenant, "x509", "cert", wanted));
  } catch (error) {
    fill(result, errorBox(error));
    return;
  }
  if (ctx.stale()) return;
  const out = h("div", { "aria-live": "polite" });
  const reason = reasonSelect();
  const left = Math.floor((new Date(cert.notAfter).getTime() - Date.now()) / 86400000);
  fill(result,
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge ${cert.status}` }, cert.status),
        cert.revoked ? ` ${when(cert.revoked.at)} (${cert.revoked.reason})` : ""),
      h("dt", {}, "Subject"), h("dd", {}, cert.subject),
      h("dt", {}, "Issuer"), h("dd", {}, cert.issuer),
      h("dt", {}, "Serial"), h("dd", { class: "mono" }, cert.serialNumber),
      h("dt", {}, "Valid"), h("dd", {}, `${when(cert.notBefore)} to ${when(cert.notAfter)}`, cert.status === "valid" ? h("small", { class: left < 30 ? "warn" : null }, ` (${left} days left)`) : ""),
      cert.seacat_identity ? [h("dt", {}, "Identity"), h("dd", {}, h("a", { href: link(["tenants", tenant, "identities"], { identity: cert.seacat_identity }) }, cert.seacat_identity))] : null,
      h("dt", {}, "Id"), h("dd", { class: "mono wrap" }, cert.id),
    ),
    h("div", { class: "buttons" }, action("Download PEM", () => downloadCertificate(tenant, cert.id, "pem")), action("Download DER", () => downloadCertificate(tenant, cert.id, "der"))),
    cert.revoked || cert.ca ? null : h("div", { class: "inline" }, field("Revocation reason", reason),
      action("Revoke certificate", async () => {
        const done = await api("PUT", path(tenant, "x509", "cert", cert.id, "revoke"), { body: { reason: reason.value } });
        status(`Revoked (${done.revoked.reason}).`);
        ctx.refresh();
      }, { out, kind: "danger", confirm: "Revoke this certificate? The gateway refuses it from now on." })),
    out,
  );
}

export const routes = [{ path: "/tenants/:tenant/certificates", title: (p) => `Certificates · ${p.tenant}`, render }];
