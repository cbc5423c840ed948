// Hosts: the list (every state, filtered, a hundred to a page) and a host's
// page (facts, holds, accelerators, charts from history that then go on live).
import { t, tOr, fmtTime, fmtBytes } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox, stateCell, healthCell } from "../dom.js";
import { timeAxis, timeSeries } from "../charts.js";
import { route } from "../app.js";

// Every host in every state (enrolled and never seen, revoked), filtered,
// a hundred to a page.
async function hostList(main, params) {
  const q = new URLSearchParams(params);
  const states = ["online", "stale", "offline", "enrolled", "revoked"];
  const form = el("form", { class: "inline", id: "host-filter" },
    el("label", {}, t("hostname_or_id"), el("input", { name: "q", value: q.get("q") || "", size: 16 })),
    el("label", {}, t("state"), el("select", { name: "state" }, el("option", { value: "" }, t("any")), states.map((s) => el("option", { value: s, selected: q.get("state") === s }, t(s))))),
    el("label", {}, t("provider"), el("input", { name: "provider", value: q.get("provider") || "", size: 8 })),
    el("label", {}, t("region"), el("input", { name: "region", value: q.get("region") || "", size: 6 })),
    el("label", {}, t("model"), el("input", { name: "model", value: q.get("model") || "", size: 10 })),
    el("button", { class: "primary", type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.hash = "#/hosts?" + next.toString();
  });
  const ask = new URLSearchParams(q);
  ask.set("limit", "100");
  const data = await api("GET", "/api/v1/hosts?" + ask.toString());
  const rows = data.hosts.map((h) => el("tr", { "data-host": String(h.host_id) },
    el("td", { translate: "no" }, el("a", { href: "#/hosts/" + h.host_id, class: "host-row-link" }, h.hostname)),
    stateCell(h.state), el("td", { translate: "no" }, h.provider), el("td", {}, h.region || "—"),
    el("td", { class: "mono" }, h.identifier || "—"), el("td", {}, h.resources.length),
    el("td", {}, fmtTime(h.last_seen_ms)), el("td", {}, h.link.rtt_us == null ? "—" : (h.link.rtt_us / 1000).toFixed(1) + " ms")));
  main.append(el("h1", {}, t("hosts")), form,
    rows.length ? table([t("hostname"), t("state"), t("provider"), t("region"), t("identifier"), t("resource_count"), t("last_seen"), t("rtt")], rows)
      : el("p", { class: "note", id: "no-hosts" }, t("no_hosts")));
  const nav = el("p", {});
  if (q.get("cursor")) { const first = new URLSearchParams(q); first.delete("cursor"); nav.append(el("a", { href: "#/hosts?" + first }, t("first")), " "); }
  if (data.next_cursor) { const next = new URLSearchParams(q); next.set("cursor", data.next_cursor); nav.append(el("a", { href: "#/hosts?" + next, id: "hosts-next" }, t("next"))); }
  main.append(nav);
}

// Any range from 1 hour to 30 days, in days and hours.
function customRange(id, hours) {
  const days = el("input", { type: "number", name: "days", min: 0, max: 30, value: Math.floor(hours / 24), size: 3, "aria-label": t("days") });
  const rest = el("input", { type: "number", name: "hours", min: 0, max: 23, value: hours % 24, size: 3, "aria-label": t("hours") });
  const form = el("form", { class: "inline", id: "custom-range" }, days, " ", t("days"), " ", rest, " ", t("hours"), " ",
    el("button", { type: "submit" }, t("show")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const total = Math.min(720, Math.max(1, 24 * (Number(days.value) || 0) + (Number(rest.value) || 0)));
    location.hash = `#/hosts/${encodeURIComponent(id)}?hours=${total}`;
  });
  return form;
}

export async function hosts(main, params, id) {
  if (!id) return hostList(main, params);
  // The charts open with the range's history; the last hour goes on live.
  // 1 h to 30 days, whole hours: the four ranges or any other (custom).
  const asked = Number(new URLSearchParams(params).get("hours"));
  const hours = Number.isInteger(asked) && asked >= 1 && asked <= 720 ? asked : 1;
  const base = "/api/v1/hosts/" + encodeURIComponent(id);
  const [h, hist] = await Promise.all([api("GET", base), api("GET", base + "/history?hours=" + hours)]);
  const inv = h.inventory || {};
  const cpu = inv.cpu || {};
  const os = inv.os || {};
  main.append(el("h1", {}, t("host_detail"), " · ", el("span", { translate: "no" }, h.hostname)),
    el("dl", { class: "facts" },
      el("dt", {}, t("identifier")), el("dd", { class: "mono", id: "host-identifier" }, h.identifier || "—"),
      el("dt", {}, t("provider")), el("dd", { translate: "no" }, h.provider.code + " " + h.provider.name),
      el("dt", {}, t("state")), el("dd", { class: "state-" + h.state, id: "host-state" }, t(h.state)),
      el("dt", {}, t("cpu_model")), el("dd", { translate: "no" }, (cpu.modelName || "—") + " × " + (cpu.logicalCpus || "?")),
      el("dt", {}, t("memory")), el("dd", {}, fmtBytes(inv.memoryTotalBytes ? Number(inv.memoryTotalBytes) : null)),
      el("dt", {}, t("os")), el("dd", { translate: "no" }, [os.name, os.version, os.kernelVersion].filter(Boolean).join(" · ") || "—"),
      el("dt", {}, t("rtt")), el("dd", {}, h.link.rtt_us == null ? "—" : (h.link.rtt_us / 1000).toFixed(2) + " ms"),
      el("dt", {}, t("samples")), el("dd", { id: "sample-count" }, "0")),
    el("p", { class: "ranges", id: "history-range" }, t("range"), ": ",
      ...[[1, "range_1h"], [24, "range_24h"], [168, "range_7d"], [720, "range_30d"]].map(([n, k]) =>
        el("a", { href: `#/hosts/${encodeURIComponent(id)}?hours=${n}`, class: n === hours ? "active" : "", "data-hours": n }, t(k))),
      " · ", customRange(id, hours)),
    el("p", { class: "note" }, hours === 1 ? t("live_note") : t("history_note")));
  if (h.holds.length) {
    main.append(el("h2", {}, t("holds_on_host")), table([t("identifier"), t("reservation"), t("holder"), t("held_until")],
      h.holds.map((x) => el("tr", { class: "hold-row" }, el("td", { class: "mono" }, x.identifier), el("td", { class: "mono" }, x.reservation),
        el("td", { translate: "no" }, x.holder), el("td", {}, fmtTime(x.until_ms))))));
  }
  const accels = h.resources.filter((r) => r.resource_type === "A");
  if (accels.length) {
    const manager = ["admin", "operator"].includes(session.me.role);
    main.append(el("h2", {}, t("accelerators")), table(
      [t("identifier"), t("model"), t("memory"), t("health"), t("throttle"), t("ecc"), t("remapped"), t("xids"), t("nvlink"), t("processes"), ""],
      accels.map((r) => {
        const g = r.live || {};
        const f = r.faults || { recent: [], counts: {} };
        const xids = Object.entries(f.counts || {}).map(([code, n]) => `XID ${code} ×${n}`).join(", ");
        const remap = g.remapped_rows_failure ? t("remap_failed") : g.remapped_rows_pending ? t("remap_pending") : "—";
        const action = manager && !r.selectable
          ? el("button", { class: "mark-healthy", onclick: async (ev) => {
              const reason = prompt(t("reason"));
              if (!reason) return;
              try { await api("POST", "/api/v1/resources/" + encodeURIComponent(r.identifier) + "/mark-healthy", { reason }); route(); }
              catch (e) { ev.target.after(errorBox(e)); }
            } }, t("mark_healthy"))
          : null;
        return el("tr", { class: "accelerator", "data-identifier": r.identifier },
          el("td", { class: "mono" }, r.identifier), el("td", {}, r.model || "—"), el("td", {}, fmtBytes(r.memory_bytes)),
          healthCell(r), el("td", {}, (g.throttle_reasons || []).map((r) => tOr("throttle." + r, r)).join(t("list_sep")) || "—"),
          el("td", {}, g.ecc_uncorrected_volatile ?? "—"), el("td", {}, remap), el("td", {}, xids || "—"),
          el("td", {}, g.nvlink_active == null ? "—" : `${g.nvlink_active}/${g.nvlink_down}`),
          el("td", { class: "mono" }, (g.processes || []).join(", ") || "—"), el("td", {}, action));
      })));
  }
  const gpus = (inv.gpus || []).length;
  // "NPU 3", "GPU 0": each series named as its vendor calls the device.
  const deviceName = (i) => {
    const g = (inv.gpus || [])[i] || {};
    return (g.kind || "ACCELERATOR_KIND_GPU").replace("ACCELERATOR_KIND_", "") + " " + (g.index ?? i);
  };
  const gib = (b) => (b == null ? null : b / 2 ** 30);
  const mib = (b) => (b == null ? null : b / 2 ** 20);
  // Axes that mean something: percentages of the whole, memory against
  // what is installed, and the lines a figure is read against (the host's
  // CPUs for its load, the cards' slowdown temperature and power limit).
  const memTotal = gib(inv.memoryTotalBytes ? Number(inv.memoryTotalBytes) : null);
  const cardTotal = Math.max(0, ...accels.map((r) => gib(r.memory_bytes) || 0)) || null;
  const lowest = (pick) => { const v = accels.map((r) => r.live && pick(r.live)).filter((x) => x != null); return v.length ? Math.min(...v) : null; };
  const slowdown = lowest((g) => g.slowdown_temperature_celsius);
  const powerLimit = lowest((g) => g.power_limit_watts);
  // A chart's series: its name, its value in a live sample, its values in the history.
  const one = (label, live, past) => [{ label, live, past }];
  const perDevice = (live, past) => Array.from({ length: gpus }, (_, i) => ({
    label: deviceName(i), live: (v) => live(v.gpus[i] || {}), past: (x) => (x.gpus[i] ? past(x.gpus[i]) : []),
  }));
  const specs = [
    { name: "cpu", title: t("cpu_chart"), series: one(t("cpu_chart"), (v) => v.cpu_utilization_percent, (x) => x.cpu_utilization_percent), range: [0, 100] },
    { name: "memory", title: t("mem_chart"), series: one(t("mem_chart"), (v) => gib(v.memory_used_bytes), (x) => x.memory_used_bytes.map(gib)), range: memTotal && [0, memTotal] },
    { name: "load", title: t("load_chart"), series: one(t("load_chart"), (v) => v.load_average_1m, (x) => x.load_average_1m),
      lines: cpu.logicalCpus ? [[t("logical_cpus_line"), cpu.logicalCpus]] : [] },
    { name: "disk", title: t("disk_chart"), series: [
      { label: t("read"), live: (v) => mib(v.disk_read_bytes_per_second), past: (x) => x.disk_read_bytes_per_second.map(mib) },
      { label: t("write"), live: (v) => mib(v.disk_write_bytes_per_second), past: (x) => x.disk_write_bytes_per_second.map(mib) }] },
    { name: "network", title: t("net_chart"), series: [
      { label: t("received"), live: (v) => mib(v.network_rx_bytes_per_second), past: (x) => x.network_rx_bytes_per_second.map(mib) },
      { label: t("sent"), live: (v) => mib(v.network_tx_bytes_per_second), past: (x) => x.network_tx_bytes_per_second.map(mib) }] },
    { name: "temperature", title: t("temp_chart"), series: one(t("temp_chart"), (v) => v.temperature_celsius, (x) => x.temperature_celsius) },
    { name: "gpu_util", gpu: true, title: t("gpu_util_chart"), series: perDevice((g) => g.utilization_percent, (g) => g.gpu_utilization_percent), range: [0, 100] },
    { name: "gpu_mem", gpu: true, title: t("gpu_mem_chart"), series: perDevice((g) => gib(g.memory_used_bytes), (g) => g.gpu_memory_used_bytes.map(gib)), range: cardTotal && [0, cardTotal] },
    { name: "gpu_temp", gpu: true, title: t("gpu_temp_chart"), series: perDevice((g) => g.temperature_celsius, (g) => g.gpu_temperature_celsius),
      lines: slowdown != null ? [[t("slowdown_line"), slowdown]] : [] },
    { name: "gpu_power", gpu: true, title: t("gpu_power_chart"), series: perDevice((g) => g.power_watts, (g) => g.gpu_power_watts),
      lines: powerLimit != null ? [[t("power_limit_line"), powerLimit]] : [] },
  ];
  // Small multiples: each device on its own, utilization and memory as
  // shares of the card, so one busy or full card stands out.
  const pct = (used, total) => (used == null || !total ? null : (100 * used) / total);
  const deviceSpecs = Array.from({ length: gpus }, (_, i) => {
    const total = Number((inv.gpus[i] || {}).memoryTotalBytes) || null;
    return { name: "device-" + i, small: true, title: deviceName(i), range: [0, 100], series: [
      { label: t("util_pct"), live: (v) => (v.gpus[i] || {}).utilization_percent, past: (x) => (x.gpus[i] ? x.gpus[i].gpu_utilization_percent : []) },
      { label: t("memory_pct"), live: (v) => pct((v.gpus[i] || {}).memory_used_bytes, total), past: (x) => (x.gpus[i] ? x.gpus[i].gpu_memory_used_bytes.map((b) => pct(b, total)) : []) }] };
  });
  const COLOURS = ["#c8102e", "#0969da", "#1a7f37", "#9a6700", "#8250df", "#bc4c00", "#1b7c83", "#6e7781"];
  const grid = el("div", { class: "charts" });
  const devices = el("div", { class: "charts small" });
  main.append(grid);
  if (gpus) main.append(el("h2", {}, t("per_device")), devices);
  const charts = [];
  for (const spec of [...specs, ...deviceSpecs]) {
    const box = el("div", { class: "chart", id: "chart-" + spec.name }, el("h3", {}, spec.title));
    (spec.small ? devices : grid).append(box);
    if (spec.gpu && gpus === 0) { box.append(el("div", { class: "none" }, t("no_gpu"))); continue; }
    const lines = spec.lines || [];
    const x = hist.t_ms.map((ms) => ms / 1000);
    const data = [x, ...spec.series.map((s) => (s.past(hist) || []).slice()), ...lines.map(([, value]) => x.map(() => value))];
    const plot = new uPlot({
      // As wide as its box allows: a phone gets a narrower chart, not a wider page.
      width: Math.min(spec.small ? 260 : 400, Math.max(200, box.clientWidth - 16)), height: spec.small ? 120 : 180,
      series: [timeSeries(),
        ...spec.series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % 8], width: 1.5 })),
        ...lines.map(([label]) => ({ label, stroke: "#6e7781", width: 1, dash: [6, 4] }))],
      scales: { x: { time: true }, y: spec.range ? { range: () => spec.range } : {} },
      axes: [timeAxis(), {}],
    }, data, box);
    box.dataset.points = String(data[0].length);
    box.dataset.stored = String(hist.t_ms.length);
    window.suanliCharts[spec.name] = plot;
    charts.push({ spec, lines, plot, data, box });
  }
  if (session.live) session.live.close();
  if (hours !== 1) return;
  session.live = new EventSource("/api/v1/hosts/" + encodeURIComponent(id) + "/live");
  let count = 0;
  session.live.addEventListener("sample", (ev) => {
    const v = JSON.parse(ev.data);
    count += 1;
    document.getElementById("sample-count")?.replaceChildren(String(count));
    for (const c of charts) {
      c.data[0].push(v.collected_at_ms / 1000);
      c.spec.series.forEach((s, i) => c.data[i + 1].push(s.live(v) ?? null));
      c.lines.forEach(([, value], j) => c.data[c.spec.series.length + 1 + j].push(value));
      if (c.data[0].length > 900) for (const s of c.data) s.shift();
      c.plot.setData(c.data);
      c.box.dataset.points = String(c.data[0].length);
    }
  });
}
