// Alerts: filtered by state and severity, acknowledged or silenced from
// their row, and the silences.
import { t, fmtTime } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

export async function alerts(main, params) {
  const q = new URLSearchParams(params);
  if (!q.get("state")) q.set("state", "firing");
  if (q.get("state") === "all") q.delete("state");
  const manager = session.me.role !== "viewer";
  const form = el("form", { class: "inline", id: "alert-filter" },
    el("label", {}, t("state"), el("select", { name: "state" }, ["firing", "resolved", "all"].map((s) => el("option", { value: s, selected: (q.get("state") || "all") === s }, t(s === "all" ? "state_all" : s))))),
    el("label", {}, t("severity"), el("select", { name: "severity" }, el("option", { value: "" }, t("any")), ["critical", "warning", "info"].map((s) => el("option", { value: s, selected: q.get("severity") === s }, t(s))))),
    el("label", {}, t("resource"), el("input", { name: "resource", value: q.get("resource") || "", size: 24 })),
    el("button", { class: "primary", type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.hash = "#/alerts?" + next.toString();
  });
  // Both at once, and the page drawn whole: a row's silence button fills
  // the form below, which is there when the row is.
  const [data, { silences }] = await Promise.all([api("GET", "/api/v1/alerts?" + q.toString()), api("GET", "/api/v1/silences")]);
  // A firing row is silenced (by which silence), or can be silenced from
  // here: the form below, prefilled with the alert's rule and host.
  const silenceCell = (a) => {
    if (a.silenced_by != null) {
      const label = t("silenced") + " #" + a.silenced_by;
      // To the silence's row below, when the caller may see it (a hash
      // link would leave the page).
      const listed = silences.some((s) => s.id === a.silenced_by);
      return el("td", { class: "silenced" }, listed ? el("a", { href: "", onclick: (ev) => { ev.preventDefault(); document.getElementById("silence-" + a.silenced_by)?.scrollIntoView({ block: "center" }); } }, label) : label);
    }
    // Held by its host's silence: what it says is no longer current.
    if (a.inhibited_by != null) return el("td", { class: "inhibited", title: t("inhibited_note") }, t("inhibited") + " #" + a.inhibited_by);
    if (!manager || a.resolved_at_ms) return el("td", {}, "—");
    return el("td", {}, el("button", { class: "silence-this", onclick: () => {
      const f = document.getElementById("silence-form");
      const lines = ["alertname=" + a.rule];
      // Hostnames are not unique across providers: the provider too.
      for (const k of ["provider", "hostname", "uuid", "mount", "port"]) if (a.labels?.[k]) lines.push(k + "=" + a.labels[k]);
      f.elements.matchers.value = lines.join("\n");
      f.scrollIntoView({ block: "center" });
      f.elements.reason.focus();
    } }, t("silence_this")));
  };
  const rows = data.alerts.map((a) => el("tr", { class: "alert" + (a.silenced_by != null || a.inhibited_by != null ? " muted" : ""), "data-id": a.id, "data-rule": a.rule },
    el("td", { class: "sev-" + a.severity }, t(a.severity)), el("td", { class: "mono" }, a.rule), el("td", {}, a.summary),
    el("td", { class: "mono" }, a.resource || "—"), el("td", {}, fmtTime(a.started_at_ms)), el("td", {}, fmtTime(a.resolved_at_ms)),
    el("td", { class: "acked", translate: a.acked_by ? "no" : null }, a.acked_by || (manager && !a.resolved_at_ms
      ? el("button", { class: "ack", onclick: async (ev) => { try { await api("POST", `/api/v1/alerts/${a.id}/ack`); route(); } catch (e) { ev.target.after(errorBox(e)); } } }, t("ack"))
      : "—")), silenceCell(a)));
  main.append(el("h1", {}, t("alerts")), form,
    rows.length ? table([t("severity"), t("rule"), t("summary_col"), t("resource"), t("started"), t("resolved_at"), t("acked_by"), t("silence_col")], rows) : el("p", {}, t("no_alerts")));
  // Silences: what is muted, and making one.
  const out = el("div", {});
  const sform = el("form", { class: "stack", id: "silence-form" },
    el("label", {}, t("matchers"), el("textarea", { name: "matchers", class: "mono", rows: 2, required: true, placeholder: "hostname=gpu-07" })),
    el("label", {}, t("duration"), el("input", { name: "duration", value: "2h", size: 6 })),
    el("label", {}, t("reason"), el("input", { name: "reason", required: true })),
    el("button", { class: "primary", type: "submit", id: "silence-submit" }, t("create_silence")), out);
  sform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(sform);
    const matchers = String(f.get("matchers")).split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
      const m = l.match(/^([^=!~]+)(=~|!~|!=|=)(.*)$/);
      return m ? { name: m[1].trim(), op: m[2], value: m[3].trim() } : { name: l, op: "=", value: "" };
    });
    try { await api("POST", "/api/v1/silences", { matchers, duration: f.get("duration"), reason: f.get("reason") }); route(); }
    catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h2", {}, t("silences")),
    table(["#", t("matchers"), t("ends"), t("creator"), t("reason"), ""], silences.map((s) => el("tr", { class: "silence", id: "silence-" + s.id },
      el("td", {}, s.id), el("td", { class: "mono" }, s.matchers.map((m) => m.name + (m.op || "=") + m.value).join(", ")),
      el("td", {}, fmtTime(s.ends_at_ms)), el("td", { translate: "no" }, s.created_by), el("td", { translate: "no" }, s.reason),
      el("td", {}, manager ? el("button", { onclick: async () => { await api("DELETE", "/api/v1/silences/" + s.id); route(); } }, t("end_now")) : null)))),
    manager ? sform : "");
}
