// Dedicated lines: registering one, and opening or closing them.
import { t } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

export async function lines(main) {
  const data = await api("GET", "/api/v1/lines");
  const mayRegister = ["admin", "line_provider"].includes(session.me.role);
  const own = session.me.provider && session.me.provider.code;
  const out = el("div", {});
  const input = (name, label, attrs) => el("label", {}, label, el("input", { name, required: true, ...attrs }));
  const form = el("form", { class: "inline", id: "line-form" },
    session.me.role === "admin" ? input("provider", t("provider"), { size: 8 }) : null,
    input("name", t("line_name"), { size: 12 }),
    input("from_region", t("from_region"), { size: 6, maxlength: 6 }),
    input("to_region", t("to_region"), { size: 6, maxlength: 6 }),
    input("latency_ms", t("latency_ms"), { type: "number", min: 0, step: "any", size: 5 }),
    input("bandwidth_mbps", t("bandwidth_mbps"), { type: "number", min: 1, size: 7 }),
    el("label", {}, t("price_month"), el("input", { name: "price_per_mbps_month", size: 6 })),
    el("button", { class: "primary", type: "submit", id: "line-submit" }, t("register_line")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    const body = { name: f.name, from_region: f.from_region, to_region: f.to_region, latency_ms: Number(f.latency_ms), bandwidth_mbps: Number(f.bandwidth_mbps) };
    if (f.price_per_mbps_month) body.price_per_mbps_month = f.price_per_mbps_month;
    if (f.provider) body.provider = f.provider;
    try { await api("POST", "/api/v1/lines", body); route(); } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  const stateCellFor = (l) => {
    if (!(session.me.role === "admin" || (session.me.role === "line_provider" && l.provider === own))) return el("td", {}, t("state_" + l.state));
    const pick = el("select", { class: "line-state", onchange: async (ev) => {
      try { await api("PATCH", "/api/v1/lines/" + l.id, { state: ev.target.value }); route(); } catch (e) { out.replaceChildren(errorBox(e)); }
    } }, ["open", "maintenance", "closed"].map((v) => el("option", { value: v, selected: v === l.state }, t("state_" + v))));
    return el("td", {}, pick);
  };
  const rows = data.lines.map((l) => el("tr", { class: "line-row" }, el("td", { class: "mono" }, `${l.provider}-L${String(l.id).padStart(6, "0")}`), el("td", { translate: "no" }, l.name),
    el("td", {}, l.from_region + " → " + l.to_region), el("td", {}, (l.latency_us / 1000).toFixed(1)), el("td", {}, l.bandwidth_mbps),
    el("td", {}, l.price_per_mbps_month || "—"), stateCellFor(l)));
  main.append(el("h1", {}, t("lines")), el("p", { class: "note" }, t("lines_note")), mayRegister ? form : "", out,
    table([t("identifier"), t("line_name"), t("region"), t("latency_ms"), t("bandwidth_mbps"), t("price_month"), t("state")], rows));
}
