// An organisation's registration form, open to anyone.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { el, errorBox } from "../dom.js";

export async function register(main) {
  const out = el("div", {});
  const field = (name, label, attrs) => el("label", {}, label, el("input", { name, required: true, ...attrs }));
  const form = el("form", { class: "stack", id: "register-form" },
    el("label", {}, t("kind"), el("select", { name: "kind" }, ["provider", "reseller", "line_provider"].map((k) => el("option", { value: k }, t("kind_" + k))))),
    field("name", t("name")), field("uscc", t("uscc"), { maxlength: 18 }), field("region", t("region") + " (GB/T 2260)", { maxlength: 6 }),
    field("industry", t("industry") + " (GB/T 4754, I65)"), field("contact", t("contact")), field("login", t("username")),
    field("password", t("password"), { type: "password", minlength: 10 }),
    el("button", { class: "primary", type: "submit" }, t("submit")), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(form));
    try { await api("POST", "/api/v1/registrations", body); out.replaceChildren(el("p", { class: "notice" }, t("filed"))); }
    catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("register")), form);
}
