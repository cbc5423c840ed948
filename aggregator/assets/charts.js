// Charts and maps: uPlot (a classic script loaded before the modules, the
// global `uPlot`) with time axes as staff in China write dates, the trends,
// the streams, the accelerator heatmap and the province map.
import { t, lang, fmtTime, fmtFlops } from "./i18n.js";
import { el } from "./dom.js";

window.suanliCharts = {}; // name -> uPlot, for tests and the curious

// The provinces as a tile grid (a cartogram: one tile each, placed roughly
// where it lies, no boundary data to review), keyed by GB/T 2260 code:
// [code, 简称, English, row, column].
const PROVINCES = [
  ["23", "黑", "HL", 0, 7], ["22", "吉", "JL", 1, 7], ["15", "内蒙古", "NM", 1, 5], ["65", "新", "XJ", 2, 0],
  ["11", "京", "BJ", 2, 5], ["12", "津", "TJ", 2, 6], ["21", "辽", "LN", 2, 7], ["62", "甘", "GS", 3, 2],
  ["64", "宁", "NX", 3, 3], ["14", "晋", "SX", 3, 4], ["13", "冀", "HE", 3, 5], ["37", "鲁", "SD", 3, 6],
  ["54", "藏", "XZ", 4, 0], ["63", "青", "QH", 4, 1], ["61", "陕", "SN", 4, 3], ["41", "豫", "HA", 4, 4],
  ["34", "皖", "AH", 4, 5], ["32", "苏", "JS", 4, 6], ["31", "沪", "SH", 4, 7], ["51", "川", "SC", 5, 2],
  ["50", "渝", "CQ", 5, 3], ["42", "鄂", "HB", 5, 4], ["36", "赣", "JX", 5, 5], ["33", "浙", "ZJ", 5, 6],
  ["53", "滇", "YN", 6, 2], ["52", "黔", "GZ", 6, 3], ["43", "湘", "HN", 6, 4], ["35", "闽", "FJ", 6, 5],
  ["71", "台", "TW", 6, 7], ["45", "桂", "GX", 7, 3], ["44", "粤", "GD", 7, 4], ["81", "港", "HK", 7, 5],
  ["46", "琼", "HI", 8, 3], ["82", "澳", "MO", 8, 4],
];

// The subtree's capacity by province on the tile grid, shaded by the
// FP32-equivalent total; each tile's title gives its figures.
export function provinceMap(byProvince) {
  const max = Math.max(1, ...Object.values(byProvince).map((p) => p.headline.fp32_equivalent_gflops));
  const tiles = PROVINCES.map(([code, zh, en, row, col]) => {
    const p = byProvince[code];
    const share = p ? p.headline.fp32_equivalent_gflops / max : 0;
    const title = p
      ? `${lang === "zh" ? zh : en} (${code})\n${t("intelligent_fp16")}: ${fmtFlops(p.headline.intelligent_fp16_gflops)}\n${t("general_fp32")}: ${fmtFlops(p.headline.general_fp32_gflops)}\n${t("resources_total")}: ${Object.values(p.resources).reduce((a, b) => a + b, 0)}`
      : `${lang === "zh" ? zh : en} (${code})`;
    const tile = el("div", { class: "tile" + (p ? " has" : ""), "data-province": code, title },
      el("span", { class: "name" }, lang === "zh" ? zh : en), p ? el("span", { class: "v" }, fmtFlops(p.headline.fp32_equivalent_gflops)) : null);
    // Through the CSSOM: the CSP allows no style attributes.
    tile.style.gridRow = String(row + 1);
    tile.style.gridColumn = String(col + 1);
    tile.style.setProperty("--share", share.toFixed(3));
    return tile;
  });
  return el("div", { class: "province-map", id: "province-map" }, tiles);
}

// The subtree's AI capacity (registered, available) and accelerator
// utilization over time, from the stored resource reports: the last 24 hours
// (a point every 5 minutes) or the last 30 days (hourly rollups' means).
export function trendCharts(trend, span) {
  const box = (id, title) => el("div", { class: "chart", id }, el("h3", {}, title));
  const capacity = box(`chart-trend-capacity-${span}`, t("fp16_trend"));
  const utilization = box(`chart-trend-util-${span}`, t("accel_util"));
  const parts = [el("h2", {}, t(span === "30d" ? "trend_30d" : "trend_24h")), el("div", { class: "charts" }, capacity, utilization)];
  const points = trend.points;
  for (const b of [capacity, utilization]) b.dataset.points = String(points.length);
  if (points.length < 2) {
    for (const b of [capacity, utilization]) b.append(el("div", { class: "none" }, t("no_trend")));
    return parts;
  }
  const x = points.map((p) => p.period_start_ms / 1000);
  const pflops = (g) => g / 1e6;
  const name = span === "30d" ? "30d" : "";
  window.suanliCharts["trendCapacity" + name] = new uPlot({
    width: 420, height: 180, axes: [timeAxis(), {}],
    series: [timeSeries(), { label: t("fp16_registered"), stroke: "#c8102e", width: 1.5 }, { label: t("fp16_available"), stroke: "#1a7f37", width: 1.5 }],
  }, [x, points.map((p) => pflops(p.headline.intelligent_fp16_gflops)), points.map((p) => pflops(p.available_intelligent_fp16_gflops))], capacity);
  window.suanliCharts["trendUtil" + name] = new uPlot({
    width: 420, height: 180, axes: [timeAxis(), {}], scales: { y: { range: [0, 100] } },
    series: [timeSeries(),
      { label: t("accel_util"), stroke: "#0969da", width: 1.5 },
      { label: t("online_share"), stroke: "#8250df", width: 1, dash: [4, 3] }],
  }, [x, points.map((p) => (p.accelerator_utilization_permille == null ? null : p.accelerator_utilization_permille / 10)),
    points.map((p) => (p.accelerators_online_permille == null ? null : p.accelerators_online_permille / 10))], utilization);
  return parts;
}

