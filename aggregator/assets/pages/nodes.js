// This node in the hierarchy: its parent, its child nodes (join tokens,
// approval, revocation) and the providers filed below.
import { t, fmtTime } from "../i18n.js";
import { api, session } from "../api.js";
import { el, table, errorBox } from "../dom.js";
import { route } from "../app.js";

export async function nodes(main) {
  const n = await api("GET", "/api/v1/nodes");
  const roleName = (r) => t(r === "industry" ? "industry_node" : r);
  const managers = ["admin", "operator"].includes(session.me.role);
  const p = n.parent;
  const parentPanel = el("section", { id: "parent-panel" }, el("h2", {}, t("parent_node")),
    p ? el("dl", { class: "facts" },
      el("dt", {}, t("address")), el("dd", { class: "mono" }, p.address),
      el("dt", {}, t("state")), el("dd", { id: "parent-state" }, t(p.state)),
      el("dt", {}, t("prefix")), el("dd", { class: "mono" }, p.prefix || "—"),
      el("dt", {}, t("reason")), el("dd", {}, p.reason || "—"),
      el("dt", {}, t("link")), el("dd", { id: "parent-link", class: "state-" + p.link }, t(p.link)),
      el("dt", {}, t("backlog")), el("dd", {}, p.backlog == null ? "—" : p.backlog + (p.dropped ? " (" + t("dropped") + " " + p.dropped + ")" : "")),
      el("dt", {}, t("unspooled")), el("dd", {}, p.unspooled))
      : el("p", { class: "note" }, t("no_parent")));
  const out = el("div", {});
  let tokenForm = null;
  if (session.me.role === "admin" && n.role !== "industry") {
    const segment = el("input", { name: "segment", required: true, size: 6, placeholder: "32 / I65" });
    tokenForm = el("form", { class: "inline", id: "node-token-form" },
      el("label", {}, t("role"), el("select", { name: "role" },
        n.role === "national" ? el("option", { value: "regional" }, t("regional")) : null,
        el("option", { value: "industry" }, t("industry_node")))),
      el("label", {}, t("segment"), segment),
      el("label", {}, t("ttl_hours"), el("input", { name: "ttl_hours", type: "number", value: 24, min: 1, max: 720 })),
      el("button", { class: "primary", type: "submit" }, t("create_node_token")));
    tokenForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(tokenForm);
      const body = { role: f.get("role"), ttl_hours: Number(f.get("ttl_hours")) };
      body[f.get("role") === "regional" ? "region" : "industry"] = f.get("segment");
      try {
        const made = await api("POST", "/api/v1/nodes/tokens", body);
        out.replaceChildren(el("div", { class: "notice" }, t("node_join_once"),
          el("div", { class: "mono" }, "suanli-aggregator parent join '" + made.join + "' --operator-name … --operator-uscc …")));
      } catch (e) { out.replaceChildren(errorBox(e)); }
    });
  }
  const act = (c) => {
    if (!managers) return el("td", {});
    const reason = () => prompt(t("reason")) || "";
    const call = (verb, body) => async () => {
      try { await api("POST", "/api/v1/nodes/" + c.id + "/" + verb, body && body()); route(); }
      catch (e) { out.replaceChildren(errorBox(e)); }
    };
    if (c.state === "pending") return el("td", {},
      el("button", { class: "primary", id: "approve-" + c.id, onclick: call("approve") }, t("approve")), " ",
      el("button", { onclick: call("reject", () => ({ reason: reason() })) }, t("reject")));
    if (c.state === "approved" && session.me.role === "admin") return el("td", {},
      el("button", { onclick: call("revoke", () => ({ reason: reason() })) }, t("revoke")));
    return el("td", {});
  };
  const rows = n.children.map((c) => el("tr", { "data-child": c.id },
    el("td", {}, c.id), el("td", {}, roleName(c.role)), el("td", { class: "mono" }, c.segment), el("td", { class: "mono" }, c.prefix || "—"),
    el("td", { translate: "no" }, c.operator_name + " (" + c.operator_uscc + ")"), el("td", { class: "state-" + c.link }, t(c.link)),
    el("td", {}, fmtTime(c.last_heartbeat_ms)), el("td", {}, c.identifiers), el("td", {}, c.backlog == null ? "—" : c.backlog), act(c)));
  main.append(...[el("h1", {}, t("nodes")),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("div", { class: "n mono" }, n.prefix), el("div", { class: "l" }, t("this_node") + " · " + roleName(n.role))),
      el("div", { class: "card" }, el("div", { class: "n" }, n.identifiers.own), el("div", { class: "l" }, t("own_ids"))),
      el("div", { class: "card", id: "subtree-ids" }, el("div", { class: "n" }, n.identifiers.subtree), el("div", { class: "l" }, t("subtree_ids")))),
    parentPanel, el("h2", {}, t("nodes")), tokenForm, out,
    table(["#", t("role"), t("segment"), t("prefix"), t("operator"), t("link"), t("heartbeat"), t("filed_ids"), t("backlog"), ""], rows),
    n.providers.length ? el("h2", {}, t("subtree_providers")) : null,
    n.providers.length ? table([t("this_node"), t("code"), t("name"), t("uscc"), t("filed_ids")], n.providers.map((p) => el("tr", {},
      el("td", { class: "mono" }, p.node), el("td", { class: "mono" }, p.owner_code), el("td", { translate: "no" }, p.name), el("td", { class: "mono" }, p.uscc), el("td", {}, p.identifiers)))) : null,
    n.duplicate_uscc.length ? el("h2", {}, t("duplicate_uscc")) : null,
    n.duplicate_uscc.length ? table([t("uscc"), t("prefix")], n.duplicate_uscc.map((d) => el("tr", {}, el("td", { class: "mono" }, d.uscc), el("td", { class: "mono" }, d.nodes.join(", "))))) : null,
  ].filter(Boolean));
}
