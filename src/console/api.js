// The REST API client: every call carries the signed-in user's token, and every failure becomes
// an ApiError holding the server's code, message and the field at fault.

const TOKEN = "berth.token";

/** The signed-in user's token, kept for the browser tab's session only. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN);
  },
  /** The token's subject, read from its claims (the server checks the signature, not us). */
  get subject() {
    try {
      const payload = this.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload)).sub ?? "";
    } catch {
      return "";
    }
  },
};

/** A refused or failed request. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `Berth answered ${status}`);
    this.status = status;
    this.code = body?.code;
    this.field = body?.field;
  }
}

/**
 * Sends a request to the API. Returns `{ status, body, etag }`; throws ApiError unless the
 * status is 2xx. A 401 with the session's token signs the user out.
 */
export async function api(method, path, { body, headers = {}, token = session.token } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { message: `Berth cannot be reached (${e.message})` });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && token && token === session.token) {
      session.signOut();
      dispatchEvent(new Event("berth:signed-out"));
    }
    throw new ApiError(response.status, data);
  }
  return { status: response.status, body: data, etag: response.headers.get("ETag") };
}

/** A path with each interpolated value percent-encoded: path`/registries/${name}`. */
export function path(strings, ...values) {
  return strings.reduce(
    (out, part, i) => out + part + (i < values.length ? encodeURIComponent(values[i]) : ""),
    "",
  );
}

/** A query string from the parameters that have a value. */
export function query(parameters) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Every item of a paged collection (used for short lists such as the proxies to pick from). */
export async function all(collection, parameters = {}) {
  const items = [];
  let token;
  do {
    const page = await api(
      "GET",
      `/api/v1/${collection}${query({ ...parameters, page_size: 500, page_token: token })}`,
    );
    items.push(...page.body.items);
    token = page.body.next_page_token;
  } while (token);
  return items;
}