// Time axes and legends as staff in China write dates (2026-12-07 01:42):
// hours and minutes on an axis of a day or two, month and day beyond.
export const timeAxis = () => ({
  space: 70,
  values: (u, ticks) => {
    const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
    // Days over two days, seconds under ten minutes, else hours and minutes.
    return ticks.map((s) => (span > 2 * 86400 ? fmtTime(s * 1000).slice(5, 10) : fmtTime(s * 1000, span < 600).slice(11)));
  },
});
export const timeSeries = () => ({ label: t("time"), value: (u, s) => (s == null ? "—" : fmtTime(s * 1000)) });

// The hourly streams over the last 7 days, summed over the subtree: one
// chart each (flows 8–10), a point an hour.
const STREAM_SERIES = {
  scheduling: [["selections_requested", "", "#0969da"], ["selections_matched", "", "#1a7f37"], ["selections_cross_region", "", "#bf8700"]],
  platform: [["api_calls", null, "#0969da"], ["api_client_errors", null, "#bf8700"], ["api_server_errors", null, "#c8102e"], ["sign_ins_failed", "", "#8250df"]],
  application: [["api_key_calls", null, "#0969da"], ["api_keys_active", "", "#1a7f37"]],
};
export function streamCharts(series) {
  const boxes = Object.entries(series).map(([stream, data]) => {
    const box = el("div", { class: "chart", id: `chart-stream-${stream}` }, el("h3", {}, t("stream_" + stream)));
    box.dataset.points = String(data.points.length);
    if (data.points.length < 2) {
      box.append(el("div", { class: "none" }, t("no_trend")));
      return box;
    }
    // A label of null sums the figure over its labels (route classes).
    const value = (p, name, label) => p.figures.filter((f) => f.name === name && (label === null || f.label === label)).reduce((a, f) => a + f.value, 0);
    const lines = STREAM_SERIES[stream];
    window.suanliCharts["stream_" + stream] = new uPlot({
      width: 420, height: 180, axes: [timeAxis(), {}],
      series: [timeSeries(), ...lines.map(([name, , stroke]) => ({ label: t("fig_" + name), stroke, width: 1.5 }))],
    }, [data.points.map((p) => p.period_start_ms / 1000), ...lines.map(([name, label]) => data.points.map((p) => value(p, name, label)))], box);
    return box;
  });
  return [el("h2", {}, t("streams_7d")), el("div", { class: "charts" }, boxes)];
}

// This node's accelerators, a block of cells per host (by region, then
// hostname), shaded from idle (pale) to hot (red); grey: no reading. One
// canvas, so a node of thousands of hosts draws at once.
export function heatmap(data) {
  const parts = [el("h2", {}, t("heatmap"), data.truncated ? ` (${data.hosts.length} / ${data.hosts_total})` : "")];
  if (!data.hosts.length) return [...parts, el("p", { class: "note", id: "heatmap" }, t("no_accelerators"))];
  const cell = 10, gap = 1, perRow = 8;
  const blockW = (cell + gap) * perRow + 6;
  const blockH = (rows) => (cell + gap) * rows + 6;
  const width = Math.min(1200, Math.max(blockW, data.hosts.length * blockW));
  const columns = Math.max(1, Math.floor(width / blockW));
  const tallest = Math.max(...data.hosts.map((h) => Math.ceil(h.utilization_percent.length / perRow)));
  const canvas = el("canvas", { id: "heatmap", width, height: Math.ceil(data.hosts.length / columns) * blockH(tallest) });
  canvas.dataset.cells = String(data.hosts.reduce((n, h) => n + h.utilization_percent.length, 0));
  const ctx = canvas.getContext("2d");
  const at = (i) => [(i % columns) * blockW, Math.floor(i / columns) * blockH(tallest)];
  data.hosts.forEach((h, i) => {
    const [x0, y0] = at(i);
    h.utilization_percent.forEach((u, g) => {
      ctx.fillStyle = u == null ? "#d0d7de" : `hsl(${Math.round(120 - 120 * Math.min(u, 100) / 100)}, 70%, ${Math.round(85 - 35 * Math.min(u, 100) / 100)}%)`;
      ctx.fillRect(x0 + (g % perRow) * (cell + gap), y0 + Math.floor(g / perRow) * (cell + gap), cell, cell);
    });
  });
  canvas.addEventListener("mousemove", (ev) => {
    const i = Math.floor(ev.offsetY / blockH(tallest)) * columns + Math.floor(ev.offsetX / blockW);
    const h = data.hosts[i];
    if (!h) { canvas.title = ""; return; }
    const [x0, y0] = at(i);
    const g = Math.floor((ev.offsetY - y0) / (cell + gap)) * perRow + Math.floor((ev.offsetX - x0) / (cell + gap));
    const u = h.utilization_percent[g];
    canvas.title = `${h.hostname} (${h.region}) · ${t(h.state)}` + (g < h.utilization_percent.length ? ` · #${g}: ${u == null ? "—" : u + " %"}` : "");
  });
  return [...parts, canvas];
}
