// The console's shell: sign-in, the navigation, and a hash router over the pages' routes.
// A page is a module exporting `routes`: [{path: "/tenants/:tenant/x", title, nav, render(ctx, view)}];
// add it to PAGES below and it has a URL, a place in the navigation and the shell's error handling.

import { api, ApiError, session, whenUnauthenticated } from "./api.js";
import { fill, h, status } from "./dom.js";
import { errorBox, link } from "./ui.js";
import * as tenants from "./page-tenants.js";
import * as cas from "./page-cas.js";
import * as requests from "./page-requests.js";
import * as identities from "./page-identities.js";
import * as certificates from "./page-certificates.js";
import * as audit from "./page-audit.js";
import * as tokens from "./page-tokens.js";
import * as gateway from "./page-gateway.js";
import * as profiles from "./page-profiles.js";
import * as estCredentials from "./page-est-credentials.js";

const PAGES = [tenants, cas, requests, identities, certificates, audit, tokens, gateway, profiles, estCredentials];
const ROUTES = PAGES.flatMap((page) => page.routes);

const $ = (id) => document.getElementById(id);

function parse(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = raw.split("?", 2);
  const parts = pathPart.split("/").filter(Boolean);
  for (const route of ROUTES) {
    const want = route.path.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    want.forEach((w, i) => {
      let part;
      try {
        part = decodeURIComponent(parts[i]);
      } catch {
        ok = false;
        return;
      }
      if (w.startsWith(":")) params[w.slice(1)] = part;
      else if (w !== part) ok = false;
    });
    if (ok) return { route, params, query: Object.fromEntries(new URLSearchParams(queryPart)) };
  }
  return null;
}

function tenantNav(tenant) {
  return [
    ["Overview", [`tenants`, tenant]],
    ["CA certificates", ["tenants", tenant, "cas"]],
    ["Pending requests", ["tenants", tenant, "requests"]],
    ["Identities", ["tenants", tenant, "identities"]],
    ["Certificates", ["tenants", tenant, "certificates"]],
    ["Profiles", ["tenants", tenant, "profiles"]],
    ["EST credentials", ["tenants", tenant, "est-credentials"]],
    ["Audit trail", ["tenants", tenant, "audit"]],
    ["Gateway", ["tenants", tenant, "gateway"]],
  ];
}

function renderNav(current) {
  const who = session.who;
  const items = [];
  if (who.operator) {
    items.push(["Tenants", ["tenants"]], ["Tokens", ["tokens"]], ["Operator audit", ["audit"]]);
  }
  const tenant = current?.params.tenant || (who.operator ? null : who.tenant);
  const here = location.hash.split("?")[0];
  const entry = ([label, segments]) => {
    const href = link(segments);
    return h("li", {}, h("a", { href, "aria-current": href === here ? "page" : null }, label));
  };
  const nav = $("nav");
  fill(
    nav,
    h("ul", {}, items.map(entry)),
    tenant ? h("ul", { class: "tenant-nav", "aria-label": `Tenant ${tenant}` }, h("li", { class: "tenant-name" }, tenant), tenantNav(tenant).map(entry)) : null,
  );
  nav.hidden = false;
}

let rendering = 0;

async function render() {
  if (!session.who) return;
  const match = parse(location.hash);
  if (!match) {
    location.replace(session.who.operator ? link(["tenants"]) : link(["tenants", session.who.tenant]));
    return;
  }
  // A tenant in the URL is a tenant id or nothing: not a heading a link may write (the title shows it).
  if (match.params.tenant !== undefined && !/^[A-Za-z0-9_-]{2,64}$/.test(match.params.tenant)) {
    renderNav(null);
    document.title = "No such tenant · SeaCat PKI console";
    fill($("view"), h("h1", {}, "No such tenant"), errorBox(new Error("A tenant id is 2 to 64 letters, digits, - and _.")));
    return;
  }
  if (match.route.operator && !session.who.operator) {
    location.replace(link(["tenants", session.who.tenant]));
    return;
  }
  renderNav(match);
  const view = $("view");
  const mine = ++rendering;
  const title = typeof match.route.title === "function" ? match.route.title(match.params) : match.route.title;
  document.title = `${title} · SeaCat PKI console`;
  const body = h("div", { class: "page" });
  fill(view, h("h1", {}, title), body);
  status("");
  const ctx = {
    ...match,
    who: session.who,
    stale: () => mine !== rendering, // a newer page replaced this one: stop writing into it
    refresh: () => render(),
  };
  try {
    await match.route.render(ctx, body);
  } catch (error) {
    if (mine === rendering) fill(body, errorBox(error));
  }
  if (mine === rendering) $("main").focus({ preventScroll: true });
}

// An unattended console signs itself out: after IDLE_MINUTES without a key press or a click the token
// is forgotten, and a tab reloaded after that long asks for it again.
const IDLE_MINUTES = 30;
const ACTIVE_KEY = "seacat.console.active";
const IDLE_MESSAGE = `Signed out after ${IDLE_MINUTES} minutes without activity.`;

function touch() {
  if (session.token()) sessionStorage.setItem(ACTIVE_KEY, String(Date.now()));
}

function idle() {
  const at = Number(sessionStorage.getItem(ACTIVE_KEY) || 0);
  return !(Date.now() - at <= IDLE_MINUTES * 60 * 1000);
}

function forget(message) {
  session.clear();
  sessionStorage.removeItem(ACTIVE_KEY);
  showSignIn(message);
}

function showSignIn(message) {
  session.who = null;
  $("view").hidden = true;
  $("nav").hidden = true;
  $("signout").hidden = true;
  fill($("who"), "");
  $("signin").hidden = false;
  fill($("signin-error"), message || "");
  $("token").value = "";
  $("token").focus();
}

async function signIn(token) {
  const who = await api("GET", "whoami", { token });
  session.set(token);
  session.who = who;
  touch();
  $("signin").hidden = true;
  $("view").hidden = false;
  $("signout").hidden = false;
  fill($("who"), who.operator ? "Operator" : `Tenant ${who.tenant}`, h("small", {}, ` token ${who.tokenId}`));
  await render();
}

function signOut() {
  forget("Signed out.");
}

whenUnauthenticated(() => {
  forget("The token is no longer valid: sign in again.");
});

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("token");
    const token = input.value.trim();
    input.value = "";
    fill($("signin-error"), "");
    try {
      await signIn(token);
    } catch (error) {
      showSignIn(error instanceof ApiError && error.status === 401 ? "That token is not valid." : String(error.message));
    }
  });
  $("signout").addEventListener("click", signOut);
  // The skip link must not become a route: move the focus instead of the hash.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("main").focus();
  });
  window.addEventListener("hashchange", render);
  for (const event of ["pointerdown", "keydown", "hashchange"]) window.addEventListener(event, touch, { passive: true });
  setInterval(() => {
    if (session.token() && idle()) forget(IDLE_MESSAGE);
  }, 30 * 1000);
  const saved = session.token();
  if (saved && idle()) {
    forget(IDLE_MESSAGE);
  } else if (saved) {
    signIn(saved).catch(() => showSignIn(""));
  } else {
    showSignIn("");
  }
});
