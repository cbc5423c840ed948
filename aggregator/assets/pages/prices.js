// A provider's prices, which selection ranks candidates by.
import { t } from "../i18n.js";
import { api, session } from "../api.js";
import { el, errorBox } from "../dom.js";

export async function prices(main, _query, code) {
  const staff = ["admin", "operator", "viewer"].includes(session.me.role);
  const own = session.me.provider && session.me.provider.code;
  const providers = staff ? (await api("GET", "/api/v1/providers")).providers.map((p) => p.code) : own ? [own] : [];
  code = code || own || providers[0];
  main.append(el("h1", {}, t("prices")), el("p", { class: "note" }, t("prices_note")));
  if (!code) return;
  if (providers.length > 1) {
    const pick = el("select", { id: "prices-provider", onchange: (ev) => { location.hash = "#/prices/" + ev.target.value; } },
      providers.map((c) => el("option", { value: c, selected: c === code }, c)));
    main.append(el("label", {}, t("provider"), pick));
  }
  const data = await api("GET", "/api/v1/providers/" + encodeURIComponent(code) + "/prices");
  const editable = session.me.role !== "viewer" && (staff || code === own);
  const out = el("div", {});
  const tbody = el("tbody", {});
  const row = (p) => {
    const resource = el("select", { name: "resource", disabled: !editable },
      el("option", { value: "accelerator", selected: p.resource === "accelerator" }, t("per_accel_h")),
      el("option", { value: "cpu", selected: p.resource === "cpu" }, t("per_core_h")));
    const model = el("input", { name: "model", value: p.model || "", placeholder: t("any_model"), size: 16, disabled: !editable });
    const price = el("input", { name: "per_hour_cny", value: p.per_hour_cny || "", size: 8, inputmode: "decimal", disabled: !editable });
    const tr = el("tr", { class: "price-row" }, el("td", {}, resource), el("td", {}, model), el("td", {}, price),
      el("td", {}, editable ? el("button", { type: "button", onclick: () => tr.remove() }, t("remove")) : null));
    tbody.append(tr);
  };
  data.prices.forEach(row);
  const form = el("form", { id: "prices-form" },
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, t("resource")), el("th", {}, t("model")), el("th", {}, t("price_h")), el("th", {}))), tbody),
    editable ? el("div", { class: "inline" },
      el("button", { type: "button", id: "prices-add", onclick: () => row({ resource: "accelerator" }) }, t("add_row")),
      el("button", { class: "primary", type: "submit", id: "prices-save" }, t("save"))) : null, out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const prices = [...tbody.rows].map((tr) => {
      const v = (n) => tr.querySelector(`[name=${n}]`).value.trim();
      const p = { resource: v("resource"), per_hour_cny: v("per_hour_cny") };
      if (p.resource === "accelerator" && v("model")) p.model = v("model");
      return p;
    });
    try {
      await api("PUT", "/api/v1/providers/" + encodeURIComponent(code) + "/prices", { prices });
      out.replaceChildren(el("p", { class: "notice", id: "prices-saved" }, t("saved")));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(form);
}
