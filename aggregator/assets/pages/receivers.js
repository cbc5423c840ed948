// Notification receivers: the list, adding one, and one's delivery attempts.
import { t, tOr, fmtTime } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

// 4 h, 30 min, 90 s: a reminder interval as people write it.
const fmtDuration = (ms) => {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0) return s / 3600 + " h";
  if (s % 60 === 0) return s / 60 + " min";
  return s + " s";
};

export async function receivers(main, _params, id) {
  if (id) {
    const d = await api("GET", "/api/v1/receivers/" + encodeURIComponent(id) + "/attempts");
    main.append(el("h1", {}, t("attempts"), " · ", d.receiver.name),
      table([t("when"), t("alerts"), t("status"), t("errcode"), t("error"), t("latency"), t("retry")],
        d.attempts.map((a) => el("tr", {}, el("td", {}, fmtTime(a.at_ms)), el("td", {}, a.alerts), el("td", {}, a.http_status ?? "—"),
          el("td", {}, a.errcode || "—"), el("td", { class: "mono", translate: "no", title: t("receiver_error_note") }, a.error || "—"), el("td", {}, a.latency_ms), el("td", {}, a.retry)))));
    return;
  }
  const data = await api("GET", "/api/v1/receivers");
  const manager = session.me.role !== "viewer";
  const rows = data.receivers.map((r) => el("tr", {},
    el("td", { translate: "no" }, el("a", { href: "#/receivers/" + r.id }, r.name)), el("td", {}, t("receiver_" + r.kind)), el("td", { class: "mono" }, r.url),
    el("td", {}, t(r.min_severity)), el("td", {}, r.repeat_interval_ms == null ? t("repeat_interval_node") : fmtDuration(r.repeat_interval_ms)), el("td", {}, Object.entries(r.deliveries || {}).map(([k, v]) => tOr("delivery_" + k, k) + " " + v).join(t("list_sep")) || "—"),
    el("td", { class: "nowrap" }, manager ? el("button", { class: "test-receiver", title: t("test_receiver_note"), onclick: async (ev) => {
      // Sent through the same ledger as any alert: its attempt shows on the receiver's page.
      ev.target.disabled = true;
      try { await api("POST", "/api/v1/receivers/" + r.id + "/test"); location.hash = "#/receivers/" + r.id; }
      catch (e) { ev.target.disabled = false; ev.target.parentElement.querySelector(".error")?.remove(); ev.target.after(errorBox(e)); }
    } }, t("test_receiver")) : "", " ",
    r.declared ? t("declared") : manager ? el("button", { onclick: async () => { await api("DELETE", "/api/v1/receivers/" + r.id); route(); } }, t("remove")) : "")));
  const out = el("div", {});
  const form = el("form", { class: "stack", id: "receiver-form" },
    el("label", {}, t("name"), el("input", { name: "name", required: true, maxlength: 64, pattern: "[\\p{L}\\p{N}._\\-]{1,64}" })),
    el("label", {}, t("kind"), el("select", { name: "kind" }, ["dingtalk", "wecom", "feishu", "webhook", "alertmanager"].map((k) => el("option", { value: k }, t("receiver_" + k))))),
    el("label", {}, t("url"), el("input", { name: "url", required: true, size: 60 })),
    el("label", {}, t("secret"), el("input", { name: "secret", type: "password", autocomplete: "off" })),
    el("label", {}, t("mentions"), el("input", { name: "mentions" })),
    el("label", {}, t("min_severity"), el("select", { name: "min_severity" }, ["warning", "critical", "info"].map((k) => el("option", { value: k }, t(k))))),
    el("label", {}, t("repeat_interval"), el("input", { name: "repeat_interval", size: 8, placeholder: t("repeat_interval_default") })),
    el("button", { class: "primary", type: "submit" }, t("add_receiver")), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { name: f.get("name"), kind: f.get("kind"), url: f.get("url"), min_severity: f.get("min_severity") };
    if (f.get("secret")) body.secret = f.get("secret");
    if (f.get("repeat_interval")) body.repeat_interval = f.get("repeat_interval");
    const mentions = String(f.get("mentions")).split(",").map((m) => m.trim()).filter(Boolean);
    if (mentions.length) body.mentions = mentions;
    try { await api("POST", "/api/v1/receivers", body); route(); } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("receivers")),
    table([t("name"), t("kind"), t("url"), t("min_severity"), t("repeat_interval"), t("deliveries"), ""], rows), manager ? form : "");
}
