// The admin API, same origin. The token lives in sessionStorage (this tab only) and travels in the
// Authorization header: never in a URL, never in a log line of this page.

const KEY = "seacat.console.token";

// The API's root: the console is served at <root>console/ (a stage prefix on API Gateway included).
// Leading slashes collapsed: the page is also served at //other.host/console/, and "//other.host/"
// would be a URL of another origin, the token sent there.
export const ROOT = location.pathname.replace(/console\/?[^/]*$/, "").replace(/^\/+/, "/");

export const session = {
  token: () => sessionStorage.getItem(KEY),
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
  who: null, // {tokenId, tenant, operator} from GET /whoami
};

export class ApiError extends Error {
  constructor(status, body) {
    // Only this API's own error shape ({error, message, field}) is shown. Anything else (a gateway's
    // or a proxy's answer) may echo the request: Chalice's "no route" 403 quotes the Authorization
    // header, the token itself.
    const ours = body && typeof body.error === "string" && typeof body.message === "string";
    const message = ours ? body.message : `HTTP ${status}`;
    super(ours && body.field ? `${body.field}: ${message}` : message);
    this.status = status;
    this.body = body;
  }
}

/** A path from segments, each percent-encoded: data never changes the path's shape. */
export function path(...segments) {
  return segments
    .map((s) => {
      const text = String(s);
      // encodeURIComponent leaves "." and "..", which the URL parser would resolve away
      if (text === "." || text === "..") throw new Error(`${text} is not a tenant or an id`);
      // No "/" either: a server that hands the app a decoded path (granian under make run) cannot
      // tell %2F from "/", so an encoded one would still change the route the request reaches.
      if (text.includes("/")) throw new Error("a tenant or an id never holds a '/'");
      return encodeURIComponent(text);
    })
    .join("/");
}

let onUnauthenticated = () => {};
export function whenUnauthenticated(fn) {
  onUnauthenticated = fn;
}

/**
 * Call the API. `as`: "json" (default), "text" or "bytes". `query`: an object (empty values left out).
 * Throws ApiError with the API's {error, message, field}.
 */
export async function api(method, route, { body, query, accept = "application/json", as = "json", token } = {}) {
  const url = new URL(ROOT + route, location.origin);
  if (url.origin !== location.origin) throw new Error("refused: the API is on this page's origin only");
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = { Accept: accept };
  const bearer = token || session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(url, {
    method,
    headers,
    body: payload,
    credentials: "omit",
    cache: "no-store",
    redirect: "error",
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) {
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    const error = new ApiError(response.status, parsed);
    if (response.status === 401 && !token) onUnauthenticated(error);
    throw error;
  }
  if (as === "bytes") return new Uint8Array(await response.arrayBuffer());
  if (as === "text") return response.text();
  return response.json();
}
