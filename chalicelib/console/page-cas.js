// A tenant's CA certificates: state, expiry, what they cover; create (a spec by form or as JSON),
// rotate, retire, revoke; download the bundle and each certificate.

import { api, path } from "./api.js";
import { append, download, field, h, status, table, when } from "./dom.js";
import { action, form } from "./ui.js";

const REFERENCE = {
  serialNumber: 1,
  subject: { O: "My Org", CN: "Root CA" },
  validity: { notBefore: "now", notAfter: { weeks: 1040 } },
  extensions: [{ basicConstraints: { CA: true, pathLen: 0 }, critical: true }, { keyUsage: ["keyCertSign", "cRLSign"] }],
};

export async function downloadCertificate(tenant, id, format) {
  const accept = format === "der" ? "application/pkix-cert" : "application/x-pem-file";
  const bytes = await api("GET", path(tenant, "x509", "cert", id), { accept, as: "bytes" });
  const short = String(id).split(":").pop().slice(0, 16);
  download(`${tenant}-${short}.${format === "der" ? "der" : "pem"}`, bytes, accept);
}

function specForm(tenant, ctx) {
  const cn = h("input", { name: "CN", required: true, value: "Root CA" });
  const org = h("input", { name: "O", value: "" });
  const years = h("input", { type: "number", name: "years", min: "1", max: "30", value: "20", required: true });
  const mode = h("select", { name: "mode" },
    h("option", { value: "self-signed" }, "Re-certify the active key (or the tenant's first key)"),
    h("option", { value: "rotate" }, "Rotate: a new key"));
  const curve = h("select", { name: "curve" }, h("option", { value: "P-256" }, "P-256"), h("option", { value: "P-384" }, "P-384"));
  const raw = h("textarea", { name: "spec", rows: "10", spellcheck: "false", class: "mono" }, JSON.stringify(REFERENCE, null, 2));
  const useRaw = h("input", { type: "checkbox", name: "raw" });
  return form("Create CA certificate", [
    field("What", mode),
    field("Common name", cn),
    field("Organisation", org),
    field("Validity (years)", years, "At most 30."),
    field("Key curve (rotation only)", curve),
    field("Use the JSON spec below instead of the fields", useRaw),
    field("JSON certificate spec", raw, "The reference documentation's body; see docs/api.md."),
  ], async (_form, out) => {
    let spec;
    if (useRaw.checked) {
      spec = JSON.parse(raw.value);
    } else {
      const subject = org.value.trim() ? { O: org.value.trim(), CN: cn.value.trim() } : { CN: cn.value.trim() };
      spec = { subject, validity: { notBefore: "now", notAfter: { years: Number(years.value) } },
        extensions: REFERENCE.extensions };
    }
    if (mode.value === "rotate") spec = { ...spec, curve: curve.value };
    const made = mode.value === "rotate"
      ? await api("POST", path(tenant, "x509", "ca", "rotate"), { body: spec })
      : await api("PUT", path(tenant, "x509", "self-signed"), { body: spec });
    status(`CA certificate ${made.ca_cert} created and active.`);
    ctx.refresh();
  });
}

async function render(ctx, view) {
  const { tenant } = ctx.params;
  const details = await api("GET", path("tenants", tenant));
  if (ctx.stale()) return;
  const out = h("div", { "aria-live": "polite" });
  const lifecycle = (ca) => {
    if (ca.state === "revoked" || ca.state === "retired") return ca.stateChangedAt ? `${ca.state} ${when(ca.stateChangedAt)}` : ca.state;
    const buttons = [];
    if (ca.state === "trusted") {
      buttons.push(action("Retire", async () => {
        const force = ca.certificates > 0 && window.confirm(`${ca.certificates} client certificates chain to it. Retire anyway (force)?`);
        await api("PUT", path(tenant, "x509", "ca", ca.id, "retire"), { body: force ? { force: true } : {} });
        status("Retired.");
        ctx.refresh();
      }, { confirm: "Take this CA certificate out of the bundle and the gateway's trust?", out }));
    }
    buttons.push(action("Revoke", async () => {
      await api("PUT", path(tenant, "x509", "ca", ca.id, "revoke"), { body: { reason: "cACompromise" } });
      status("Revoked.");
      ctx.refresh();
    }, { confirm: "Revoke this CA key (compromised)? Every certificate it issued is refused from now on.", out, kind: "danger" }));
    return buttons;
  };
  append(view, [
    h("p", {}, `The bundle (every active and trusted CA certificate) is public at ${tenant}/x509/ca. `,
      action("Download bundle", async () => {
        const bytes = await api("GET", path(tenant, "x509", "ca"), { accept: "application/x-pem-file", as: "bytes" });
        download(`${tenant}-seacat_ca.pem`, bytes, "application/x-pem-file");
      })),
    out,
    table("CA certificates", [
      { label: "State", cell: (ca) => h("span", { class: `badge ${ca.state}` }, ca.state) },
      { label: "Subject", cell: (ca) => ca.subject },
      { label: "Curve", cell: (ca) => ca.curve },
      { label: "Expires", cell: (ca) => [when(ca.notAfter), h("br"), h("small", { class: ca.daysToExpiry < 90 ? "warn" : null }, `${ca.daysToExpiry} days`)] },
      { label: "Client certificates", cell: (ca) => String(ca.certificates) },
      { label: "Id", cell: (ca) => h("span", { class: "mono short", title: ca.id }, ca.id.split(":")[1].slice(0, 16) + "…") },
      { label: "Download", cell: (ca) => [
        action("PEM", () => downloadCertificate(tenant, ca.id, "pem")),
        action("DER", () => downloadCertificate(tenant, ca.id, "der")),
      ] },
      { label: "Lifecycle", cell: lifecycle },
    ], details.cas, "No CA certificate yet: create one below."),
    h("section", { "aria-labelledby": "new-ca" }, h("h2", { id: "new-ca" }, "New CA certificate"), specForm(tenant, ctx)),
  ]);
}

export const routes = [{ path: "/tenants/:tenant/cas", title: (p) => `CA certificates · ${p.tenant}`, render }];
