// The resources page: every resource, filtered, a page at a time.
import { t, lang, fmtTime } from "../i18n.js";
import { api } from "../api.js";
import { el, table, stateCell, healthCell } from "../dom.js";

export async function resources(main, params) {
  const q = new URLSearchParams(params);
  const form = el("form", { class: "inline", id: "resource-filter" },
    el("label", {}, t("identifier") + " / " + t("hostname"), el("input", { name: "q", value: q.get("q") || "" })),
    el("label", {}, t("type"), el("select", { name: "type" }, el("option", { value: "" }, t("any")), ["C", "A", "H"].map((c) => el("option", { value: c, selected: q.get("type") === c }, c)))),
    el("label", {}, t("model"), el("input", { name: "model", value: q.get("model") || "", size: 10 })),
    el("label", {}, t("region"), el("input", { name: "region", value: q.get("region") || "", size: 6 })),
    el("label", {}, t("provider"), el("input", { name: "provider", value: q.get("provider") || "", size: 8 })),
    el("label", {}, t("state"), el("select", { name: "state" }, el("option", { value: "" }, t("any")), ["online", "stale", "offline", "revoked"].map((s) => el("option", { value: s, selected: q.get("state") === s }, t(s))))),
    el("label", {}, t("free_now"), el("select", { name: "free" }, el("option", { value: "" }, t("any")), el("option", { value: "true", selected: q.get("free") === "true" }, t("yes")))),
    el("button", { class: "primary", type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.hash = "#/resources?" + next.toString();
  });
  const data = await api("GET", "/api/v1/resources?" + q.toString());
  const rows = data.resources.map((r) => el("tr", { "data-identifier": r.identifier },
    el("td", { class: "mono" }, el("a", { href: "#/hosts/" + r.host_id, class: "host-link" }, r.identifier)),
    el("td", { translate: "no" }, r.hostname), el("td", {}, r.resource_type_name[lang === "zh" ? "zh" : "en"]), el("td", { translate: "no" }, r.model || "—"),
    el("td", {}, r.provider ? r.provider.code : "—"), el("td", {}, r.region || "—"),
    stateCell(r.state), healthCell(r), el("td", {}, r.free_now == null ? "—" : r.free_now ? t("yes") : t("no")), el("td", {}, fmtTime(r.last_seen_ms))));
  main.append(el("h1", {}, t("resources")), form,
    table([t("identifier"), t("hostname"), t("type"), t("model"), t("provider"), t("region"), t("state"), t("health"), t("free_now"), t("last_seen")], rows));
  const nav = el("p", {});
  if (q.get("cursor")) { const first = new URLSearchParams(q); first.delete("cursor"); nav.append(el("a", { href: "#/resources?" + first }, t("first")), " "); }
  if (data.next_cursor) { const next = new URLSearchParams(q); next.set("cursor", data.next_cursor); nav.append(el("a", { href: "#/resources?" + next }, t("next"))); }
  main.append(nav);
}
