// The audit log, filtered by actor, action, subject and time.
import { t, fmtTime } from "../i18n.js";
import { api } from "../api.js";
import { el, table } from "../dom.js";

export async function audit(main, params) {
  const q = new URLSearchParams(params);
  // Times are typed and shown as the page's local time; the API takes milliseconds.
  const toMs = (v) => (v ? String(new Date(v).getTime()) : "");
  const toInput = (ms) => (ms ? fmtTime(Number(ms)).replace(" ", "T").slice(0, 16) : "");
  const form = el("form", { class: "inline", id: "audit-filter" },
    el("label", {}, t("actor"), el("input", { name: "actor", value: q.get("actor") || "", size: 12 })),
    el("label", {}, t("action_prefix"), el("input", { name: "action", value: q.get("action") || "", size: 16 })),
    el("label", {}, t("subject_contains"), el("input", { name: "subject", value: q.get("subject") || "", size: 16 })),
    el("label", {}, t("since"), el("input", { name: "since", type: "datetime-local", value: toInput(q.get("since")) })),
    el("label", {}, t("until"), el("input", { name: "until", type: "datetime-local", value: toInput(q.get("until")) })),
    el("button", { class: "primary", type: "submit" }, t("filter")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, k === "since" || k === "until" ? toMs(v) : v);
    location.hash = "#/audit?" + next.toString();
  });
  if (!q.get("limit")) q.set("limit", "200");
  const data = await api("GET", "/api/v1/audit?" + q.toString());
  const older = new URLSearchParams(q);
  if (data.next_before != null) older.set("before", data.next_before);
  main.append(el("h1", {}, t("audit")), form,
    data.entries.length ? table([t("when"), t("actor"), t("action"), t("subject"), t("detail"), t("address")],
      data.entries.map((e) => el("tr", { class: "audit-entry" }, el("td", { class: "nowrap" }, fmtTime(e.at_ms)), el("td", { translate: "no" }, e.actor), el("td", { class: "mono" }, e.action), el("td", { class: "mono" }, e.subject), el("td", { translate: "no" }, e.detail), el("td", { class: "mono" }, e.address))))
      : el("p", { class: "none" }, t("no_entries")),
    data.next_before != null ? el("a", { href: "#/audit?" + older.toString(), id: "audit-older" }, t("older")) : "");
}
