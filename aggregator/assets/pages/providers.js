// The registered providers.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { el, table } from "../dom.js";

export async function providers(main) {
  const data = await api("GET", "/api/v1/providers");
  main.append(el("h1", {}, t("providers")),
    table([t("code"), t("name"), t("kind"), t("region"), t("industry"), t("uscc"), t("contact")],
      data.providers.map((p) => el("tr", {}, el("td", { class: "mono" }, p.code), el("td", { translate: "no" }, p.name), el("td", {}, t("kind_" + p.kind)),
        el("td", {}, p.region), el("td", {}, p.industry), el("td", { class: "mono" }, p.uscc || "—"), el("td", { translate: "no" }, p.contact || "—")))));
}
