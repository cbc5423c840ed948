// Selection: a demand's form and its answer (candidates, holds, and why
// nothing matched).
import { t, lang, fmtTime } from "../i18n.js";
import { api } from "../api.js";
import { el, table, errorBox, stateCell } from "../dom.js";

export async function selection(main) {
  const out = el("div", { id: "selection-answer" });
  const input = (name, label, attrs) => el("label", {}, label, el("input", { name, ...attrs }));
  const form = el("form", { class: "inline", id: "selection-form" },
    el("label", {}, t("type"), el("select", { name: "resource_type" }, el("option", { value: "" }, t("any")), ["C", "A", "H"].map((c) => el("option", { value: c }, c)))),
    input("model", t("model"), { size: 10, placeholder: "H100" }),
    input("count", t("count"), { type: "number", min: 1, max: 64, size: 4 }),
    input("min_memory_gib", t("min_mem"), { type: "number", min: 1, size: 5 }),
    input("hosts", t("hosts_wanted"), { type: "number", min: 1, max: 256, size: 4 }),
    el("label", {}, t("together"), el("select", { name: "together" }, ["", "region", "provider", "fabric"].map((v) => el("option", { value: v }, t(v ? "together_" + v : "anywhere"))))),
    input("region", t("region_prefix"), { size: 6, placeholder: "44" }),
    input("user_region", t("user_region"), { size: 6, placeholder: "440305" }),
    input("max_latency_ms", t("max_latency"), { type: "number", min: 0, step: "any", size: 5 }),
    input("min_bandwidth_mbps", t("min_bw"), { type: "number", min: 1, size: 7 }),
    input("max_price_per_hour_cny", t("max_price"), { size: 7, inputmode: "decimal" }),
    el("label", {}, t("availability"), el("select", { name: "availability" }, el("option", { value: "free_now" }, t("free_now_opt")), el("option", { value: "installed" }, t("installed")))),
    input("expression", t("expression"), { size: 40, placeholder: "host.cpus >= 64 && gpus.all(g, g.temperature_celsius < 80)" }),
    input("scope", t("scope"), { size: 12, class: "mono", placeholder: "subtree · local · CN.32" }),
    input("deadline_ms", t("deadline"), { type: "number", min: 100, max: 10000, size: 6, placeholder: "3000" }),
    el("button", { class: "primary", type: "submit", id: "selection-submit" }, t("select")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    const demand = { limit: 50 };
    const num = (k) => (f[k] !== "" && f[k] != null ? Number(f[k]) : undefined);
    const accel = {};
    if (f.model) accel.model = f.model;
    if (num("count")) accel.count = num("count");
    if (num("min_memory_gib")) accel.min_memory_gib = num("min_memory_gib");
    if (Object.keys(accel).length) demand.accelerator = accel;
    if (f.resource_type) demand.resource_type = f.resource_type;
    if (num("hosts")) demand.hosts = num("hosts");
    if (f.together) demand.together = f.together;
    for (const k of ["region", "user_region", "expression", "availability", "max_price_per_hour_cny", "scope"]) if (f[k]) demand[k] = f[k];
    for (const k of ["max_latency_ms", "min_bandwidth_mbps", "deadline_ms"]) if (num(k) !== undefined) demand[k] = num(k);
    try { out.replaceChildren(...renderAnswer(await api("POST", "/api/v1/selection", demand))); }
    catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("selection")), form, out);
}

