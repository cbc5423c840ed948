// Suanli dashboard: a small page application over /api/v1, native ES
// modules with no build step. This entry signs in, draws the navigation,
// routes each hash to its page (pages/*.js) and starts the page. Pages
// import route and loadMe back from here: a cycle modules allow, as both are
// function declarations, called only once the page runs.
import { t, lang, setLang } from "./i18n.js";
import { api, session } from "./api.js";
import { el, errorBox } from "./dom.js";
import { seesAlerts, listsHosts, staffRole, orgRole } from "./roles.js";
import { overview } from "./pages/overview.js";
import { resources } from "./pages/resources.js";
import { hosts } from "./pages/hosts.js";
import { alerts } from "./pages/alerts.js";
import { receivers } from "./pages/receivers.js";
import { rules } from "./pages/rules.js";
import { registrations } from "./pages/registrations.js";
import { providers } from "./pages/providers.js";
import { tokens } from "./pages/tokens.js";
import { nodes } from "./pages/nodes.js";
import { audit } from "./pages/audit.js";
import { accounts } from "./pages/accounts.js";
import { me } from "./pages/me.js";
import { selections } from "./pages/selections.js";
import { prices } from "./pages/prices.js";
import { lines } from "./pages/lines.js";
import { selection } from "./pages/selection.js";
import { register } from "./pages/register.js";

// The pages by the hash's first segment: each draws into the view it is given.
const pages = { overview, resources, hosts, alerts, receivers, rules, registrations, providers, tokens, nodes, audit, accounts, me, selections, prices, lines, selection, register };

// The pages by what staff do there: a group is a menu, the overview a link.
const NAV = [
  [null, [["overview", () => true]]],
  ["group_monitoring", [["alerts", seesAlerts], ["receivers", seesAlerts], ["rules", staffRole]]],
  ["group_resources", [["hosts", listsHosts], ["resources", () => true], ["selection", () => true], ["selections", staffRole]]],
  ["group_center", [["registrations", () => true], ["providers", () => true], ["lines", () => true], ["prices", orgRole], ["tokens", orgRole], ["accounts", (r) => r === "admin"], ["audit", staffRole]]],
  ["group_node", [["nodes", staffRole]]],
];

function renderLogin(main) {
  const out = el("div", {});
  const form = el("form", { class: "stack", id: "login-form" },
    el("label", {}, t("username"), el("input", { name: "login", autocomplete: "username", required: true })),
    el("label", {}, t("password"), el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { class: "primary", type: "submit", id: "login-submit" }, t("login")), out,
    el("a", { href: "#/register" }, t("register")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      session.me = await api("POST", "/api/v1/session", Object.fromEntries(new FormData(form)));
      await loadMe();
      if (location.hash.startsWith("#/login") || !location.hash) location.hash = "#/overview";
      else route();
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("login")), form);
}

export async function loadMe() {
  try { session.me = await api("GET", "/api/v1/session"); } catch { session.me = null; }
  const nav = document.getElementById("nav");
  const links = (pages) => pages.filter(([, ok]) => ok(session.me.role)).map(([k]) => el("a", { href: "#/" + k, id: "nav-" + k }, t(k)));
  nav.replaceChildren(...(session.me ? NAV.flatMap(([group, pages]) => {
    const shown = links(pages);
    if (!shown.length) return [];
    if (!group) return shown;
    return [el("details", { class: "menu", id: "menu-" + group }, el("summary", {}, t(group)), el("div", { class: "items" }, shown))];
  }) : []));
  // One menu open at a time.
  for (const d of nav.querySelectorAll("details")) {
    d.addEventListener("toggle", () => { if (d.open) for (const o of nav.querySelectorAll("details")) if (o !== d) o.open = false; });
  }
  document.getElementById("who").replaceChildren(session.me ? el("a", { href: "#/me", id: "me-link" }, el("span", { translate: "no" }, session.me.login), " · " + t("role_" + session.me.role)) : "");
  const logout = document.getElementById("logout");
  logout.hidden = !session.me;
  logout.textContent = t("logout");
}

let routes = 0; // how many renders have started: the newest owns the page

// Someone is filling in a form on the page (focused in one, or has typed
// into one): a refresh would wipe it.
function typing(view) {
  if (document.activeElement?.closest("form")) return true;
  return [...view.querySelectorAll("form")].some((f) => [...f.elements].some((e) =>
    (e.tagName === "TEXTAREA" || (e.tagName === "INPUT" && e.type !== "submit")) && e.value !== e.defaultValue));
}

export async function route() {
  if (session.live) { session.live.close(); session.live = null; }
  if (session.refresh) { clearTimeout(session.refresh); session.refresh = null; }
  window.suanliCharts = {};
  const mine = ++routes;
  const main = document.getElementById("main");
  const hash = location.hash.slice(2) || "overview";
  const [path, query] = hash.split("?");
  const [page, arg] = path.split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.id === "nav-" + page);
  // A menu closes once a page is chosen, and shows which page it holds.
  for (const d of document.querySelectorAll("nav details")) {
    d.open = false;
    d.classList.toggle("active", !!d.querySelector("a.active"));
  }
  // Each render draws into a view of its own: one overtaken by a newer
  // render (a refresh racing a click) finishes into a detached view, never
  // over the newer page, and starts no refresh loop of its own.
  const view = el("div", {});
  main.replaceChildren(view);
  // Which page is drawn whole (or has failed), for tests and for anyone
  // scripting the console: the route, as in the address.
  delete main.dataset.drawn;
  if (page === "register") return pages.register(view);
  if (!session.me) return renderLogin(view);
  // A generated password is changed before anything else.
  const render = session.me.must_change_password ? pages.me : pages[page] || pages.overview;
  try {
    await render(view, query || "", arg && decodeURIComponent(arg));
    if (mine !== routes) return;
    main.dataset.drawn = hash;
    // The overview, the alerts, the child nodes' links and a receiver's
    // attempts keep themselves current (not while someone is typing into
    // a form there).
    if (render === pages.overview || render === pages.alerts || render === pages.nodes || (render === pages.receivers && arg)) {
      const again = () => {
        if (!typing(view)) return route();
        window.suanliRefreshesHeld = (window.suanliRefreshesHeld || 0) + 1;
        session.refresh = setTimeout(again, 5000);
      };
      session.refresh = setTimeout(again, render === pages.overview ? 5000 : 2000);
    }
  }
  catch (e) {
    if (e.status === 401) { session.me = null; await loadMe(); main.replaceChildren(); renderLogin(main); }
    else if (mine === routes) { view.append(errorBox(e)); main.dataset.drawn = hash; }
  }
}

document.getElementById("lang").addEventListener("click", async () => {
  setLang(lang === "zh" ? "en" : "zh");
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
  await loadMe();
  route();
});
document.getElementById("logout").addEventListener("click", async () => {
  try { await api("DELETE", "/api/v1/session"); } catch { /* already gone */ }
  session.me = null; await loadMe(); location.hash = "#/login"; route();
});
window.addEventListener("hashchange", route);
document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
loadMe().then(route);
