// The overview: 算力规模 first; for staff the subtree's reports, trends,
// heatmap, last hour and streams; then alerts, child nodes, hosts and capacity.
import { t, fmtTime, fmtBytes, fmtFlops, fmtPct } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table } from "../dom.js";
import { seesAlerts, listsHosts } from "../roles.js";
import { provinceMap, trendCharts, streamCharts, heatmap } from "../charts.js";

// The last hour's platform and scheduling counts over the subtree.
function hourCards(platform, scheduling) {
  const value = (r, name, label = "") => (r.figures.find((f) => f.name === name && f.label === label) || {}).value;
  // A count the report leaves out is none (no selection matched yet).
  const share = (a, b) => (b ? fmtPct((100 * (a ?? 0)) / b) : "—");
  const card = (n, l, id) => el("div", { class: "card", id }, el("div", { class: "n" }, n ?? "—"), el("div", { class: "l" }, l));
  const requested = value(scheduling, "selections_requested");
  return [
    el("h2", {}, t("last_hour"), " · ", fmtTime(scheduling.period_start_ms)),
    el("div", { class: "cards", id: "hour-cards" },
      card(requested, t("selections_requested"), "hour-selections"),
      card(share(value(scheduling, "selections_matched"), requested), t("matched_rate")),
      card(share(value(scheduling, "selections_cross_region"), value(scheduling, "selections_with_user_region")), t("cross_region")),
      card(value(platform, "registrations_submitted"), t("registrations_submitted")),
      card(value(platform, "sign_ins_failed"), t("sign_ins_failed"), "hour-sign-ins-failed"),
      card(value(platform, "enrollments_refused"), t("enrollments_refused"))),
  ];
}

