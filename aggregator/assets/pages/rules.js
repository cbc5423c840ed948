// The monitoring rules and the XID catalog, to read.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { el, table } from "../dom.js";

export async function rules(main) {
  const d = await api("GET", "/api/v1/rules");
  main.append(el("h1", {}, t("rules")),
    table([t("rule"), t("severity"), t("for_s"), t("threshold")], d.rules.map((r) => el("tr", {},
      el("td", { class: "mono" }, r.name), el("td", {}, t(r.severity)), el("td", {}, r.for_ms / 1000 + " s"), el("td", {}, r.description)))),
    el("h2", {}, t("xid_catalog"), " ", d.xid_catalog.version),
    table(["XID", t("name"), t("class"), t("severity"), t("action")], d.xid_catalog.codes.map((x) => el("tr", {},
      el("td", {}, x.xid), el("td", {}, x.name), el("td", {}, t("xid_class_" + x.class)), el("td", {}, t(x.severity)), el("td", {}, x.action)))));
}
