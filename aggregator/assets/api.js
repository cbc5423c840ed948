// The signed-in session and the one way the page calls /api/v1.
import { lang } from "./i18n.js";

// Shared through one object: importers cannot assign an exported `let`.
export const session = {
  me: null, // {login, role, provider, csrf_token}
  live: null, // the open EventSource, if any
  refresh: null, // the overview's refresh timer
};

export async function api(method, path, body) {
  // What the server words itself (alert summaries, reasons) comes in the page's language.
  const headers = { "Accept-Language": lang === "zh" ? "zh-CN" : "en" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.me && session.me.csrf_token) headers["X-CSRF-Token"] = session.me.csrf_token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error((data && (data.detail + (data.errors ? "\n" + data.errors.map((e) => e.field + ": " + e.message).join("\n") : ""))) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}
