// JSON over HTTP to the core. State-changing requests carry the CSRF token of this browser
// session (held in memory only; the session itself is an HttpOnly cookie). A 401, or a 403
// whose check is "session", means the session ended: the app goes back to the login page and
// keeps drafts.

let csrf = null;
let onExpired = () => {};

export function setCsrf(token) { csrf = token; }
export const hasCsrf = () => !!csrf;
export function onSessionExpired(handler) { onExpired = handler; }

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** One request; network failures throw ApiError with status 0 (the outcome is unknown). */
export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-Patchbay-CSRF"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (problem) {
    throw new ApiError(0, { error: `no answer from the core (${problem.message})` });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  const expired = response.status === 401 && path !== "/api/login" && path !== "/api/setup";
  if (expired || (response.status === 403 && data && data.check === "session")) {
    onExpired(data && data.error);
    throw new ApiError(response.status, data);
  }
  return { status: response.status, data: data || {} };
}

export async function get(path) {
  const { status, data } = await call("GET", path);
  if (status >= 400) throw new ApiError(status, data);
  return data;
}

export async function post(path, body = {}) {
  const { status, data } = await call("POST", path, body);
  if (status >= 400 && !("outcome" in data)) throw new ApiError(status, data);
  return { status, data };
}
