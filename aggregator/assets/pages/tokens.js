// Enrollment tokens: making one (its join command shown once), revoking.
import { t, fmtTime } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

export async function tokens(main) {
  const data = await api("GET", "/api/v1/tokens");
  const staff = ["admin", "operator"].includes(session.me.role);
  const out = el("div", {});
  const form = el("form", { class: "inline" },
    staff ? el("label", {}, t("provider"), el("input", { name: "provider", required: true, size: 8 })) : null,
    el("label", {}, t("ttl_hours"), el("input", { name: "ttl_hours", type: "number", value: 24, min: 1, max: 720 })),
    el("label", {}, t("uses"), el("input", { name: "uses", type: "number", value: 1, min: 1, max: 1000 })),
    el("label", {}, t("site_region"), el("input", { name: "region", size: 6, maxlength: 6 })),
    el("button", { class: "primary", type: "submit" }, t("create_token")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { ttl_hours: Number(f.get("ttl_hours")), uses: Number(f.get("uses")) };
    if (staff) body.provider = f.get("provider");
    if (f.get("region")) body.region = f.get("region");
    try {
      const made = await api("POST", "/api/v1/tokens", body);
      out.replaceChildren(el("div", { class: "notice" }, t("join_once"), el("div", { class: "mono" }, made.command)));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  const rows = data.tokens.map((k) => el("tr", {}, el("td", {}, k.id), el("td", { class: "mono" }, k.provider), el("td", {}, fmtTime(k.expires_at_ms)),
    el("td", {}, k.uses_left), el("td", { translate: "no" }, k.created_by), el("td", {}, k.revoked ? t("revoked") : el("button", { onclick: async () => { await api("DELETE", "/api/v1/tokens/" + k.id); route(); } }, t("revoke")))));
  main.append(el("h1", {}, t("tokens")), session.me.role === "viewer" ? "" : form, out, table(["#", t("provider"), t("expires"), t("uses_left"), t("actor"), ""], rows));
}
