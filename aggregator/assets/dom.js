// Building the page: everything shown is made of DOM nodes and textContent,
// never HTML strings, so names and identifiers from the API cannot inject
// markup. Elements, sortable tables, error notes, state and health cells.
import { t } from "./i18n.js";

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const stateCell = (s) => el("td", { class: "state-" + s }, s ? t(s) : "—");
export const healthCell = (r) => el("td", { class: "health health-" + r.health, title: (r.health_reasons || []).join("\n") }, t(r.health),
  r.health_reasons && r.health_reasons.length ? el("div", { class: "reasons" }, r.health_reasons.join("; ")) : null);

export function table(headers, rows) {
  const tbody = el("tbody", {}, rows);
  const head = el("tr", {}, headers.map((h, i) => el("th", { onclick: () => sortBy(tbody, i) }, h)));
  // A wide table scrolls inside its box; the page itself never does.
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), tbody));
}

function sortBy(tbody, column) {
  const rows = [...tbody.rows];
  const dir = tbody.dataset.sorted === String(column) ? -1 : 1;
  rows.sort((a, b) => dir * a.cells[column].textContent.localeCompare(b.cells[column].textContent, undefined, { numeric: true }));
  tbody.dataset.sorted = dir === 1 ? String(column) : "";
  tbody.replaceChildren(...rows);
}

export function errorBox(e) {
  return el("p", { class: "error", role: "alert" }, e.message || String(e));
}
