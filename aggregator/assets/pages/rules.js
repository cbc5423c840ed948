// The monitoring rules and the XID catalog, to read.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { el, table } from "../dom.js";

export async function rules(main) {
  const d = await api("GET", "/api/v1/rules");
  main.append(el("h1", {}, t("rules")),
    table([t("rule"), t("severity"), t("for_s"), t("threshold")], d.rules.map((r) => el("tr", {},
      el("td", { class: "mono" }, r.name), el("td", {}, t(r.severity)), el("td", {}, r.for_ms / 1000 + " s"), el("td", {}, r.description)))),
    // While a source alert fires, matching target alerts sharing the `equal` labels are inhibited.
    el("h2", {}, t("inhibit_rules")), el("p", { class: "note" }, t("inhibit_rules_note")),
    table([t("inhibit_source"), t("inhibit_target"), t("inhibit_equal"), ""], d.inhibit_rules.map((r) => el("tr", { class: "inhibit-rule" },
      el("td", { class: "mono" }, r.source_matchers.join(", ")), el("td", { class: "mono" }, r.target_matchers.join(", ")),
      el("td", { class: "mono" }, r.equal.join(", ") || "—"), el("td", {}, r.built_in ? t("built_in") : t("declared"))))),
    el("h2", {}, t("xid_catalog"), " ", d.xid_catalog.version),
    table(["XID", t("name"), t("class"), t("severity"), t("action")], d.xid_catalog.codes.map((x) => el("tr", {},
      el("td", {}, x.xid), el("td", {}, x.name), el("td", {}, t("xid_class_" + x.class)), el("td", {}, t(x.severity)), el("td", {}, x.action)))));
}
