// The admin API, same origin. The token lives in sessionStorage (this tab only) and travels in the
// Authorization header: never in a URL, never in a log line of this page.

const KEY = "seacat.console.token";

// The API's root: the console is served at <root>console/ (a stage prefix on API Gateway included).
export const ROOT = location.pathname.replace(/console\/?[^/]*$/, "");

export const session = {
  token: () => sessionStorage.getItem(KEY),
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
  who: null, // {tokenId, tenant, operator} from GET /whoami
};

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.message || body.Message)) || `HTTP ${status}`;
    super(body && body.field ? `${body.field}: ${message}` : message);
    this.status = status;
    this.body = body;
  }
}

/** A path from segments, each percent-encoded: data never changes the path's shape. */
export function path(...segments) {
  return segments.map((s) => encodeURIComponent(String(s))).join("/");
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
