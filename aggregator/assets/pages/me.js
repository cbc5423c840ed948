// One's own account: the password (first, when it was generated) and API keys.
import { t, fmtTime } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route, loadMe } from "../app.js";

export async function me(main) {
  const pw = el("div", {});
  const pform = el("form", { class: "stack", id: "password-form" },
    el("label", {}, t("current_password"), el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("label", {}, t("new_password"), el("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: 10 })),
    el("button", { class: "primary", type: "submit", id: "password-submit" }, t("change_password")), pw);
  pform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/v1/session/password", Object.fromEntries(new FormData(pform)));
      const forced = session.me.must_change_password;
      await loadMe();
      if (forced) { if (location.hash === "#/overview") route(); else location.hash = "#/overview"; return; }
      pform.reset();
      pw.replaceChildren(el("div", { class: "notice", id: "password-changed" }, t("password_changed")));
    } catch (e) { pw.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("me"), " · ", el("span", { translate: "no" }, session.me.login)),
    session.me.must_change_password ? el("div", { class: "notice", id: "must-change" }, t("must_change")) : "",
    el("h2", {}, t("change_password")), pform);
  if (session.me.must_change_password) return;
  const keys = (await api("GET", "/api/v1/api-keys")).api_keys;
  const kout = el("div", {});
  const kform = el("form", { class: "inline", id: "key-form" },
    el("label", {}, t("name"), el("input", { name: "name", required: true, size: 16 })),
    el("label", {}, t("ttl_days"), el("input", { name: "ttl_days", type: "number", value: 90, min: 1, max: 365 })),
    el("button", { class: "primary", type: "submit" }, t("create_key")));
  kform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(kform);
    try {
      const made = await api("POST", "/api/v1/api-keys", { name: f.get("name"), ttl_days: Number(f.get("ttl_days")) });
      kform.reset();
      kout.replaceChildren(el("div", { class: "notice" }, t("key_once"), el("div", { class: "mono", id: "new-key" }, made.key)));
    } catch (e) { kout.replaceChildren(errorBox(e)); }
  });
  main.append(el("h2", {}, t("api_keys")), kform, kout,
    table(["#", t("name"), t("created_at"), t("expires"), ""], keys.map((k) => el("tr", { class: "api-key" },
      el("td", {}, k.id), el("td", {}, k.name), el("td", { class: "nowrap" }, fmtTime(k.created_at_ms)), el("td", { class: "nowrap" }, fmtTime(k.expires_at_ms)),
      el("td", {}, k.revoked ? t("revoked") : el("button", { onclick: async (ev) => { try { await api("DELETE", "/api/v1/api-keys/" + k.id); route(); } catch (e) { ev.target.after(errorBox(e)); } } }, t("revoke")))))));
}
