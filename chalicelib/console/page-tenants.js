// Tenants: the operator's list and creation; a tenant's configuration, webhook secret.

import { api, path } from "./api.js";
import { append, field, fill, h, status, table, when } from "./dom.js";
import { action, form, go, jsonBlock, link, shownOnce } from "./ui.js";

async function list(ctx, view) {
  const holder = h("div", { "aria-busy": "true" }, h("p", { class: "progress" }, "Loading…"));
  const name = h("input", { name: "tenant", required: true, pattern: "[a-zA-Z0-9_\\-]{2,64}", autocomplete: "off" });
  const manual = h("input", { type: "checkbox", name: "manualApproval" });
  append(view, [
    h("section", { "aria-labelledby": "create-title" }, h("h2", { id: "create-title" }, "Create a tenant"),
      form("Create", [
        field("Tenant id", name, "2-64 characters: letters, digits, - and _."),
        field("Manual approval", manual, "Every enrolment waits in the pending queue."),
      ], async () => {
        const tenant = name.value.trim();
        await api("PUT", path("tenants", tenant), { body: { manualApproval: manual.checked } });
        status(`Tenant ${tenant} created.`);
        go(["tenants", tenant, "cas"]);
      })),
    h("section", { "aria-labelledby": "list-title" }, h("h2", { id: "list-title" }, "Tenants"), holder),
  ]);
  const found = await api("GET", "tenants");
  holder.removeAttribute("aria-busy");
  fill(holder, table("Every tenant", [
    { label: "Tenant", cell: (t) => h("a", { href: link(["tenants", t.tenant]) }, t.tenant) },
    { label: "Pending", cell: (t) => h("a", { href: link(["tenants", t.tenant, "requests"]) }, "queue") },
    { label: "Audit", cell: (t) => h("a", { href: link(["tenants", t.tenant, "audit"]) }, "trail") },
  ], found.items, "No tenant yet."), h("p", { class: "progress" }, `${found.count} tenants.`));
}

function checkbox(name, checked) {
  return h("input", { type: "checkbox", name, checked: Boolean(checked) });
}

async function overview(ctx, view) {
  const { tenant } = ctx.params;
  const details = await api("GET", path("tenants", tenant));
  if (ctx.stale()) return;
  const c = details.config;
  const seacat = checkbox("seacat", c.seacat);
  const manual = checkbox("manualApproval", c.manualApproval);
  const renewals = checkbox("approveRenewals", c.approveRenewals);
  const approve = h("input", { type: "url", name: "approve", value: c.approve || "", placeholder: "https://…" });
  const timeout = h("input", { type: "number", name: "webhookTimeout", min: "0.1", max: "25", step: "0.1", value: c.webhookTimeout ?? "" });
  const lifetime = h("input", { type: "number", name: "lifetimeDays", min: "32", max: "3650", required: true, value: c.lifetimeDays });
  const base = h("input", { type: "url", name: "publicBaseUrl", value: c.publicBaseUrl || "", placeholder: "https://pki.example.com" });
  const active = details.cas.find((ca) => ca.state === "active");
  append(view, [
    h("dl", { class: "facts" },
      h("dt", {}, "Approval"), h("dd", {}, c.manualApproval ? "manual (pending queue)" : c.approve ? "webhook" : "automatic"),
      h("dt", {}, "Active CA"), h("dd", {}, active ? `${active.subject} · expires ${when(active.notAfter)} (${active.daysToExpiry} days)` : "none: create one"),
      h("dt", {}, "Key fingerprint"), h("dd", { class: "mono" }, details.keyFingerprint),
      h("dt", {}, "Default EST profile"), h("dd", {}, c.estProfile ? h("a", { href: link(["tenants", tenant, "profiles", c.estProfile]) }, c.estProfile) : h("a", { href: link(["tenants", tenant, "profiles"]) }, "none: choose one")),
      h("dt", {}, "Gateway credentials"), h("dd", {}, String(c.gatewayCredentials)),
      h("dt", {}, "Created"), h("dd", {}, when(details._c)),
    ),
    h("section", { "aria-labelledby": "config-title" }, h("h2", { id: "config-title" }, "Configuration"),
      form("Save", [
        field("SeaCat enrolment enabled", seacat),
        field("Manual approval", manual, "Every new identity waits in the pending queue for an administrator."),
        field("Approve webhook URL", approve, "https on a public host; empty: none. Each call is signed; the secret is shown once."),
        field("Renewals go through approval too", renewals),
        field("Webhook timeout (seconds)", timeout, "Empty: the service default."),
        field("Certificate lifetime (days)", lifetime, "32 to 3650."),
        field("Public base URL", base, "Where CRLs are published (CRL distribution point); empty: none."),
      ], async (_form, out) => {
        const body = {
          seacat: seacat.checked,
          manualApproval: manual.checked,
          approveRenewals: renewals.checked,
          approve: approve.value.trim() || null,
          webhookTimeout: timeout.value === "" ? null : Number(timeout.value),
          lifetimeDays: Number(lifetime.value),
          publicBaseUrl: base.value.trim() || null,
        };
        const saved = await api("PUT", path("tenants", tenant), { body });
        fill(out, h("p", { class: "ok" }, "Saved."));
        if (saved.webhookSecret) append(out, [shownOnce("Webhook secret", saved.webhookSecret, "Signs the webhook's calls (X-SeaCat-Signature). Shown this once.")]);
      })),
    h("section", { "aria-labelledby": "webhook-title" }, h("h2", { id: "webhook-title" }, "Webhook secret"),
      h("p", {}, "Replace the key that signs the approve webhook's calls; the new one is shown once."),
      (() => {
        const out = h("div", {});
        return [action("New webhook secret", async () => {
          const made = await api("POST", path(tenant, "webhook", "secret"));
          fill(out, shownOnce("Webhook secret", made.webhookSecret));
        }, { confirm: "Replace the webhook secret? The receiver must be given the new one.", out }), out];
      })()),
    h("details", {}, h("summary", {}, "As JSON"), jsonBlock(details)),
  ]);
}

export const routes = [
  { path: "/tenants", title: "Tenants", operator: true, render: list },
  { path: "/tenants/:tenant", title: (p) => `Tenant ${p.tenant}`, render: overview },
];
