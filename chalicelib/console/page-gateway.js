// The gateway: its credential (shown once), the CA bundle it trusts, and how to render its NGINX
// configuration (scripts/gateway.py, which writes files on the gateway's host).

import { api, path, ROOT } from "./api.js";
import { append, download, fill, h, status } from "./dom.js";
import { action, shownOnce } from "./ui.js";

async function render(ctx, view) {
  const { tenant } = ctx.params;
  const details = await api("GET", path("tenants", tenant));
  if (ctx.stale()) return;
  const out = h("div", { "aria-live": "polite" });
  const service = new URL(ROOT, location.origin).href.replace(/\/$/, "");
  const valid = details.config.gatewayCredentials;
  const command = [
    "python -m scripts.gateway render \\",
    `  --tenant ${tenant} --pki-url ${service} --out gateway-${tenant} \\`,
    "  --gateway-credential-file gateway-credential.txt   # when the tenant has a credential",
  ].join("\n");
  append(view, [
    h("section", { "aria-labelledby": "render-title" }, h("h2", { id: "render-title" }, "NGINX configuration"),
      h("p", {}, "The configuration is rendered on the gateway's host from this checkout's template: it fetches the CA bundle into the output directory and writes nginx.conf beside it (docs/gateway.md). Render again after every CA rotation, retirement or revocation."),
      h("pre", { class: "command" }, command),
      action("Copy command", async () => { await navigator.clipboard.writeText(command); status("Copied."); }),
      " ",
      action("Download the CA bundle (seacat_ca.pem)", async () => {
        const bytes = await api("GET", path(tenant, "x509", "ca"), { accept: "application/x-pem-file", as: "bytes" });
        download("seacat_ca.pem", bytes, "application/x-pem-file");
      })),
    h("section", { "aria-labelledby": "cred-title" }, h("h2", { id: "cred-title" }, "Gateway credential"),
      h("p", {}, `Valid credentials: ${valid}. ${valid ? "nginx_authenticate requires one." : "None is required."} A new one is shown once; the previous one stays valid until dropped.`),
      h("div", { class: "buttons" },
        action("New credential", async () => {
          const made = await api("POST", path(tenant, "gateway", "credential"));
          fill(out, shownOnce(`Gateway credential (${made.header})`, made.credential, "Put it in the gateway's credential file now: shown this once."));
        }, { out, confirm: "Create a new gateway credential? Gateways then need it." }),
        valid > 1 ? action("Drop the previous one", async () => {
          await api("DELETE", path(tenant, "gateway", "credential"), { query: { previous: "true" } });
          status("Previous credential dropped."); ctx.refresh();
        }, { out }) : null,
        valid ? action("Drop all (require none)", async () => {
          await api("DELETE", path(tenant, "gateway", "credential"));
          status("No gateway credential required any more."); ctx.refresh();
        }, { out, kind: "danger", confirm: "Drop every gateway credential? nginx_authenticate then requires none." }) : null),
      out),
  ]);
}

export const routes = [{ path: "/tenants/:tenant/gateway", title: (p) => `Gateway · ${p.tenant}`, render }];