export async function overview(main) {
  // Every call at once: the page waits for the slowest, not for the sum.
  const staff = ["admin", "operator", "viewer"].includes(session.me.role);
  const get = (path, wanted = true) => (wanted ? api("GET", path) : Promise.resolve(null));
  const [s, alerts, market, trend24, trend30, heat, platformHour, schedulingHour, series, tree] = await Promise.all([
    get("/api/v1/summary"),
    get("/api/v1/alerts?state=firing&limit=1000", seesAlerts(session.me.role)),
    get("/api/v1/reports", staff),
    get("/api/v1/reports/trend?hours=24", staff),
    get("/api/v1/reports/trend?days=30", staff),
    get("/api/v1/heatmap", staff),
    get("/api/v1/reports?stream=platform", staff),
    get("/api/v1/reports?stream=scheduling", staff),
    staff ? Promise.all(["scheduling", "platform", "application"].map(async (stream) =>
      [stream, await api("GET", `/api/v1/reports/figures?stream=${stream}&days=7`)])).then(Object.fromEntries) : null,
    get("/api/v1/nodes", staff),
  ]);
  const card = (n, l, id) => el("div", { class: "card", id }, el("div", { class: "n" }, n), el("div", { class: "l" }, l));
  // A count opens the hosts list for those who may list hosts.
  const hostsLink = (state, c) => (listsHosts(session.me.role) ? el("a", { href: "#/hosts?state=" + state }, c) : c);
  let alertCards = null;
  if (alerts) {
    const firing = alerts.alerts;
    const n = (sev) => firing.filter((a) => a.severity === sev).length;
    alertCards = el("div", { class: "cards" },
      el("a", { href: "#/alerts" }, card(n("critical"), t("alerts_firing") + " · " + t("critical"), "alerts-critical")),
      el("a", { href: "#/alerts" }, card(n("warning"), t("alerts_firing") + " · " + t("warning"), "alerts-warning")),
      el("a", { href: "#/alerts" }, card(n("info"), t("alerts_firing") + " · " + t("info"), "alerts-info")));
  }
  // 算力规模 leads: over the subtree for staff (the latest period every
  // node reported), this node's own now for everyone else.
  const h = market ? market.headline : s.headline;
  const scaleCards = el("div", { class: "cards scale" },
    card(fmtFlops(h.intelligent_fp16_gflops), t("intelligent_fp16"), "scale-intelligent"),
    card(fmtFlops(h.general_fp32_gflops), t("general_fp32"), "scale-general"),
    card(fmtFlops(h.supercomputing_fp64_gflops), t("supercomputing_fp64"), "scale-supercomputing"),
    card(fmtFlops(h.fp32_equivalent_gflops), t("fp32_equivalent"), "scale-fp32-equivalent"));
  const unrated = market
    ? Object.entries(market.scale.by_type).map(([type, p]) => [type, (p[type === "A" ? "fp16" : type === "H" ? "fp64" : "fp32"] || {}).unrated || 0])
    : Object.entries(s.unrated || {});
  const unratedCount = unrated.reduce((n, [, u]) => n + u, 0);
  let marketParts = [];
  if (market) {
    marketParts = [
      el("p", { class: "note", id: "scale-period" }, `${t("period")}: ${fmtTime(market.period_start_ms, true)} · ${market.period_ms / 1000} s · `,
        market.complete ? t("complete") : `${t("missing")}: ${market.missing.join(", ")}`),
      Object.keys(market.by_province).length ? provinceMap(market.by_province) : null,
      market.origins.length > 1 ? table([t("reported_by"), t("via"), t("intelligent_fp16"), t("general_fp32"), t("resources_total")],
        market.origins.map((o) => el("tr", { "data-origin": o.origin },
          el("td", { class: "mono" }, o.origin), el("td", { class: "mono" }, o.via || t("this_node")),
          el("td", {}, fmtFlops(o.headline.intelligent_fp16_gflops)), el("td", {}, fmtFlops(o.headline.general_fp32_gflops)),
          el("td", {}, Object.values(o.resources).reduce((a, b) => a + b, 0))))) : null,
      ...trendCharts(trend24, "24h"),
      ...trendCharts(trend30, "30d"),
      ...heatmap(heat),
      ...hourCards(platformHour, schedulingHour),
      ...streamCharts(series),
      market.refusals.length ? el("p", { class: "error", id: "refused-reports" }, `${t("refused_reports")}: ${market.refusals.length} · ${market.refusals[0].origin}: ${market.refusals[0].reason}`) : null,
    ];
  }
  let treeCards = null;
  if (staff) {
    const n = tree;
    treeCards = el("div", { class: "cards" },
      el("a", { href: "#/nodes" }, card(n.identifiers.own, t("own_ids"), "own-ids")),
      el("a", { href: "#/nodes" }, card(n.identifiers.subtree, t("subtree_ids"), "overview-subtree-ids")),
      el("a", { href: "#/nodes" }, card(n.children.filter((c) => c.link === "connected").length + " / " + n.children.filter((c) => c.state === "approved").length, t("nodes") + " · " + t("connected"))));
  }
  // `append` writes a null as the text "null": what a role does not see is left out.
  main.append(...[
    el("h1", {}, t("overview")),
    el("h2", {}, market ? t("scale_subtree") : t("scale")),
    scaleCards,
    unratedCount ? el("p", { class: "note", id: "scale-unrated" }, `${unratedCount} ${t("unrated_note")}`) : null,
    ...marketParts,
    alertCards,
    treeCards,
    el("div", { class: "cards" },
      hostsLink("online", card(s.hosts.online, t("online"), "hosts-online")),
      hostsLink("stale", card(s.hosts.stale, t("stale_card"))),
      hostsLink("offline", card(s.hosts.offline, t("offline_card"))),
      card(s.resources_total, t("resources_total")), card(s.connected_agents, t("agents")),
      card(s.capacity.logical_cpus, t("cpus")), card(fmtBytes(s.capacity.memory_bytes), t("memory")),
      card(fmtPct(s.mean_cpu_utilization_percent), t("cpu_util"))),
    el("h2", {}, t("by_type")),
    table([t("type"), t("total"), t("online"), t("free_now"), t("util")],
      s.by_resource_type.map((r) => el("tr", {}, el("td", {}, r.key), el("td", {}, r.total), el("td", {}, r.online), el("td", {}, r.free_now), el("td", {}, fmtPct(r.mean_utilization_percent))))),
    el("h2", {}, t("by_model")),
    table([t("model"), t("total"), t("online"), t("free_now"), t("memory"), t("util")],
      s.by_accelerator_model.map((r) => el("tr", {}, el("td", {}, r.key), el("td", {}, r.total), el("td", {}, r.online), el("td", {}, r.free_now), el("td", {}, fmtBytes(r.memory_bytes)), el("td", {}, fmtPct(r.mean_utilization_percent))))),
  ].filter((part) => part !== null));
}
