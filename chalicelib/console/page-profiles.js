// A tenant's certificate profiles (what a PKCS#10 CSR or an EST enrolment may obtain): list, view one,
// create or replace one from its JSON, delete; the tenant's default EST profile (estProfile).

import { api, path } from "./api.js";
import { append, field, fill, h, status } from "./dom.js";
import { action, errorBox, form, go, jsonBlock, link, pagedList } from "./ui.js";

const SEACAT = "seacat"; // built in, read-only
const NAME = "[a-z0-9][a-z0-9_\\-]{0,62}";

// A starting point for a new profile: docs/api.md "Certificate profiles and PKCS#10" has every key.
const EXAMPLE = {
  description: "Routers: EC or RSA keys, a name under routers.example.com",
  keyTypes: ["P-256", "RSA"],
  lifetimeDays: 90,
  extendedKeyUsage: ["clientAuth", "serverAuth"],
  sans: { dns: ["*.routers.example.com"] },
  approval: null,
};

// The GET answer's keys that are not the profile's own (a PUT refuses them or ignores nothing).
const SHOWN_ONLY = new Set(["tenant", "estDefault", "builtin", "name"]);

export function editable(profile) {
  return Object.fromEntries(Object.entries(profile).filter(([k]) => !SHOWN_ONLY.has(k)));
}

function lifetime(p) {
  if (p.lifetimeHours == null) return "the tenant's";
  return p.lifetimeHours % 24 === 0 ? `${p.lifetimeHours / 24} days` : `${p.lifetimeHours} hours`;
}

function sans(p) {
  const kinds = Object.entries(p.sans || {});
  return kinds.length ? kinds.map(([kind, patterns]) => `${kind}: ${patterns.join(", ")}`).join("; ") : "none";
}

async function setEstDefault(tenant, name) {
  await api("PUT", path("tenants", tenant), { body: { estProfile: name } });
  status(name ? `${name} is the default EST profile.` : "No default EST profile.");
}

/** The form that writes a profile: its name and its JSON; a 400 shows the field the API names. */
function profileForm(ctx, { name, body, fixedName, exists }) {
  const { tenant } = ctx.params;
  const nameInput = h("input", { name: "name", required: true, pattern: NAME, maxlength: "63", autocomplete: "off", class: "mono", value: name || "", readonly: fixedName || null });
  const json = h("textarea", { name: "profile", rows: "14", spellcheck: "false", class: "mono" }, JSON.stringify(body, null, 2));
  return form(fixedName ? "Save profile" : "Create or replace profile", [
    field("Name", nameInput, "1 to 63 characters: a-z, 0-9, _ and -, starting with a letter or digit."),
    field("Profile (JSON)", json, "Absent keys take their defaults, not the stored values; see docs/api.md, Certificate profiles."),
  ], async (_form, out) => {
    let parsed;
    try {
      parsed = JSON.parse(json.value);
    } catch (error) {
      fill(out, errorBox(new Error(`Not JSON: ${error.message}`)));
      return;
    }
    const target = nameInput.value.trim();
    if (exists && exists(target) && !window.confirm(`Profile ${target} exists: replace it? Keys left out take their defaults.`)) return;
    const saved = await api("PUT", path(tenant, "x509", "profiles", target), { body: parsed });
    status(`Profile ${saved.name} saved.`);
    const here = link(["tenants", tenant, "profiles", saved.name]);
    if (location.hash === here) ctx.refresh(); // the same URL: no hashchange to re-render it
    else location.hash = here;
  });
}

async function list(ctx, view) {
  const { tenant } = ctx.params;
  const holder = h("div", {});
  const out = h("div", { "aria-live": "polite" });
  append(view, [
    h("p", {}, "A profile says what a PKCS#10 CSR (POST /{tenant}/x509/sign?profile=NAME) or an EST enrolment may obtain. ",
      "The built-in seacat profile is SeaCat's own and read-only. EST enrols under the default EST profile at ",
      h("span", { class: "mono" }, `.well-known/est/${tenant}/`), ", under any other at ",
      h("span", { class: "mono" }, `.well-known/est/${tenant}/{profile}/`), "."),
    out,
    h("section", { "aria-labelledby": "profiles-title" }, h("h2", { id: "profiles-title" }, "Profiles"), holder),
    h("section", { "aria-labelledby": "new-profile" }, h("h2", { id: "new-profile" }, "New profile"),
      // every profile is listed (32 at most, one page): a name among them is a replacement
      profileForm(ctx, { body: EXAMPLE, exists: (wanted) => profiles.rows.some((p) => p.name === wanted) })),
  ]);
  const estColumn = (p) => {
    if (p.estDefault) {
      return [h("span", { class: "badge ok" }, "default"), " ",
        action("Clear", async () => { await setEstDefault(tenant, null); ctx.refresh(); }, { out, confirm: "Leave the tenant without a default EST profile? EST URLs must then name a profile." })];
    }
    if (p.builtin) return "";
    return action("Make default", async () => { await setEstDefault(tenant, p.name); ctx.refresh(); }, { out });
  };
  const profiles = pagedList(holder, {
    caption: `Certificate profiles of ${tenant}`,
    empty: "No profile.",
    columns: [
      { label: "Name", cell: (p) => h("a", { href: link(["tenants", tenant, "profiles", p.name]) }, p.name), nowrap: true },
      { label: "Description", cell: (p) => h("span", { class: "desc" }, p.description || "") },
      { label: "Keys", cell: (p) => p.keyTypes.join(", ") },
      { label: "Usage", cell: (p) => p.extendedKeyUsage.join(", ") },
      { label: "SANs", cell: sans },
      { label: "Lifetime", cell: lifetime },
      { label: "Approval", cell: (p) => p.approval || "the tenant's" },
      { label: "EST default", cell: estColumn },
    ],
    fetchPage: (next) => api("GET", path(tenant, "x509", "profiles"), { query: { limit: 50, next } }),
  });
  await profiles.load();
}

