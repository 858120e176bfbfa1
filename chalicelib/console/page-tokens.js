// Tokens (operator): create a tenant token (shown once, with an expiry), list a tenant's, revoke one.

import { api, path } from "./api.js";
import { append, field, fill, h, status, when } from "./dom.js";
import { action, form, pagedList, shownOnce } from "./ui.js";

// What a new token may live: a bounded lifetime is the default, "until revoked" a deliberate choice.
const LIFETIMES = [["1d", "1 day"], ["30d", "30 days"], ["90d", "90 days"], ["366d", "366 days"], ["", "until revoked"]];

async function render(ctx, view) {
  const found = await api("GET", "tenants");
  if (ctx.stale()) return;
  const options = () => found.items.map((t) => h("option", { value: t.tenant }, t.tenant));
  const tenant = h("select", { name: "tenant", required: true }, options());
  const label = h("input", { name: "label", maxlength: "200", autocomplete: "off" });
  const lifetime = h("select", { name: "expiresIn" }, LIFETIMES.map(([value, text]) => h("option", { value, selected: value === "90d" || null }, text)));
  const tokenId = h("input", { name: "tokenId", required: true, pattern: "[0-9a-f]{16}|operator", class: "mono", autocomplete: "off" });
  const listed = h("select", { name: "listTenant", required: true }, options());
  const listHolder = h("div", {});
  const out = h("div", { "aria-live": "polite" });

  const showList = async () => {
    const of = listed.value;
    fill(listHolder);
    const tokens = pagedList(listHolder, {
      caption: `Tokens of ${of}, newest first`,
      empty: "No token. (On AWS, tokens made before this list existed show once scripts.admin index-tokens has run.)",
      columns: [
        { label: "Token id", cell: (t) => h("span", { class: "mono" }, t.tokenId) },
        { label: "Label", cell: (t) => h("span", { class: "desc" }, t.label || "") },
        { label: "Created", cell: (t) => when(t.createdAt), nowrap: true },
        { label: "Expires", cell: (t) => (t.expiresAt ? when(t.expiresAt) : "never"), nowrap: true },
        { label: "State", cell: (t) => [h("span", { class: `badge ${t.state}` }, t.state), t.revokedAt ? h("small", {}, ` ${when(t.revokedAt)}`) : null] },
        { label: "Revoke", cell: (t) => t.state === "revoked" ? "" : action("Revoke", async () => {
          const done = await api("DELETE", path("tokens", t.tokenId));
          status(`Token ${done.tokenId} revoked.`);
          await showList();
        }, { out, kind: "danger", confirm: `Revoke token ${t.tokenId}? It stops working at once.` }) },
      ],
      fetchPage: (next) => api("GET", "tokens", { query: { tenant: of, limit: 20, next } }),
    });
    await tokens.load();
  };

  append(view, [
    h("section", { "aria-labelledby": "new-token" }, h("h2", { id: "new-token" }, "New tenant token"),
      h("p", {}, "A tenant token administers its tenant only. The token is shown once, here; only its hash is stored."),
      form("Create token", [
        field("Tenant", tenant),
        field("Label", label, "Who or what uses it."),
        field("Expires in", lifetime, "It stops working then; renew automation's tokens before."),
      ], async (_form, formOut) => {
        const body = { tenant: tenant.value, label: label.value.trim() || null };
        if (lifetime.value) body.expiresIn = lifetime.value;
        const made = await api("POST", "tokens", { body });
        fill(formOut,
          h("p", {}, `Token ${made.tokenId} for ${made.tenant}, ${made.expiresAt ? `expires ${when(made.expiresAt)}` : "until revoked"}:`),
          shownOnce("Token", made.token, "Shown this once: give it to its holder now. Revoke it by its id."));
        label.value = "";
        if (listed.value === made.tenant) await showList();
      })),
    h("section", { "aria-labelledby": "list-tokens" }, h("h2", { id: "list-tokens" }, "A tenant's tokens"),
      form("Show tokens", [field("Tenant", listed)], async () => showList()),
      out, listHolder),
    h("section", { "aria-labelledby": "revoke-token" }, h("h2", { id: "revoke-token" }, "Revoke a token by its id"),
      form("Revoke token", [field("Token id (the 16 hex digits after sct_)", tokenId)], async (_form, formOut) => {
        if (!window.confirm(`Revoke token ${tokenId.value}? It stops working at once.`)) return;
        const done = await api("DELETE", path("tokens", tokenId.value.trim()));
        fill(formOut, h("p", { class: "ok" }, `Token ${done.tokenId} revoked.`));
        status("Token revoked.");
      })),
    h("p", {}, "The audit trail of each tenant lists its tokens' creation and revocation (token.created, token.revoked)."),
  ]);
}

export const routes = [{ path: "/tokens", title: "Tokens", operator: true, render }];
