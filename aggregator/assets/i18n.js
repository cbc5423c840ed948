// The console's words in both languages (catalog.json, [zh, en] per key),
// the reader's language, and dates and figures as the page writes them.

const catalog = await fetch("/ui/catalog.json");
if (!catalog.ok) throw new Error("catalog.json: " + catalog.status);
const T = await catalog.json();
// Importers read `lang` live; only setLang changes it (and remembers it).
export let lang = localStorage.getItem("suanli.lang") || "zh";
export function setLang(next) {
  lang = next;
  localStorage.setItem("suanli.lang", lang);
}
export const t = (k) => (T[k] ? T[k][lang === "zh" ? 0 : 1] : k);
/** The words for `k`, or `fallback` where the catalog has none (a vendor's new code). */
export const tOr = (k, fallback) => (T[k] ? t(k) : fallback);

// Dates as staff in China write them: 2026-12-07 01:42 (local time).
const pad2 = (n) => String(n).padStart(2, "0");
export const fmtTime = (ms, seconds) => {
  if (!ms) return "—";
  const d = new Date(ms);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}` + (seconds ? `:${pad2(d.getSeconds())}` : "");
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
};
export const fmtBytes = (b) => (b == null ? "—" : b >= 2 ** 40 ? (b / 2 ** 40).toFixed(1) + " TiB" : (b / 2 ** 30).toFixed(1) + " GiB");

// GFLOPS in the unit that reads best: E/P/T/GFLOPS, three significant digits.
export const fmtFlops = (g) => {
  if (g == null) return "—";
  if (g === 0) return "0";
  const [v, u] = g >= 1e9 ? [g / 1e9, "EFLOPS"] : g >= 1e6 ? [g / 1e6, "PFLOPS"] : g >= 1e3 ? [g / 1e3, "TFLOPS"] : [g, "GFLOPS"];
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + " " + u;
};
export const fmtPct = (p) => (p == null ? "—" : p.toFixed(1) + " %");