async function one(ctx, view) {
  const { tenant, name } = ctx.params;
  const profile = await api("GET", path(tenant, "x509", "profiles", name));
  if (ctx.stale()) return;
  const out = h("div", { "aria-live": "polite" });
  const buttons = [];
  if (profile.estDefault) {
    buttons.push(action("Clear EST default", async () => { await setEstDefault(tenant, null); ctx.refresh(); }, { out }));
  } else if (!profile.builtin) {
    buttons.push(action("Make default EST profile", async () => { await setEstDefault(tenant, name); ctx.refresh(); }, { out }));
  }
  if (!profile.builtin) {
    buttons.push(action("Delete profile", async () => {
      await api("DELETE", path(tenant, "x509", "profiles", name));
      status(`Profile ${name} deleted.`);
      go(["tenants", tenant, "profiles"]);
    }, { out, kind: "danger", confirm: `Delete profile ${name}? Its certificates stay valid; its pending CSRs can only be rejected.` }));
  }
  const subject = profile.subject.mode === "template"
    ? `template: ${profile.subject.template.map((a) => Object.entries(a).map(([k, v]) => `${k}=${v}`).join("")).join(", ")}`
    : `from the CSR: ${profile.subject.allowed.join(", ")} (required: ${profile.subject.required.join(", ") || "none"})`;
  append(view, [
    h("p", {}, h("a", { href: link(["tenants", tenant, "profiles"]) }, "All profiles")),
    h("dl", { class: "facts" },
      h("dt", {}, "Description"), h("dd", { class: "desc" }, profile.description || ""),
      h("dt", {}, "EST default"), h("dd", {}, profile.estDefault ? h("span", { class: "badge ok" }, "yes") : "no"),
      h("dt", {}, "Key types"), h("dd", {}, `${profile.keyTypes.join(", ")}${profile.keyTypes.includes("RSA") ? ` (RSA from ${profile.rsaMinBits} bits)` : ""}`),
      h("dt", {}, "Key usage"), h("dd", {}, profile.keyUsage.join(", ")),
      h("dt", {}, "Extended key usage"), h("dd", {}, profile.extendedKeyUsage.join(", ")),
      h("dt", {}, "Subject"), h("dd", {}, subject),
      h("dt", {}, "SANs"), h("dd", {}, `${sans(profile)} · at most ${profile.maxSans}${profile.requireSan ? ", one required" : ""}`),
      h("dt", {}, "Lifetime"), h("dd", {}, lifetime(profile)),
      h("dt", {}, "Approval"), h("dd", {}, profile.approval || "the tenant's mode"),
      h("dt", {}, "EST URL"), h("dd", { class: "mono" }, profile.builtin ? "none (SeaCat CRs only)" : `.well-known/est/${tenant}/${name}/simpleenroll`),
    ),
    buttons.length ? h("div", { class: "buttons" }, buttons) : null,
    out,
    profile.builtin
      ? h("p", { class: "muted" }, "The seacat profile is built in and read-only.")
      : h("section", { "aria-labelledby": "edit-profile" }, h("h2", { id: "edit-profile" }, "Edit"),
        profileForm(ctx, { name, body: editable(profile), fixedName: true })),
    h("details", {}, h("summary", {}, "As JSON"), jsonBlock(profile)),
  ]);
}

export const routes = [
  { path: "/tenants/:tenant/profiles", title: (p) => `Profiles · ${p.tenant}`, render: list },
  { path: "/tenants/:tenant/profiles/:name", title: (p) => `Profile ${p.name} · ${p.tenant}`, render: one },
];
