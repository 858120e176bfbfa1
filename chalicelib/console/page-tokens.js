// Tokens (operator): create a tenant token (shown once), revoke one by id.

import { api, path } from "./api.js";
import { append, field, fill, h, status } from "./dom.js";
import { form, shownOnce } from "./ui.js";

async function render(ctx, view) {
  const found = await api("GET", "tenants");
  if (ctx.stale()) return;
  const tenant = h("select", { name: "tenant", required: true }, found.items.map((t) => h("option", { value: t.tenant }, t.tenant)));
  const label = h("input", { name: "label", maxlength: "200", autocomplete: "off" });
  const tokenId = h("input", { name: "tokenId", required: true, pattern: "[0-9a-f]{16}|operator", class: "mono", autocomplete: "off" });
  append(view, [
    h("section", { "aria-labelledby": "new-token" }, h("h2", { id: "new-token" }, "New tenant token"),
      h("p", {}, "A tenant token administers its tenant only. The token is shown once, here; only its hash is stored."),
      form("Create token", [field("Tenant", tenant), field("Label", label, "Who or what uses it.")], async (_form, out) => {
        const made = await api("POST", "tokens", { body: { tenant: tenant.value, label: label.value.trim() || null } });
        fill(out, h("p", {}, `Token ${made.tokenId} for ${made.tenant}:`), shownOnce("Token", made.token, "Shown this once: give it to its holder now. Revoke it by its id."));
        label.value = "";
      })),
    h("section", { "aria-labelledby": "revoke-token" }, h("h2", { id: "revoke-token" }, "Revoke a token"),
      form("Revoke token", [field("Token id (the 16 hex digits after sct_)", tokenId)], async (_form, out) => {
        if (!window.confirm(`Revoke token ${tokenId.value}? It stops working at once.`)) return;
        const done = await api("DELETE", path("tokens", tokenId.value.trim()));
        fill(out, h("p", { class: "ok" }, `Token ${done.tokenId} revoked.`));
        status("Token revoked.");
      })),
    h("p", {}, "The audit trail of each tenant lists its tokens' creation and revocation (token.created, token.revoked)."),
  ]);
}

export const routes = [{ path: "/tokens", title: "Tokens", operator: true, render }];