function renderAnswer(a) {
  const parts = [el("p", { id: "selection-summary" }, `${t("matched")}: ${a.matched_hosts} / ${a.considered_hosts} · ${a.elapsed_us} µs`)];
  if (a.partial) parts.push(el("p", { class: "error", id: "selection-partial" }, t("partial_answer")));
  if (a.nodes.length) {
    parts.push(el("h2", {}, t("nodes_asked")), table([t("node"), t("outcome"), t("elapsed"), t("candidates_n"), t("reason")], a.nodes.map((n) =>
      el("tr", { class: "node-outcome" }, el("td", { class: "mono" }, n.node), el("td", { class: "outcome-" + n.outcome }, t("outcome_" + n.outcome)),
        el("td", {}, n.elapsed_ms == null ? "—" : n.elapsed_ms + " ms"), el("td", {}, n.candidates == null ? "—" : String(n.candidates)),
        el("td", {}, n.reason || "")))));
  }
  const held = el("div", { id: "hold-result" });
  parts.push(held);
  // Holding a candidate's accelerators: the node holding them decides.
  const holdButton = (h) => {
    if (!h.resources.some((r) => r.includes("_A_"))) return "";
    const button = el("button", { class: "hold", type: "button" }, t("hold"));
    button.addEventListener("click", async () => {
      try {
        const r = await api("POST", "/api/v1/reservations", { node: h.node, resources: h.resources, request_id: crypto.randomUUID() });
        const release = el("button", { type: "button", id: "hold-release" }, t("release"));
        release.addEventListener("click", async () => {
          try { const e = await api("DELETE", "/api/v1/reservations/" + encodeURIComponent(r.id)); held.replaceChildren(el("p", { class: "notice" }, `${r.id} · ${t("hold_" + e.state)}`)); }
          catch (e) { held.replaceChildren(errorBox(e)); }
        });
        held.replaceChildren(el("p", { class: "notice", id: "hold-notice" }, `${t("held_until")} ${fmtTime(r.expires_at_ms)} · ${r.id} · ${r.resources.join(", ")} `, release));
      } catch (e) { held.replaceChildren(errorBox(e)); }
    });
    return button;
  };
  const rows = [];
  a.candidates.forEach((c, rank) => c.hosts.forEach((h, i) => {
    const path = h.path ? `${h.path.latency_ms.toFixed(1)} ms ≥ ${h.path.bottleneck_mbps} Mb/s` + (h.path.segments.some((s) => s.line_id) ? " · " + t("lines") + " " + h.path.segments.filter((s) => s.line_id).map((s) => s.line_id).join(" → ") : "") : "—";
    rows.push(el("tr", { class: "candidate" }, el("td", {}, i === 0 ? String(rank + 1) : ""), el("td", {}, i === 0 ? c.score.toFixed(3) : ""),
      el("td", { class: "mono" }, h.node), el("td", { class: "mono" }, h.node === a.node ? el("a", { href: "#/hosts/" + h.host_id }, h.identifier || h.hostname) : (h.identifier || h.hostname)),
      el("td", { translate: "no" }, h.hostname), el("td", { translate: "no" }, h.provider), el("td", {}, h.region),
      stateCell(h.state), el("td", {}, h.freshness_ms == null ? "—" : (h.freshness_ms / 1000).toFixed(1) + " s"),
      el("td", { class: "mono" }, h.resources.join("\n")), el("td", {}, path), el("td", {}, h.price_per_hour_cny == null ? "—" : "¥" + h.price_per_hour_cny),
      el("td", { class: "nowrap" }, `${t("part_availability")} ${h.parts.availability.toFixed(2)} · ${t("part_latency")} ${h.parts.latency == null ? "—" : h.parts.latency.toFixed(2)} · ${t("part_load")} ${h.parts.load.toFixed(2)} · ${t("part_price")} ${h.parts.price == null ? "—" : h.parts.price.toFixed(2)}`),
      el("td", {}, c.hosts.length === 1 ? holdButton(h) : "")));
  }));
  if (rows.length) {
    parts.push(table(["#", t("score"), t("node"), t("identifier"), t("hostname"), t("provider"), t("region"), t("state"), t("freshness"), t("resources"), t("path"), t("price_h"), t("score_parts"), ""], rows));
  } else {
    parts.push(el("p", { class: "error" }, t("nothing")), el("h2", {}, t("eliminated")),
      table([t("kind"), t("hosts")], a.eliminated.map((e) => el("tr", {}, el("td", {}, t("constraint_" + e.constraint)), el("td", {}, e.hosts)))),
      el("h2", {}, t("nearest")),
      table([t("hostname"), t("detail")], a.nearest_misses.map((m) => el("tr", {}, el("td", { translate: "no" }, m.hostname), el("td", {}, m.failed.map((f) => t("constraint_" + f.constraint) + (lang === "zh" ? "：" : ": ") + f.detail).join(lang === "zh" ? "；" : "; "))))));
    if (a.groups_short) parts.push(el("p", {}, a.groups_short));
  }
  return parts;
}
