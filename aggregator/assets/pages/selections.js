// The selection log: each selection's demand and what it chose.
import { t, fmtTime } from "../i18n.js";
import { api } from "../api.js";
import { el, table } from "../dom.js";

export async function selections(main, params) {
  const q = new URLSearchParams(params);
  if (!q.get("limit")) q.set("limit", "100");
  const data = await api("GET", "/api/v1/selections?" + q.toString());
  const demand = (d) => Object.entries(d || {}).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" · ");
  const rows = data.selections.map((s) => el("tr", { class: "selection-record" },
    el("td", { class: "nowrap" }, fmtTime(s.at_ms)), el("td", { translate: "no" }, s.actor), el("td", { class: "mono" }, demand(s.demand)),
    el("td", {}, s.matched_hosts), el("td", {}, s.candidates), el("td", { class: "mono" }, Array.isArray(s.chosen) ? s.chosen.join(", ") : "—"),
    el("td", {}, s.no_match ? t("constraint_" + s.no_match) : "—"), el("td", {}, (s.elapsed_us / 1000).toFixed(1))));
  const last = data.selections[data.selections.length - 1];
  main.append(el("h1", {}, t("selections")),
    rows.length ? table([t("when"), t("actor"), t("demand"), t("matched"), t("candidates"), t("chosen"), t("no_match"), t("elapsed_ms")], rows) : el("p", { class: "none" }, t("no_entries")),
    rows.length === Number(q.get("limit")) && last ? el("a", { href: "#/selections?before=" + last.id }, t("older")) : "");
}
