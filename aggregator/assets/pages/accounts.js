// Accounts (admins): roles, enabling and disabling, making one.
import { t, fmtTime } from "../i18n.js";
import { api } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

export async function accounts(main) {
  const data = await api("GET", "/api/v1/accounts");
  const roles = ["admin", "operator", "viewer", "provider", "reseller", "line_provider", "user"];
  const out = el("div", {});
  const act = (path, ev) => api("POST", path).then(() => route(), (e) => ev.target.after(errorBox(e)));
  const list = el("div", {});
  const draw = (accounts) => list.replaceChildren(table([t("username"), t("role"), t("provider"), t("created_at"), t("account_state"), ""], accounts.map((a) => {
    const pick = el("select", { name: "role" }, roles.map((r) => el("option", { value: r, selected: r === a.role }, t("role_" + r))));
    return el("tr", { class: "account", "data-login": a.login },
      el("td", { translate: "no" }, a.login), el("td", {}, pick,
        el("button", { onclick: (ev) => api("POST", `/api/v1/accounts/${encodeURIComponent(a.login)}/role`, { role: pick.value }).then(() => route(), (e) => ev.target.after(errorBox(e))) }, t("set_role"))),
      el("td", {}, a.provider_id ?? "—"), el("td", { class: "nowrap" }, fmtTime(a.created_at_ms)),
      el("td", {}, t(a.disabled ? "disabled" : "enabled")),
      el("td", {}, el("button", { class: a.disabled ? "enable" : "disable", onclick: (ev) => act(`/api/v1/accounts/${encodeURIComponent(a.login)}/${a.disabled ? "enable" : "disable"}`, ev) }, t(a.disabled ? "enable" : "disable"))));
  })));
  draw(data.accounts);
  const form = el("form", { class: "inline", id: "account-form" },
    el("label", {}, t("username"), el("input", { name: "login", required: true, size: 12 })),
    el("label", {}, t("role"), el("select", { name: "role" }, roles.map((r) => el("option", { value: r, selected: r === "viewer" }, t("role_" + r))))),
    el("label", {}, t("provider_code"), el("input", { name: "provider", size: 8 })),
    el("label", {}, t("password_optional"), el("input", { name: "password", type: "password", autocomplete: "new-password" })),
    el("button", { class: "primary", type: "submit" }, t("create_account")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    const body = { login: f.login, role: f.role };
    if (f.provider) body.provider = f.provider;
    if (f.password) body.password = f.password;
    try {
      const made = await api("POST", "/api/v1/accounts", body);
      form.reset();
      out.replaceChildren(made.password ? el("div", { class: "notice" }, t("generated_password"), el("div", { class: "mono", id: "generated-password" }, made.password)) : el("div", { class: "notice" }, t("saved")));
      draw((await api("GET", "/api/v1/accounts")).accounts);
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("accounts")), form, out, list);
}
