// Organisations' registrations, approved or rejected by node staff.
import { t, fmtTime } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

export async function registrations(main) {
  const data = await api("GET", "/api/v1/registrations");
  const staff = ["admin", "operator"].includes(session.me.role);
  const rows = data.registrations.map((r) => {
    const actions = el("td", {});
    if (staff && r.state === "pending") {
      const reason = el("input", { placeholder: t("reason"), size: 12 });
      actions.append(
        el("button", { class: "primary", onclick: async () => { try { await api("POST", `/api/v1/registrations/${r.id}/approve`, {}); route(); } catch (e) { actions.append(errorBox(e)); } } }, t("approve")), " ",
        reason, " ",
        el("button", { onclick: async () => { try { await api("POST", `/api/v1/registrations/${r.id}/reject`, { reason: reason.value }); route(); } catch (e) { actions.append(errorBox(e)); } } }, t("reject")));
    } else actions.append(el("span", { translate: "no" }, r.reason || ""));
    return el("tr", {}, el("td", { translate: "no" }, r.name), el("td", {}, t("kind_" + r.kind)),
      el("td", { class: "mono" }, r.uscc, r.uscc_verified ? "" : el("div", { class: "error" }, t("unverified"))),
      el("td", {}, r.region), el("td", {}, r.industry), el("td", { translate: "no" }, r.contact), el("td", { translate: "no" }, r.account),
      el("td", {}, t(r.state), r.provider ? " · " + r.provider : ""), el("td", {}, fmtTime(r.created_at_ms)), actions);
  });
  main.append(el("h1", {}, t("registrations")),
    table([t("name"), t("kind"), t("uscc"), t("region"), t("industry"), t("contact"), t("account"), t("state"), t("created"), ""], rows));
}
