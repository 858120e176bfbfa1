// A tenant's EST enrolment credentials: create one (its password shown once), list them, revoke.

import { api, path } from "./api.js";
import { append, field, fill, h, status, when } from "./dom.js";
import { action, form, link, pagedList, shownOnce } from "./ui.js";

const SEACAT = "seacat"; // SeaCat CRs only: no EST credential for it

/** Every profile an EST credential may name (at most 32 per tenant: two pages at most). */
async function estProfiles(tenant) {
  const names = [];
  let next = null;
  for (let page = 0; page < 5; page++) {
    const found = await api("GET", path(tenant, "x509", "profiles"), { query: { limit: 100, next } });
    for (const p of found.items) if (p.name !== SEACAT) names.push({ name: p.name, estDefault: p.estDefault });
    next = found.next;
    if (!next) break;
  }
  return names;
}

async function render(ctx, view) {
  const { tenant } = ctx.params;
  const profiles = await estProfiles(tenant);
  if (ctx.stale()) return;
  const listHolder = h("div", {});
  const out = h("div", { "aria-live": "polite" });

  const showList = async () => {
    fill(listHolder);
    const credentials = pagedList(listHolder, {
      caption: `EST enrolment credentials of ${tenant}, newest first`,
      empty: "No enrolment credential.",
      columns: [
        { label: "Username", cell: (c) => h("span", { class: "mono" }, c.username) },
        { label: "Label", cell: (c) => h("span", { class: "desc" }, c.label || "") },
        { label: "Profile", cell: (c) => h("a", { href: link(["tenants", tenant, "profiles", c.profile]) }, c.profile) },
        { label: "Uses left", cell: (c) => `${c.usesLeft} of ${c.uses}` },
        { label: "Expires", cell: (c) => when(c.expiresAt), nowrap: true },
        { label: "Last used", cell: (c) => when(c.lastUsedAt) || "never", nowrap: true },
        { label: "State", cell: (c) => [h("span", { class: `badge ${c.state}` }, c.state), c.revokedAt ? h("small", {}, ` ${when(c.revokedAt)}`) : null] },
        { label: "Revoke", cell: (c) => c.state === "revoked" ? "" : action("Revoke", async () => {
          const done = await api("PUT", path(tenant, "est", "credentials", c.username, "revoke"));
          status(`Credential ${done.username} revoked.`);
          await showList();
        }, { out, kind: "danger", confirm: `Revoke ${c.username}? It enrols nothing more; certificates it got stay valid.` }) },
      ],
      fetchPage: (next) => api("GET", path(tenant, "est", "credentials"), { query: { limit: 20, next } }),
    });
    await credentials.load();
  };

  const creation = () => {
    if (!profiles.length) {
      return h("p", { class: "empty" }, "The tenant has no profile an EST credential can name: ",
        h("a", { href: link(["tenants", tenant, "profiles"]) }, "create one"), " first.");
    }
    const profile = h("select", { name: "profile", required: true },
      profiles.map((p) => h("option", { value: p.name, selected: p.estDefault || null }, p.estDefault ? `${p.name} (EST default)` : p.name)));
    const uses = h("input", { type: "number", name: "uses", min: "1", max: "100000", value: "1", required: true });
    const expiresIn = h("input", { name: "expiresIn", value: "7d", required: true, pattern: "[0-9]+[smhd]?", autocomplete: "off" });
    const label = h("input", { name: "label", maxlength: "200", autocomplete: "off" });
    return form("Create credential", [
      field("Profile", profile, "The only profile it enrols under."),
      field("Uses", uses, "Enrolments it may make: 1 for a device, more for a batch (up to 100000)."),
      field("Expires in", expiresIn, "Seconds, or 30m, 12h, 7d: a minute to 366 days."),
      field("Label", label, "Which device or batch it is for (optional)."),
    ], async (_form, formOut) => {
      const body = { profile: profile.value, uses: Number(uses.value), expiresIn: /^\d+$/.test(expiresIn.value.trim()) ? Number(expiresIn.value.trim()) : expiresIn.value.trim() };
      if (label.value.trim()) body.label = label.value.trim();
      const made = await api("POST", path(tenant, "est", "credentials"), { body });
      const where = profiles.find((p) => p.name === made.profile)?.estDefault ? `.well-known/est/${tenant}/` : `.well-known/est/${tenant}/${made.profile}/`;
      fill(formOut,
        h("dl", { class: "facts" },
          h("dt", {}, "Username"), h("dd", { class: "mono" }, made.username),
          h("dt", {}, "Profile"), h("dd", {}, made.profile),
          h("dt", {}, "Uses"), h("dd", {}, String(made.uses)),
          h("dt", {}, "Expires"), h("dd", {}, when(made.expiresAt)),
          h("dt", {}, "EST URL"), h("dd", { class: "mono" }, `${where}simpleenroll`)),
        shownOnce("Password", made.password, "Shown this once (only its hash is kept): give it with the username to the device or its installer now."));
      label.value = "";
      await showList();
    });
  };

  append(view, [
    h("p", {}, "An enrolment credential is the HTTP Basic username and password an EST client (or POST /{tenant}/x509/sign) uses for its first certificate, ",
      "bound to one profile, for a number of uses, until it expires. Re-enrolment uses the current certificate instead."),
    out,
    h("section", { "aria-labelledby": "credentials-title" }, h("h2", { id: "credentials-title" }, "Enrolment credentials"), listHolder),
    h("section", { "aria-labelledby": "new-credential" }, h("h2", { id: "new-credential" }, "New enrolment credential"), creation()),
  ]);
  await showList();
}

export const routes = [{ path: "/tenants/:tenant/est-credentials", title: (p) => `EST credentials · ${p.tenant}`, render }];
