// Suanli dashboard: a small page application over /api/v1.
// Everything shown is built with DOM nodes and textContent, never HTML
// strings, so names and identifiers from the API cannot inject markup.
"use strict";

const T = {
  overview: ["总览", "Overview"], registrations: ["注册审核", "Registrations"], providers: ["提供商", "Providers"],
  resources: ["资源", "Resources"], tokens: ["接入令牌", "Enrollment tokens"], audit: ["审计日志", "Audit log"],
  login: ["登录", "Sign in"], logout: ["退出", "Sign out"], register: ["机构注册", "Register an organisation"],
  username: ["账号", "Login"], password: ["密码", "Password"], hosts: ["主机", "Hosts"],
  online: ["在线", "Online"], stale: ["上报滞后", "Stale"], offline: ["离线", "Offline"], revoked: ["已吊销", "Revoked"],
  enrolled: ["已接入未上报", "Enrolled, never seen"],
  stale_card: ["上报滞后（超过 3 个采样周期无样本）", "Stale (no sample for 3 intervals)"],
  offline_card: ["离线（5 分钟无样本）", "Offline (no sample for 5 minutes)"], resource_count: ["资源数", "Resources"],
  no_hosts: ["没有符合条件的主机。主机在“接入令牌”页签发令牌后，由 suanli-agent join 接入。", "No host matches. Hosts join with suanli-agent join and a token from the Tokens page."],
  hostname_or_id: ["主机名或标识", "Hostname or identifier"],
  resources_total: ["资源总数", "Resources"], agents: ["已连接代理", "Connected agents"], cpus: ["逻辑 CPU", "Logical CPUs"],
  memory: ["内存", "Memory"], cpu_util: ["平均 CPU 利用率", "Mean CPU utilization"], by_type: ["按资源类型", "By resource type"],
  by_model: ["按加速卡型号", "By accelerator model"], type: ["类型", "Type"], model: ["型号", "Model"], total: ["总数", "Total"],
  free_now: ["当前空闲", "Free now"], util: ["平均利用率", "Mean utilization"], identifier: ["算力标识", "Identifier"],
  hostname: ["主机名", "Hostname"], provider: ["提供商", "Provider"], region: ["地区", "Region"], industry: ["行业", "Industry"],
  state: ["状态", "State"], last_seen: ["最近上报", "Last seen"], search: ["查询", "Search"], any: ["全部", "Any"],
  next: ["下一页", "Next page"], first: ["第一页", "First page"], name: ["名称", "Name"], kind: ["类别", "Kind"], uscc: ["统一社会信用代码", "Credit code (USCC)"],
  contact: ["联系人", "Contact"], account: ["账号", "Account"], created: ["提交时间", "Filed"], approve: ["批准", "Approve"],
  reject: ["驳回", "Reject"], reason: ["理由", "Reason"], code: ["编码", "Code"], expires: ["过期时间", "Expires"],
  uses_left: ["剩余次数", "Uses left"], create_token: ["创建令牌", "Create token"], revoke: ["吊销", "Revoke"],
  join_once: ["接入命令（只显示一次）：", "Join command (shown once):"], when: ["时间", "When"], actor: ["操作人", "Actor"],
  action: ["操作", "Action"], subject: ["对象", "Subject"], detail: ["详情", "Detail"], address: ["来源地址", "Address"],
  cpu_chart: ["CPU 利用率 (%)", "CPU utilization (%)"], mem_chart: ["内存使用 (GiB)", "Memory used (GiB)"],
  gpu_util_chart: ["加速卡利用率 (%)", "Accelerator utilization (%)"], gpu_mem_chart: ["加速卡显存/HBM 使用 (GiB)", "Accelerator memory used (GiB)"],
  gpu_temp_chart: ["加速卡温度 (°C)", "Accelerator temperature (°C)"], gpu_power_chart: ["加速卡功耗 (W)", "Accelerator power (W)"],
  no_gpu: ["此主机没有加速卡（GPU/NPU 等）", "This host has no accelerator (GPU, NPU, …)"], live_note: ["页面打开期间，该主机每秒上报一次。", "While this page is open the host reports every second."],
  rtt: ["往返时延", "Round-trip time"], cpu_model: ["CPU 型号", "CPU model"], os: ["操作系统", "Operating system"],
  pending: ["待审核", "Pending"], approved: ["已批准", "Approved"], rejected: ["已驳回", "Rejected"], submit: ["提交", "Submit"],
  filed: ["已提交，等待节点审核。", "Filed; node staff will review it."], role: ["角色", "Role"], ttl_hours: ["有效期（小时）", "Valid for (hours)"],
  uses: ["可用次数", "Uses"], more: ["更多", "More"], samples: ["样本", "Samples"], yes: ["是", "yes"], no: ["否", "no"],
  host_detail: ["主机详情", "Host"], kind_provider: ["资源提供商", "Resource provider"], kind_reseller: ["转售调度服务商", "Reseller"],
  kind_line_provider: ["专线服务商", "Line provider"], unverified: ["校验位未通过（需管理员核准）", "check character fails (admin approval needed)"],
  selection: ["算力选择", "Selection"], count: ["每台数量", "Per host"], min_mem: ["单卡显存 ≥ GiB", "Memory per accelerator ≥ GiB"],
  hosts_wanted: ["台数（同时满足）", "Hosts (all or nothing)"], together: ["同在", "Together in"], anywhere: ["不限", "anywhere"],
  user_region: ["用户所在地区", "User's region"], max_latency: ["最大时延 ms", "Max latency ms"], min_bw: ["最小带宽 Mb/s", "Min bandwidth Mb/s"],
  availability: ["可用性", "Availability"], free_now_opt: ["当前空闲", "free now"], installed: ["已安装", "installed"],
  expression: ["CEL 表达式", "CEL expression"], select: ["选择", "Select"], score: ["得分", "Score"], path: ["网络路径", "Network path"],
  matched: ["匹配主机", "Hosts matched"], eliminated: ["各约束排除的主机数", "Hosts each constraint eliminated"],
  nearest: ["最接近的主机", "Nearest misses"], scope: ["范围", "Scope"], deadline: ["等待下级 ms", "Wait for nodes below, ms"],
  partial_answer: ["部分结果：有下级节点未按时或未能应答，候选可能不全。", "Partial: a node below did not answer in time or could not; candidates may be missing."],
  nodes_asked: ["下级节点", "Nodes below"], node: ["节点", "Node"], outcome: ["结果", "Outcome"], elapsed: ["耗时", "Took"],
  candidates_n: ["候选数", "Candidates"], outcome_answered: ["已应答", "answered"],
  outcome_skipped: ["未询问（上报资源不足）", "not asked (its reports fall short)"], outcome_excluded: ["不在范围内", "out of scope"],
  outcome_late: ["超时", "late"], outcome_unreachable: ["未连接", "not linked"], outcome_refused: ["应答被拒", "answer refused"],
  outcome_failed: ["无法应答", "could not answer"], hold: ["预留", "Hold"], release: ["释放", "Release"],
  held_until: ["已预留至", "Held until"], holds_on_host: ["预留", "Holds"], reservation: ["预留编号", "Hold"], holder: ["预留人", "Held by"], hold_held: ["预留中", "held"], hold_released: ["已释放", "released"], hold_expired: ["已过期", "expired"], nothing: ["没有满足需求的资源。", "Nothing matched."], region_prefix: ["地区前缀", "Region prefix"],
  prices: ["算力价格", "Prices"], price_h: ["价格（元/小时）", "Price (CNY/h)"], max_price: ["最高价格 元/小时", "Max price CNY/h"],
  resource: ["资源", "Resource"], per_accel_h: ["每卡时", "per accelerator-hour"], per_core_h: ["每核时", "per core-hour"],
  any_model: ["（任意型号）", "(any model)"], add_row: ["添加一行", "Add a row"], save: ["保存", "Save"], saved: ["已保存。", "Saved."],
  remove: ["删除", "Remove"], prices_note: ["算力选择按所列价格为候选排序（越便宜得分越高），并支持“最高价格”约束。型号按整词匹配：H100 适用于 NVIDIA H100 80GB HBM3。", "Selection ranks candidates by these prices (cheaper scores higher) and honours a maximum price. Models match by whole words: H100 applies to NVIDIA H100 80GB HBM3."],
  line_name: ["线路名称", "Line name"], from_region: ["起点地区", "From region"], to_region: ["终点地区", "To region"],
  latency_ms: ["时延 ms", "Latency ms"], bandwidth_mbps: ["带宽 Mb/s", "Bandwidth Mb/s"], price_month: ["价格（元/Mb/s/月）", "Price (CNY per Mb/s per month)"],
  register_line: ["登记专线", "Register line"], state_open: ["开通", "open"], state_maintenance: ["维护", "maintenance"], state_closed: ["关闭", "closed"],
  lines_note: ["只有“开通”的专线参与算力选择的路径计算。", "Only open lines carry selection's paths."],
  freshness: ["数据新鲜度", "Freshness"], lines: ["专线", "Lines"], site_region: ["机房地区（可选）", "Site region (optional)"],
  alerts: ["告警", "Alerts"], receivers: ["通知渠道", "Receivers"], rules: ["监测规则", "Rules"], severity: ["级别", "Severity"],
  critical: ["严重", "critical"], warning: ["警告", "warning"], info: ["提示", "info"], firing: ["告警中", "firing"], resolved: ["已恢复", "resolved"],
  started: ["开始时间", "Started"], resolved_at: ["恢复时间", "Resolved"], ack: ["确认", "Acknowledge"], acked_by: ["确认人", "Acknowledged by"],
  summary_col: ["摘要", "Summary"], rule: ["规则", "Rule"], health: ["健康", "Health"], healthy: ["正常", "healthy"], degraded: ["降级", "degraded"],
  unknown: ["未知", "unknown"], silences: ["静默", "Silences"], matchers: ["匹配条件（每行 名称=值）", "Matchers (one name=value per line)"],
  duration: ["时长", "Duration"], create_silence: ["创建静默", "Create silence"],
  silenced: ["已静默", "Silenced"], silence_this: ["静默", "Silence"], silence_col: ["静默", "Silence"], ends: ["结束时间", "Ends"], end_now: ["立即结束", "End now"],
  creator: ["创建人", "Created by"], url: ["地址", "URL"], secret: ["签名密钥（只保存不显示）", "Secret (kept, never shown)"],
  mentions: ["@手机号（逗号分隔）", "@ mobiles (comma-separated)"], min_severity: ["最低级别", "Least severity"], add_receiver: ["添加通知渠道", "Add receiver"],
  attempts: ["投递记录", "Delivery attempts"], deliveries: ["投递", "Deliveries"], status: ["状态码", "Status"], errcode: ["错误码", "Error code"],
  latency: ["耗时 ms", "Latency ms"], retry: ["重试", "Retry"], error: ["错误", "Error"], declared: ["配置文件声明", "declared in config"],
  accelerators: ["加速卡", "Accelerators"], throttle: ["降频原因", "Throttle reasons"], ecc: ["不可纠正 ECC", "Uncorrected ECC"],
  remapped: ["行重映射", "Remapped rows"], xids: ["近期 XID", "Recent XIDs"], nvlink: ["NVLink 在线/断开", "NVLink up/down"], processes: ["进程", "Processes"],
  mark_healthy: ["标记为正常", "Mark healthy"], for_s: ["持续", "For"], threshold: ["阈值与依据", "Threshold and source"], xid_catalog: ["XID 目录", "XID catalog"],
  class: ["类别", "Class"], state_all: ["全部", "all"], no_alerts: ["没有告警。", "No alerts."], alerts_firing: ["告警中", "Firing alerts"],
  nodes: ["下级节点", "Child nodes"], parent_node: ["上级节点", "Parent node"], link: ["链路", "Link"], heartbeat: ["最近心跳", "Last heartbeat"],
  filed_ids: ["已备案标识", "Identifiers filed"], backlog: ["积压", "Backlog"], prefix: ["前缀", "Prefix"], segment: ["区域/行业", "Region / industry"],
  operator: ["运营主体", "Operator"], no_parent: ["本节点没有上级，独立运行。", "No parent: this node stands alone."], connected: ["已连接", "connected"],
  national: ["国家节点", "national"], regional: ["区域节点", "regional"], industry_node: ["行业节点", "industry"], this_node: ["本节点", "This node"],
  scale: ["算力规模", "Computing capacity"], scale_subtree: ["算力规模（本节点及下级）", "Computing capacity (this node and below)"],
  intelligent_fp16: ["智能算力 · FP16", "AI compute · FP16"], general_fp32: ["通用算力 · FP32", "General compute · FP32"],
  supercomputing_fp64: ["超算算力 · FP64", "Supercomputing · FP64"], fp32_equivalent: ["折合 FP32 总量（Suanli 约定）", "FP32-equivalent total (Suanli's convention)"],
  unrated_note: ["台设备无额定算力，未计入", "devices without a rating, not counted"], period: ["统计周期", "Period"],
  reported_by: ["上报节点", "Reporting nodes"], via: ["经由", "Via"], this_node: ["本节点", "this node"],
  trend_24h: ["过去 24 小时（每 5 分钟）", "The last 24 hours (every 5 minutes)"],
  trend_30d: ["过去 30 天（每小时均值）", "The last 30 days (hourly means)"], time: ["时间", "Time"],
  online_share: ["加速卡在线率 (%)", "Accelerators online (%)"],
  streams_7d: ["业务监测：过去 7 天（每小时，本节点及下级）", "Business streams: the last 7 days (hourly, this node and below)"],
  stream_scheduling: ["调度业务", "Scheduling"], stream_platform: ["平台业务", "Platform"], stream_application: ["应用业务", "Application"],
  fig_selections_requested: ["选型请求", "Selections"], fig_selections_matched: ["已匹配", "Matched"],
  fig_selections_cross_region: ["跨省应答", "Answered from another province"],
  fig_api_calls: ["API 调用", "API calls"], fig_api_client_errors: ["请求错误 (4xx)", "Client errors (4xx)"],
  fig_api_server_errors: ["服务端错误 (5xx)", "Server errors (5xx)"], fig_sign_ins_failed: ["登录失败", "Failed sign-ins"],
  fig_api_key_calls: ["API 密钥调用", "Calls with API keys"], fig_api_keys_active: ["有效 API 密钥", "API keys in use"],
  fp16_registered: ["智能算力 FP16 · 已注册 (PFLOPS)", "AI compute FP16 · registered (PFLOPS)"],
  fp16_available: ["智能算力 FP16 · 当前可用 (PFLOPS)", "AI compute FP16 · available (PFLOPS)"],
  fp16_trend: ["智能算力 FP16 (PFLOPS)", "AI compute FP16 (PFLOPS)"], accel_util: ["加速卡平均利用率 (%)", "Mean accelerator utilization (%)"], no_trend: ["尚无数据", "No data yet"],
  heatmap: ["加速卡利用率（本节点，每格一块卡）", "Accelerator utilization (this node, a cell per card)"],
  no_accelerators: ["本节点没有加速卡", "No accelerators on this node"],
  last_hour: ["上一小时（本节点及下级）", "The last hour (this node and below)"], selections_requested: ["选型请求", "Selections"],
  matched_rate: ["匹配率", "Matched"], cross_region: ["跨省应答占比", "Answered from another province"],
  sign_ins_failed: ["登录失败", "Failed sign-ins"], registrations_submitted: ["注册申请", "Registrations filed"],
  enrollments_refused: ["被拒绝的接入", "Refused enrollments"],
  complete: ["完整", "complete"], missing: ["未上报", "not reported"], refused_reports: ["被拒绝的上报", "Refused reports"],
  create_node_token: ["签发加入令牌", "Create join token"], own_ids: ["本节点标识", "Own identifiers"], subtree_ids: ["子树标识（含下级）", "Identifiers in the subtree"],
  duplicate_uscc: ["在多个下级登记的同一机构（请核查）", "One organisation filed under several children (check)"], unspooled: ["待备案", "Not yet filed"],
  node_join_once: ["下级节点执行（只显示一次）：", "On the child node (shown once):"],
  disconnected: ["未连接", "disconnected"], dropped: ["已丢弃", "dropped"],
  subtree_providers: ["下级节点的提供方（按备案的标识）", "Providers at descendants (from their filed identifiers)"],
  range: ["时间范围", "Range"], range_1h: ["1 小时（实时）", "1 hour (live)"], range_24h: ["24 小时", "24 hours"], range_7d: ["7 天", "7 days"], range_30d: ["30 天", "30 days"],
  history_note: ["按存储的样本和分钟汇总绘制，每点为一个时段的均值。", "Drawn from stored samples and minute rollups, each point a step's mean."],
  group_monitoring: ["监测", "Monitoring"], group_resources: ["算力资源", "Compute"], group_center: ["服务中心", "Service center"], group_node: ["节点", "Node"],
  accounts: ["账户", "Accounts"], me: ["我的账户", "My account"], selections: ["选择记录", "Selection log"],
  created_at: ["创建时间", "Created"], account_state: ["状态", "State"], enabled: ["启用", "enabled"], disabled: ["已停用", "disabled"],
  disable: ["停用", "Disable"], enable: ["启用", "Enable"], set_role: ["改为此角色", "Set role"], create_account: ["创建账户", "Create account"],
  password_optional: ["密码（留空则生成）", "Password (generated if empty)"], provider_code: ["提供商编码（机构角色）", "Provider code (organisation roles)"],
  generated_password: ["生成的密码（只显示一次，首次登录须修改）：", "Generated password (shown once; to be changed at first sign-in):"],
  change_password: ["修改密码", "Change password"], current_password: ["当前密码", "Current password"], new_password: ["新密码", "New password"],
  password_changed: ["密码已修改，其他会话已退出。", "Password changed; your other sessions are signed out."],
  must_change: ["当前密码是系统生成的初始密码：请先设置新密码。", "Your password was generated: set a new one first."],
  api_keys: ["API 密钥", "API keys"], ttl_days: ["有效期（天）", "Valid for (days)"], create_key: ["创建密钥", "Create key"],
  key_once: ["密钥（只显示一次）：", "Key (shown once):"], demand: ["需求", "Demand"], chosen: ["选中", "Chosen"],
  candidates: ["候选", "Candidates"], no_match: ["未匹配原因", "Why nothing matched"], elapsed_ms: ["耗时 ms", "Took ms"],
  filter: ["筛选", "Filter"], since: ["起始", "From"], until: ["截止", "To"], older: ["更早", "Older"],
  action_prefix: ["操作（前缀，如 account.）", "Action (prefix, e.g. account.)"], subject_contains: ["对象包含", "Subject contains"],
  no_entries: ["没有符合条件的记录。", "Nothing matches."], never: ["从未", "never"],
  role_admin: ["管理员", "admin"], role_operator: ["运维", "operator"], role_viewer: ["只读", "viewer"], role_provider: ["资源提供商", "provider"],
  role_reseller: ["转售调度服务商", "reseller"], role_line_provider: ["专线服务商", "line provider"], role_user: ["用户", "user"],
};
let lang = localStorage.getItem("suanli.lang") || "zh";
const t = (k) => (T[k] ? T[k][lang === "zh" ? 0 : 1] : k);

let me = null; // {login, role, provider, csrf_token}
let live = null; // the open EventSource, if any
let refresh = null; // the overview's refresh timer
window.suanliCharts = {}; // name -> uPlot, for tests and the curious

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error((data && (data.detail + (data.errors ? "\n" + data.errors.map((e) => e.field + ": " + e.message).join("\n") : ""))) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

// Dates as staff in China write them: 2026-12-07 01:42 (local time).
const pad2 = (n) => String(n).padStart(2, "0");
const fmtTime = (ms, seconds) => {
  if (!ms) return "—";
  const d = new Date(ms);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}` + (seconds ? `:${pad2(d.getSeconds())}` : "");
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
};
const fmtBytes = (b) => (b == null ? "—" : b >= 2 ** 40 ? (b / 2 ** 40).toFixed(1) + " TiB" : (b / 2 ** 30).toFixed(1) + " GiB");
// The provinces as a tile grid (a cartogram: one tile each, placed roughly
// where it lies, no boundary data to review), keyed by GB/T 2260 code:
// [code, 简称, English, row, column].
const PROVINCES = [
  ["23", "黑", "HL", 0, 7], ["22", "吉", "JL", 1, 7], ["15", "内蒙古", "NM", 1, 5], ["65", "新", "XJ", 2, 0],
  ["11", "京", "BJ", 2, 5], ["12", "津", "TJ", 2, 6], ["21", "辽", "LN", 2, 7], ["62", "甘", "GS", 3, 2],
  ["64", "宁", "NX", 3, 3], ["14", "晋", "SX", 3, 4], ["13", "冀", "HE", 3, 5], ["37", "鲁", "SD", 3, 6],
  ["54", "藏", "XZ", 4, 0], ["63", "青", "QH", 4, 1], ["61", "陕", "SN", 4, 3], ["41", "豫", "HA", 4, 4],
  ["34", "皖", "AH", 4, 5], ["32", "苏", "JS", 4, 6], ["31", "沪", "SH", 4, 7], ["51", "川", "SC", 5, 2],
  ["50", "渝", "CQ", 5, 3], ["42", "鄂", "HB", 5, 4], ["36", "赣", "JX", 5, 5], ["33", "浙", "ZJ", 5, 6],
  ["53", "滇", "YN", 6, 2], ["52", "黔", "GZ", 6, 3], ["43", "湘", "HN", 6, 4], ["35", "闽", "FJ", 6, 5],
  ["71", "台", "TW", 6, 7], ["45", "桂", "GX", 7, 3], ["44", "粤", "GD", 7, 4], ["81", "港", "HK", 7, 5],
  ["46", "琼", "HI", 8, 3], ["82", "澳", "MO", 8, 4],
];

// The subtree's capacity by province on the tile grid, shaded by the
// FP32-equivalent total; each tile's title gives its figures.
function provinceMap(byProvince) {
  const max = Math.max(1, ...Object.values(byProvince).map((p) => p.headline.fp32_equivalent_gflops));
  const tiles = PROVINCES.map(([code, zh, en, row, col]) => {
    const p = byProvince[code];
    const share = p ? p.headline.fp32_equivalent_gflops / max : 0;
    const title = p
      ? `${zh} (${code})\n${t("intelligent_fp16")}: ${fmtFlops(p.headline.intelligent_fp16_gflops)}\n${t("general_fp32")}: ${fmtFlops(p.headline.general_fp32_gflops)}\n${t("resources_total")}: ${Object.values(p.resources).reduce((a, b) => a + b, 0)}`
      : `${zh} (${code})`;
    const tile = el("div", { class: "tile" + (p ? " has" : ""), "data-province": code, title },
      el("span", { class: "name" }, lang === "zh" ? zh : en), p ? el("span", { class: "v" }, fmtFlops(p.headline.fp32_equivalent_gflops)) : null);
    // Through the CSSOM: the CSP allows no style attributes.
    tile.style.gridRow = String(row + 1);
    tile.style.gridColumn = String(col + 1);
    tile.style.setProperty("--share", share.toFixed(3));
    return tile;
  });
  return el("div", { class: "province-map", id: "province-map" }, tiles);
}

// The subtree's AI capacity (registered, available) and accelerator
// utilization over time, from the stored resource reports: the last 24 hours
// (a point every 5 minutes) or the last 30 days (hourly rollups' means).
function trendCharts(trend, span) {
  const box = (id, title) => el("div", { class: "chart", id }, el("h3", {}, title));
  const capacity = box(`chart-trend-capacity-${span}`, t("fp16_trend"));
  const utilization = box(`chart-trend-util-${span}`, t("accel_util"));
  const parts = [el("h2", {}, t(span === "30d" ? "trend_30d" : "trend_24h")), el("div", { class: "charts" }, capacity, utilization)];
  const points = trend.points;
  for (const b of [capacity, utilization]) b.dataset.points = String(points.length);
  if (points.length < 2) {
    for (const b of [capacity, utilization]) b.append(el("div", { class: "none" }, t("no_trend")));
    return parts;
  }
  const x = points.map((p) => p.period_start_ms / 1000);
  const pflops = (g) => g / 1e6;
  const name = span === "30d" ? "30d" : "";
  window.suanliCharts["trendCapacity" + name] = new uPlot({
    width: 420, height: 180, axes: [timeAxis(), {}],
    series: [timeSeries(), { label: t("fp16_registered"), stroke: "#c8102e", width: 1.5 }, { label: t("fp16_available"), stroke: "#1a7f37", width: 1.5 }],
  }, [x, points.map((p) => pflops(p.headline.intelligent_fp16_gflops)), points.map((p) => pflops(p.available_intelligent_fp16_gflops))], capacity);
  window.suanliCharts["trendUtil" + name] = new uPlot({
    width: 420, height: 180, axes: [timeAxis(), {}], scales: { y: { range: [0, 100] } },
    series: [timeSeries(),
      { label: t("accel_util"), stroke: "#0969da", width: 1.5 },
      { label: t("online_share"), stroke: "#8250df", width: 1, dash: [4, 3] }],
  }, [x, points.map((p) => (p.accelerator_utilization_permille == null ? null : p.accelerator_utilization_permille / 10)),
    points.map((p) => (p.accelerators_online_permille == null ? null : p.accelerators_online_permille / 10))], utilization);
  return parts;
}

// Time axes and legends as staff in China write dates (2026-12-07 01:42):
// hours and minutes on an axis of a day or two, month and day beyond.
const timeAxis = () => ({
  space: 70,
  values: (u, ticks) => {
    const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
    // Days over two days, seconds under ten minutes, else hours and minutes.
    return ticks.map((s) => (span > 2 * 86400 ? fmtTime(s * 1000).slice(5, 10) : fmtTime(s * 1000, span < 600).slice(11)));
  },
});
const timeSeries = () => ({ label: t("time"), value: (u, s) => (s == null ? "—" : fmtTime(s * 1000)) });

// The hourly streams over the last 7 days, summed over the subtree: one
// chart each (flows 8–10), a point an hour.
const STREAM_SERIES = {
  scheduling: [["selections_requested", "", "#0969da"], ["selections_matched", "", "#1a7f37"], ["selections_cross_region", "", "#bf8700"]],
  platform: [["api_calls", null, "#0969da"], ["api_client_errors", null, "#bf8700"], ["api_server_errors", null, "#c8102e"], ["sign_ins_failed", "", "#8250df"]],
  application: [["api_key_calls", null, "#0969da"], ["api_keys_active", "", "#1a7f37"]],
};
function streamCharts(series) {
  const boxes = Object.entries(series).map(([stream, data]) => {
    const box = el("div", { class: "chart", id: `chart-stream-${stream}` }, el("h3", {}, t("stream_" + stream)));
    box.dataset.points = String(data.points.length);
    if (data.points.length < 2) {
      box.append(el("div", { class: "none" }, t("no_trend")));
      return box;
    }
    // A label of null sums the figure over its labels (route classes).
    const value = (p, name, label) => p.figures.filter((f) => f.name === name && (label === null || f.label === label)).reduce((a, f) => a + f.value, 0);
    const lines = STREAM_SERIES[stream];
    window.suanliCharts["stream_" + stream] = new uPlot({
      width: 420, height: 180, axes: [timeAxis(), {}],
      series: [timeSeries(), ...lines.map(([name, , stroke]) => ({ label: t("fig_" + name), stroke, width: 1.5 }))],
    }, [data.points.map((p) => p.period_start_ms / 1000), ...lines.map(([name, label]) => data.points.map((p) => value(p, name, label)))], box);
    return box;
  });
  return [el("h2", {}, t("streams_7d")), el("div", { class: "charts" }, boxes)];
}

// This node's accelerators, a block of cells per host (by region, then
// hostname), shaded from idle (pale) to hot (red); grey: no reading. One
// canvas, so a node of thousands of hosts draws at once.
function heatmap(data) {
  const parts = [el("h2", {}, t("heatmap"), data.truncated ? ` (${data.hosts.length} / ${data.hosts_total})` : "")];
  if (!data.hosts.length) return [...parts, el("p", { class: "note", id: "heatmap" }, t("no_accelerators"))];
  const cell = 10, gap = 1, perRow = 8;
  const blockW = (cell + gap) * perRow + 6;
  const blockH = (rows) => (cell + gap) * rows + 6;
  const width = Math.min(1200, Math.max(blockW, data.hosts.length * blockW));
  const columns = Math.max(1, Math.floor(width / blockW));
  const tallest = Math.max(...data.hosts.map((h) => Math.ceil(h.utilization_percent.length / perRow)));
  const canvas = el("canvas", { id: "heatmap", width, height: Math.ceil(data.hosts.length / columns) * blockH(tallest) });
  canvas.dataset.cells = String(data.hosts.reduce((n, h) => n + h.utilization_percent.length, 0));
  const ctx = canvas.getContext("2d");
  const at = (i) => [(i % columns) * blockW, Math.floor(i / columns) * blockH(tallest)];
  data.hosts.forEach((h, i) => {
    const [x0, y0] = at(i);
    h.utilization_percent.forEach((u, g) => {
      ctx.fillStyle = u == null ? "#d0d7de" : `hsl(${Math.round(120 - 120 * Math.min(u, 100) / 100)}, 70%, ${Math.round(85 - 35 * Math.min(u, 100) / 100)}%)`;
      ctx.fillRect(x0 + (g % perRow) * (cell + gap), y0 + Math.floor(g / perRow) * (cell + gap), cell, cell);
    });
  });
  canvas.addEventListener("mousemove", (ev) => {
    const i = Math.floor(ev.offsetY / blockH(tallest)) * columns + Math.floor(ev.offsetX / blockW);
    const h = data.hosts[i];
    if (!h) { canvas.title = ""; return; }
    const [x0, y0] = at(i);
    const g = Math.floor((ev.offsetY - y0) / (cell + gap)) * perRow + Math.floor((ev.offsetX - x0) / (cell + gap));
    const u = h.utilization_percent[g];
    canvas.title = `${h.hostname} (${h.region}) · ${t(h.state)}` + (g < h.utilization_percent.length ? ` · #${g}: ${u == null ? "—" : u + " %"}` : "");
  });
  return [...parts, canvas];
}

// The last hour's platform and scheduling counts over the subtree.
function hourCards(platform, scheduling) {
  const value = (r, name, label = "") => (r.figures.find((f) => f.name === name && f.label === label) || {}).value;
  const share = (a, b) => (b ? fmtPct((100 * a) / b) : "—");
  const card = (n, l, id) => el("div", { class: "card", id }, el("div", { class: "n" }, n ?? "—"), el("div", { class: "l" }, l));
  const requested = value(scheduling, "selections_requested");
  return [
    el("h2", {}, t("last_hour"), " · ", fmtTime(scheduling.period_start_ms)),
    el("div", { class: "cards", id: "hour-cards" },
      card(requested, t("selections_requested"), "hour-selections"),
      card(share(value(scheduling, "selections_matched"), requested), t("matched_rate")),
      card(share(value(scheduling, "selections_cross_region"), value(scheduling, "selections_with_user_region")), t("cross_region")),
      card(value(platform, "registrations_submitted"), t("registrations_submitted")),
      card(value(platform, "sign_ins_failed"), t("sign_ins_failed"), "hour-sign-ins-failed"),
      card(value(platform, "enrollments_refused"), t("enrollments_refused"))),
  ];
}

// GFLOPS in the unit that reads best: E/P/T/GFLOPS, three significant digits.
const fmtFlops = (g) => {
  if (g == null) return "—";
  if (g === 0) return "0";
  const [v, u] = g >= 1e9 ? [g / 1e9, "EFLOPS"] : g >= 1e6 ? [g / 1e6, "PFLOPS"] : g >= 1e3 ? [g / 1e3, "TFLOPS"] : [g, "GFLOPS"];
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + " " + u;
};
const fmtPct = (p) => (p == null ? "—" : p.toFixed(1) + " %");
const stateCell = (s) => el("td", { class: "state-" + s }, s ? t(s) : "—");
const healthCell = (r) => el("td", { class: "health health-" + r.health, title: (r.health_reasons || []).join("\n") }, t(r.health),
  r.health_reasons && r.health_reasons.length ? el("div", { class: "reasons" }, r.health_reasons.join("; ")) : null);
const seesAlerts = (role) => role !== "user" && role !== "line_provider";
const listsHosts = (role) => role !== "user" && role !== "line_provider";

function table(headers, rows) {
  const tbody = el("tbody", {}, rows);
  const head = el("tr", {}, headers.map((h, i) => el("th", { onclick: () => sortBy(tbody, i) }, h)));
  // A wide table scrolls inside its box; the page itself never does.
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), tbody));
}

function sortBy(tbody, column) {
  const rows = [...tbody.rows];
  const dir = tbody.dataset.sorted === String(column) ? -1 : 1;
  rows.sort((a, b) => dir * a.cells[column].textContent.localeCompare(b.cells[column].textContent, undefined, { numeric: true }));
  tbody.dataset.sorted = dir === 1 ? String(column) : "";
  tbody.replaceChildren(...rows);
}

function errorBox(e) {
  return el("p", { class: "error", role: "alert" }, e.message || String(e));
}

// ---- pages ----

// Every host in every state (enrolled and never seen, revoked), filtered,
// a hundred to a page.
async function hostList(main, params) {
  const q = new URLSearchParams(params);
  const states = ["online", "stale", "offline", "enrolled", "revoked"];
  const form = el("form", { class: "inline", id: "host-filter" },
    el("label", {}, t("hostname_or_id"), el("input", { name: "q", value: q.get("q") || "", size: 16 })),
    el("label", {}, t("state"), el("select", { name: "state" }, el("option", { value: "" }, t("any")), states.map((s) => el("option", { value: s, selected: q.get("state") === s }, t(s))))),
    el("label", {}, t("provider"), el("input", { name: "provider", value: q.get("provider") || "", size: 8 })),
    el("label", {}, t("region"), el("input", { name: "region", value: q.get("region") || "", size: 6 })),
    el("label", {}, t("model"), el("input", { name: "model", value: q.get("model") || "", size: 10 })),
    el("button", { class: "primary", type: "submit" }, t("search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.hash = "#/hosts?" + next.toString();
  });
  const ask = new URLSearchParams(q);
  ask.set("limit", "100");
  const data = await api("GET", "/api/v1/hosts?" + ask.toString());
  const rows = data.hosts.map((h) => el("tr", { "data-host": String(h.host_id) },
    el("td", {}, el("a", { href: "#/hosts/" + h.host_id, class: "host-row-link" }, h.hostname)),
    stateCell(h.state), el("td", {}, h.provider), el("td", {}, h.region || "—"),
    el("td", { class: "mono" }, h.identifier || "—"), el("td", {}, h.resources.length),
    el("td", {}, fmtTime(h.last_seen_ms)), el("td", {}, h.link.rtt_us == null ? "—" : (h.link.rtt_us / 1000).toFixed(1) + " ms")));
  main.append(el("h1", {}, t("hosts")), form,
    rows.length ? table([t("hostname"), t("state"), t("provider"), t("region"), t("identifier"), t("resource_count"), t("last_seen"), t("rtt")], rows)
      : el("p", { class: "note", id: "no-hosts" }, t("no_hosts")));
  const nav = el("p", {});
  if (q.get("cursor")) { const first = new URLSearchParams(q); first.delete("cursor"); nav.append(el("a", { href: "#/hosts?" + first }, t("first")), " "); }
  if (data.next_cursor) { const next = new URLSearchParams(q); next.set("cursor", data.next_cursor); nav.append(el("a", { href: "#/hosts?" + next, id: "hosts-next" }, t("next"))); }
  main.append(nav);
}

const pages = {
  async overview(main) {
    // Every call at once: the page waits for the slowest, not for the sum.
    const staff = ["admin", "operator", "viewer"].includes(me.role);
    const get = (path, wanted = true) => (wanted ? api("GET", path) : Promise.resolve(null));
    const [s, alerts, market, trend24, trend30, heat, platformHour, schedulingHour, series, tree] = await Promise.all([
      get("/api/v1/summary"),
      get("/api/v1/alerts?state=firing&limit=1000", seesAlerts(me.role)),
      get("/api/v1/reports", staff),
      get("/api/v1/reports/trend?hours=24", staff),
      get("/api/v1/reports/trend?days=30", staff),
      get("/api/v1/heatmap", staff),
      get("/api/v1/reports?stream=platform", staff),
      get("/api/v1/reports?stream=scheduling", staff),
      staff ? Promise.all(["scheduling", "platform", "application"].map(async (stream) =>
        [stream, await api("GET", `/api/v1/reports/figures?stream=${stream}&days=7`)])).then(Object.fromEntries) : null,
      get("/api/v1/nodes", staff),
    ]);
    const card = (n, l, id) => el("div", { class: "card", id }, el("div", { class: "n" }, n), el("div", { class: "l" }, l));
    // A count opens the hosts list for those who may list hosts.
    const hostsLink = (state, c) => (listsHosts(me.role) ? el("a", { href: "#/hosts?state=" + state }, c) : c);
    let alertCards = null;
    if (alerts) {
      const firing = alerts.alerts;
      const n = (sev) => firing.filter((a) => a.severity === sev).length;
      alertCards = el("div", { class: "cards" },
        el("a", { href: "#/alerts" }, card(n("critical"), t("alerts_firing") + " · " + t("critical"), "alerts-critical")),
        el("a", { href: "#/alerts" }, card(n("warning"), t("alerts_firing") + " · " + t("warning"), "alerts-warning")),
        el("a", { href: "#/alerts" }, card(n("info"), t("alerts_firing") + " · " + t("info"), "alerts-info")));
    }
    // 算力规模 leads: over the subtree for staff (the latest period every
    // node reported), this node's own now for everyone else.
    const h = market ? market.headline : s.headline;
    const scaleCards = el("div", { class: "cards scale" },
      card(fmtFlops(h.intelligent_fp16_gflops), t("intelligent_fp16"), "scale-intelligent"),
      card(fmtFlops(h.general_fp32_gflops), t("general_fp32"), "scale-general"),
      card(fmtFlops(h.supercomputing_fp64_gflops), t("supercomputing_fp64"), "scale-supercomputing"),
      card(fmtFlops(h.fp32_equivalent_gflops), t("fp32_equivalent"), "scale-fp32-equivalent"));
    const unrated = market
      ? Object.entries(market.scale.by_type).map(([type, p]) => [type, (p[type === "A" ? "fp16" : type === "H" ? "fp64" : "fp32"] || {}).unrated || 0])
      : Object.entries(s.unrated || {});
    const unratedCount = unrated.reduce((n, [, u]) => n + u, 0);
    let marketParts = [];
    if (market) {
      marketParts = [
        el("p", { class: "note", id: "scale-period" }, `${t("period")}: ${fmtTime(market.period_start_ms, true)} · ${market.period_ms / 1000} s · `,
          market.complete ? t("complete") : `${t("missing")}: ${market.missing.join(", ")}`),
        Object.keys(market.by_province).length ? provinceMap(market.by_province) : null,
        market.origins.length > 1 ? table([t("reported_by"), t("via"), t("intelligent_fp16"), t("general_fp32"), t("resources_total")],
          market.origins.map((o) => el("tr", { "data-origin": o.origin },
            el("td", { class: "mono" }, o.origin), el("td", { class: "mono" }, o.via || t("this_node")),
            el("td", {}, fmtFlops(o.headline.intelligent_fp16_gflops)), el("td", {}, fmtFlops(o.headline.general_fp32_gflops)),
            el("td", {}, Object.values(o.resources).reduce((a, b) => a + b, 0))))) : null,
        ...trendCharts(trend24, "24h"),
        ...trendCharts(trend30, "30d"),
        ...heatmap(heat),
        ...hourCards(platformHour, schedulingHour),
        ...streamCharts(series),
        market.refusals.length ? el("p", { class: "error", id: "refused-reports" }, `${t("refused_reports")}: ${market.refusals.length} · ${market.refusals[0].origin}: ${market.refusals[0].reason}`) : null,
      ];
    }
    let treeCards = null;
    if (staff) {
      const n = tree;
      treeCards = el("div", { class: "cards" },
        el("a", { href: "#/nodes" }, card(n.identifiers.own, t("own_ids"), "own-ids")),
        el("a", { href: "#/nodes" }, card(n.identifiers.subtree, t("subtree_ids"), "overview-subtree-ids")),
        el("a", { href: "#/nodes" }, card(n.children.filter((c) => c.link === "connected").length + " / " + n.children.filter((c) => c.state === "approved").length, t("nodes") + " · " + t("connected"))));
    }
    // `append` writes a null as the text "null": what a role does not see is left out.
    main.append(...[
      el("h1", {}, t("overview")),
      el("h2", {}, market ? t("scale_subtree") : t("scale")),
      scaleCards,
      unratedCount ? el("p", { class: "note", id: "scale-unrated" }, `${unratedCount} ${t("unrated_note")}`) : null,
      ...marketParts,
      alertCards,
      treeCards,
      el("div", { class: "cards" },
        hostsLink("online", card(s.hosts.online, t("online"), "hosts-online")),
        hostsLink("stale", card(s.hosts.stale, t("stale_card"))),
        hostsLink("offline", card(s.hosts.offline, t("offline_card"))),
        card(s.resources_total, t("resources_total")), card(s.connected_agents, t("agents")),
        card(s.capacity.logical_cpus, t("cpus")), card(fmtBytes(s.capacity.memory_bytes), t("memory")),
        card(fmtPct(s.mean_cpu_utilization_percent), t("cpu_util"))),
      el("h2", {}, t("by_type")),
      table([t("type"), t("total"), t("online"), t("free_now"), t("util")],
        s.by_resource_type.map((r) => el("tr", {}, el("td", {}, r.key), el("td", {}, r.total), el("td", {}, r.online), el("td", {}, r.free_now), el("td", {}, fmtPct(r.mean_utilization_percent))))),
      el("h2", {}, t("by_model")),
      table([t("model"), t("total"), t("online"), t("free_now"), t("memory"), t("util")],
        s.by_accelerator_model.map((r) => el("tr", {}, el("td", {}, r.key), el("td", {}, r.total), el("td", {}, r.online), el("td", {}, r.free_now), el("td", {}, fmtBytes(r.memory_bytes)), el("td", {}, fmtPct(r.mean_utilization_percent))))),
    ].filter((part) => part !== null));
  },

  async resources(main, params) {
    const q = new URLSearchParams(params);
    const form = el("form", { class: "inline", id: "resource-filter" },
      el("label", {}, t("identifier") + " / " + t("hostname"), el("input", { name: "q", value: q.get("q") || "" })),
      el("label", {}, t("type"), el("select", { name: "type" }, el("option", { value: "" }, t("any")), ["C", "A", "H"].map((c) => el("option", { value: c, selected: q.get("type") === c }, c)))),
      el("label", {}, t("model"), el("input", { name: "model", value: q.get("model") || "", size: 10 })),
      el("label", {}, t("region"), el("input", { name: "region", value: q.get("region") || "", size: 6 })),
      el("label", {}, t("provider"), el("input", { name: "provider", value: q.get("provider") || "", size: 8 })),
      el("label", {}, t("state"), el("select", { name: "state" }, el("option", { value: "" }, t("any")), ["online", "stale", "offline", "revoked"].map((s) => el("option", { value: s, selected: q.get("state") === s }, t(s))))),
      el("label", {}, t("free_now"), el("select", { name: "free" }, el("option", { value: "" }, t("any")), el("option", { value: "true", selected: q.get("free") === "true" }, t("yes")))),
      el("button", { class: "primary", type: "submit" }, t("search")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
      location.hash = "#/resources?" + next.toString();
    });
    const data = await api("GET", "/api/v1/resources?" + q.toString());
    const rows = data.resources.map((r) => el("tr", { "data-identifier": r.identifier },
      el("td", { class: "mono" }, el("a", { href: "#/hosts/" + r.host_id, class: "host-link" }, r.identifier)),
      el("td", {}, r.hostname), el("td", {}, r.resource_type_name[lang === "zh" ? "zh" : "en"]), el("td", {}, r.model || "—"),
      el("td", {}, r.provider ? r.provider.code : "—"), el("td", {}, r.region || "—"),
      stateCell(r.state), healthCell(r), el("td", {}, r.free_now == null ? "—" : r.free_now ? t("yes") : t("no")), el("td", {}, fmtTime(r.last_seen_ms))));
    main.append(el("h1", {}, t("resources")), form,
      table([t("identifier"), t("hostname"), t("type"), t("model"), t("provider"), t("region"), t("state"), t("health"), t("free_now"), t("last_seen")], rows));
    const nav = el("p", {});
    if (q.get("cursor")) { const first = new URLSearchParams(q); first.delete("cursor"); nav.append(el("a", { href: "#/resources?" + first }, t("first")), " "); }
    if (data.next_cursor) { const next = new URLSearchParams(q); next.set("cursor", data.next_cursor); nav.append(el("a", { href: "#/resources?" + next }, t("next"))); }
    main.append(nav);
  },

  async hosts(main, params, id) {
    if (!id) return hostList(main, params);
    // The charts open with the range's history; the last hour goes on live.
    const hours = [1, 24, 168, 720].includes(Number(new URLSearchParams(params).get("hours"))) ? Number(new URLSearchParams(params).get("hours")) : 1;
    const base = "/api/v1/hosts/" + encodeURIComponent(id);
    const [h, hist] = await Promise.all([api("GET", base), api("GET", base + "/history?hours=" + hours)]);
    const inv = h.inventory || {};
    const cpu = inv.cpu || {};
    const os = inv.os || {};
    main.append(el("h1", {}, t("host_detail"), " · ", h.hostname),
      el("dl", { class: "facts" },
        el("dt", {}, t("identifier")), el("dd", { class: "mono", id: "host-identifier" }, h.identifier || "—"),
        el("dt", {}, t("provider")), el("dd", {}, h.provider.code + " " + h.provider.name),
        el("dt", {}, t("state")), el("dd", { class: "state-" + h.state, id: "host-state" }, t(h.state)),
        el("dt", {}, t("cpu_model")), el("dd", {}, (cpu.modelName || "—") + " × " + (cpu.logicalCpus || "?")),
        el("dt", {}, t("memory")), el("dd", {}, fmtBytes(inv.memoryTotalBytes ? Number(inv.memoryTotalBytes) : null)),
        el("dt", {}, t("os")), el("dd", {}, [os.name, os.version, os.kernelVersion].filter(Boolean).join(" · ") || "—"),
        el("dt", {}, t("rtt")), el("dd", {}, h.link.rtt_us == null ? "—" : (h.link.rtt_us / 1000).toFixed(2) + " ms"),
        el("dt", {}, t("samples")), el("dd", { id: "sample-count" }, "0")),
      el("p", { class: "ranges", id: "history-range" }, t("range"), ": ",
        ...[[1, "range_1h"], [24, "range_24h"], [168, "range_7d"], [720, "range_30d"]].map(([n, k]) =>
          el("a", { href: `#/hosts/${encodeURIComponent(id)}?hours=${n}`, class: n === hours ? "active" : "", "data-hours": n }, t(k)))),
      el("p", { class: "note" }, hours === 1 ? t("live_note") : t("history_note")));
    if (h.holds.length) {
      main.append(el("h2", {}, t("holds_on_host")), table([t("identifier"), t("reservation"), t("holder"), t("held_until")],
        h.holds.map((x) => el("tr", { class: "hold-row" }, el("td", { class: "mono" }, x.identifier), el("td", { class: "mono" }, x.reservation),
          el("td", {}, x.holder), el("td", {}, fmtTime(x.until_ms))))));
    }
    const accels = h.resources.filter((r) => r.resource_type === "A");
    if (accels.length) {
      const manager = ["admin", "operator"].includes(me.role);
      main.append(el("h2", {}, t("accelerators")), table(
        [t("identifier"), t("model"), t("memory"), t("health"), t("throttle"), t("ecc"), t("remapped"), t("xids"), t("nvlink"), t("processes"), ""],
        accels.map((r) => {
          const g = r.live || {};
          const f = r.faults || { recent: [], counts: {} };
          const xids = Object.entries(f.counts || {}).map(([code, n]) => `XID ${code} ×${n}`).join(", ");
          const remap = g.remapped_rows_failure ? "failed" : g.remapped_rows_pending ? "pending" : "—";
          const action = manager && !r.selectable
            ? el("button", { class: "mark-healthy", onclick: async (ev) => {
                const reason = prompt(t("reason"));
                if (!reason) return;
                try { await api("POST", "/api/v1/resources/" + encodeURIComponent(r.identifier) + "/mark-healthy", { reason }); route(); }
                catch (e) { ev.target.after(errorBox(e)); }
              } }, t("mark_healthy"))
            : null;
          return el("tr", { class: "accelerator", "data-identifier": r.identifier },
            el("td", { class: "mono" }, r.identifier), el("td", {}, r.model || "—"), el("td", {}, fmtBytes(r.memory_bytes)),
            healthCell(r), el("td", {}, (g.throttle_reasons || []).join(", ") || "—"),
            el("td", {}, g.ecc_uncorrected_volatile ?? "—"), el("td", {}, remap), el("td", {}, xids || "—"),
            el("td", {}, g.nvlink_active == null ? "—" : `${g.nvlink_active}/${g.nvlink_down}`),
            el("td", { class: "mono" }, (g.processes || []).join(", ") || "—"), el("td", {}, action));
        })));
    }
    const gpus = (inv.gpus || []).length;
    // "NPU 3", "GPU 0": each series named as its vendor calls the device.
    const deviceName = (i) => {
      const g = (inv.gpus || [])[i] || {};
      return (g.kind || "ACCELERATOR_KIND_GPU").replace("ACCELERATOR_KIND_", "") + " " + (g.index ?? i);
    };
    const gib = (b) => (b == null ? null : b / 2 ** 30);
    // Axes that mean something: percentages of the whole, memory against
    // what is installed.
    const memTotal = gib(inv.memoryTotalBytes ? Number(inv.memoryTotalBytes) : null);
    const cardTotal = Math.max(0, ...accels.map((r) => gib(r.memory_bytes) || 0)) || null;
    const specs = [
      ["cpu", t("cpu_chart"), (v) => [v.cpu_utilization_percent], (x) => [x.cpu_utilization_percent], [0, 100]],
      ["memory", t("mem_chart"), (v) => [gib(v.memory_used_bytes)], (x) => [x.memory_used_bytes.map(gib)], memTotal && [0, memTotal]],
      ["gpu_util", t("gpu_util_chart"), (v) => v.gpus.map((g) => g.utilization_percent), (x) => x.gpus.map((g) => g.gpu_utilization_percent), [0, 100]],
      ["gpu_mem", t("gpu_mem_chart"), (v) => v.gpus.map((g) => gib(g.memory_used_bytes)), (x) => x.gpus.map((g) => g.gpu_memory_used_bytes.map(gib)), cardTotal && [0, cardTotal]],
      ["gpu_temp", t("gpu_temp_chart"), (v) => v.gpus.map((g) => g.temperature_celsius), (x) => x.gpus.map((g) => g.gpu_temperature_celsius), null],
      ["gpu_power", t("gpu_power_chart"), (v) => v.gpus.map((g) => g.power_watts), (x) => x.gpus.map((g) => g.gpu_power_watts), null],
    ];
    const grid = el("div", { class: "charts" });
    main.append(grid);
    const charts = [];
    for (const [name, title, pick, past, range] of specs) {
      const box = el("div", { class: "chart", id: "chart-" + name }, el("h3", {}, title));
      grid.append(box);
      const series = name.startsWith("gpu") ? gpus : 1;
      if (series === 0) { box.append(el("div", { class: "none" }, t("no_gpu"))); continue; }
      const stored = past(hist);
      const data = [hist.t_ms.map((ms) => ms / 1000), ...Array.from({ length: series }, (_, i) => (stored[i] || []).slice())];
      const plot = new uPlot({
        // As wide as its box allows: a phone gets a narrower chart, not a wider page.
        width: Math.min(400, Math.max(200, box.clientWidth - 16)), height: 180,
        series: [timeSeries(), ...Array.from({ length: series }, (_, i) => ({ label: series > 1 ? deviceName(i) : title, stroke: ["#c8102e", "#0969da", "#1a7f37", "#9a6700", "#8250df", "#bc4c00", "#1b7c83", "#6e7781"][i % 8], width: 1.5 }))],
        scales: { x: { time: true }, y: range ? { range: () => range } : {} },
        axes: [timeAxis(), {}],
      }, data, box);
      box.dataset.points = String(data[0].length);
      box.dataset.stored = String(hist.t_ms.length);
      window.suanliCharts[name] = plot;
      charts.push({ name, plot, data, pick, box });
    }
    if (live) live.close();
    if (hours !== 1) return;
    live = new EventSource("/api/v1/hosts/" + encodeURIComponent(id) + "/live");
    let count = 0;
    live.addEventListener("sample", (ev) => {
      const v = JSON.parse(ev.data);
      count += 1;
      document.getElementById("sample-count")?.replaceChildren(String(count));
      for (const c of charts) {
        const values = c.pick(v);
        c.data[0].push(v.collected_at_ms / 1000);
        for (let i = 1; i < c.data.length; i++) c.data[i].push(values[i - 1] ?? null);
        if (c.data[0].length > 900) for (const s of c.data) s.shift();
        c.plot.setData(c.data);
        c.box.dataset.points = String(c.data[0].length);
      }
    });
  },

  async alerts(main, params) {
    const q = new URLSearchParams(params);
    if (!q.get("state")) q.set("state", "firing");
    if (q.get("state") === "all") q.delete("state");
    const manager = me.role !== "viewer";
    const form = el("form", { class: "inline", id: "alert-filter" },
      el("label", {}, t("state"), el("select", { name: "state" }, ["firing", "resolved", "all"].map((s) => el("option", { value: s, selected: (q.get("state") || "all") === s }, t(s === "all" ? "state_all" : s))))),
      el("label", {}, t("severity"), el("select", { name: "severity" }, el("option", { value: "" }, t("any")), ["critical", "warning", "info"].map((s) => el("option", { value: s, selected: q.get("severity") === s }, t(s))))),
      el("label", {}, t("resource"), el("input", { name: "resource", value: q.get("resource") || "", size: 24 })),
      el("button", { class: "primary", type: "submit" }, t("search")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
      location.hash = "#/alerts?" + next.toString();
    });
    // Both at once, and the page drawn whole: a row's silence button fills
    // the form below, which is there when the row is.
    const [data, { silences }] = await Promise.all([api("GET", "/api/v1/alerts?" + q.toString()), api("GET", "/api/v1/silences")]);
    // A firing row is silenced (by which silence), or can be silenced from
    // here: the form below, prefilled with the alert's rule and host.
    const silenceCell = (a) => {
      if (a.silenced_by != null) {
        const label = t("silenced") + " #" + a.silenced_by;
        // To the silence's row below, when the caller may see it (a hash
        // link would leave the page).
        const listed = silences.some((s) => s.id === a.silenced_by);
        return el("td", { class: "silenced" }, listed ? el("a", { href: "", onclick: (ev) => { ev.preventDefault(); document.getElementById("silence-" + a.silenced_by)?.scrollIntoView({ block: "center" }); } }, label) : label);
      }
      if (!manager || a.resolved_at_ms) return el("td", {}, "—");
      return el("td", {}, el("button", { class: "silence-this", onclick: () => {
        const f = document.getElementById("silence-form");
        const lines = ["alertname=" + a.rule];
        // Hostnames are not unique across providers: the provider too.
        for (const k of ["provider", "hostname", "uuid", "mount", "port"]) if (a.labels?.[k]) lines.push(k + "=" + a.labels[k]);
        f.elements.matchers.value = lines.join("\n");
        f.scrollIntoView({ block: "center" });
        f.elements.reason.focus();
      } }, t("silence_this")));
    };
    const rows = data.alerts.map((a) => el("tr", { class: "alert" + (a.silenced_by != null ? " muted" : ""), "data-id": a.id, "data-rule": a.rule },
      el("td", { class: "sev-" + a.severity }, t(a.severity)), el("td", { class: "mono" }, a.rule), el("td", {}, a.summary),
      el("td", { class: "mono" }, a.resource || "—"), el("td", {}, fmtTime(a.started_at_ms)), el("td", {}, fmtTime(a.resolved_at_ms)),
      el("td", { class: "acked" }, a.acked_by || (manager && !a.resolved_at_ms
        ? el("button", { class: "ack", onclick: async (ev) => { try { await api("POST", `/api/v1/alerts/${a.id}/ack`); route(); } catch (e) { ev.target.after(errorBox(e)); } } }, t("ack"))
        : "—")), silenceCell(a)));
    main.append(el("h1", {}, t("alerts")), form,
      rows.length ? table([t("severity"), t("rule"), t("summary_col"), t("resource"), t("started"), t("resolved_at"), t("acked_by"), t("silence_col")], rows) : el("p", {}, t("no_alerts")));
    // Silences: what is muted, and making one.
    const out = el("div", {});
    const sform = el("form", { class: "stack", id: "silence-form" },
      el("label", {}, t("matchers"), el("textarea", { name: "matchers", rows: 2, required: true, placeholder: "hostname=gpu-07" })),
      el("label", {}, t("duration"), el("input", { name: "duration", value: "2h", size: 6 })),
      el("label", {}, t("reason"), el("input", { name: "reason", required: true })),
      el("button", { class: "primary", type: "submit", id: "silence-submit" }, t("create_silence")), out);
    sform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(sform);
      const matchers = String(f.get("matchers")).split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
        const m = l.match(/^([^=!~]+)(=~|!~|!=|=)(.*)$/);
        return m ? { name: m[1].trim(), op: m[2], value: m[3].trim() } : { name: l, op: "=", value: "" };
      });
      try { await api("POST", "/api/v1/silences", { matchers, duration: f.get("duration"), reason: f.get("reason") }); route(); }
      catch (e) { out.replaceChildren(errorBox(e)); }
    });
    main.append(el("h2", {}, t("silences")),
      table(["#", t("matchers"), t("ends"), t("creator"), t("reason"), ""], silences.map((s) => el("tr", { class: "silence", id: "silence-" + s.id },
        el("td", {}, s.id), el("td", { class: "mono" }, s.matchers.map((m) => m.name + (m.op || "=") + m.value).join(", ")),
        el("td", {}, fmtTime(s.ends_at_ms)), el("td", {}, s.created_by), el("td", {}, s.reason),
        el("td", {}, manager ? el("button", { onclick: async () => { await api("DELETE", "/api/v1/silences/" + s.id); route(); } }, t("end_now")) : null)))),
      manager ? sform : null);
  },

  async receivers(main, _params, id) {
    if (id) {
      const d = await api("GET", "/api/v1/receivers/" + encodeURIComponent(id) + "/attempts");
      main.append(el("h1", {}, t("attempts"), " · ", d.receiver.name),
        table([t("when"), t("alerts"), t("status"), t("errcode"), t("error"), t("latency"), t("retry")],
          d.attempts.map((a) => el("tr", {}, el("td", {}, fmtTime(a.at_ms)), el("td", {}, a.alerts), el("td", {}, a.http_status ?? "—"),
            el("td", {}, a.errcode || "—"), el("td", {}, a.error || "—"), el("td", {}, a.latency_ms), el("td", {}, a.retry)))));
      return;
    }
    const data = await api("GET", "/api/v1/receivers");
    const manager = me.role !== "viewer";
    const rows = data.receivers.map((r) => el("tr", {},
      el("td", {}, el("a", { href: "#/receivers/" + r.id }, r.name)), el("td", {}, r.kind), el("td", { class: "mono" }, r.url),
      el("td", {}, t(r.min_severity)), el("td", {}, Object.entries(r.deliveries || {}).map(([k, v]) => k + " " + v).join(", ") || "—"),
      el("td", {}, r.declared ? t("declared") : manager ? el("button", { onclick: async () => { await api("DELETE", "/api/v1/receivers/" + r.id); route(); } }, t("remove")) : null)));
    const out = el("div", {});
    const form = el("form", { class: "stack", id: "receiver-form" },
      el("label", {}, t("name"), el("input", { name: "name", required: true, pattern: "[A-Za-z0-9._-]{1,64}" })),
      el("label", {}, t("kind"), el("select", { name: "kind" }, ["dingtalk", "wecom", "feishu", "webhook", "alertmanager"].map((k) => el("option", { value: k }, k)))),
      el("label", {}, t("url"), el("input", { name: "url", required: true, size: 60 })),
      el("label", {}, t("secret"), el("input", { name: "secret", type: "password", autocomplete: "off" })),
      el("label", {}, t("mentions"), el("input", { name: "mentions" })),
      el("label", {}, t("min_severity"), el("select", { name: "min_severity" }, ["warning", "critical", "info"].map((k) => el("option", { value: k }, t(k))))),
      el("button", { class: "primary", type: "submit" }, t("add_receiver")), out);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const body = { name: f.get("name"), kind: f.get("kind"), url: f.get("url"), min_severity: f.get("min_severity") };
      if (f.get("secret")) body.secret = f.get("secret");
      const mentions = String(f.get("mentions")).split(",").map((m) => m.trim()).filter(Boolean);
      if (mentions.length) body.mentions = mentions;
      try { await api("POST", "/api/v1/receivers", body); route(); } catch (e) { out.replaceChildren(errorBox(e)); }
    });
    main.append(el("h1", {}, t("receivers")),
      table([t("name"), t("kind"), t("url"), t("min_severity"), t("deliveries"), ""], rows), manager ? form : null);
  },

  async rules(main) {
    const d = await api("GET", "/api/v1/rules");
    main.append(el("h1", {}, t("rules")),
      table([t("rule"), t("severity"), t("for_s"), t("threshold")], d.rules.map((r) => el("tr", {},
        el("td", { class: "mono" }, r.name), el("td", {}, t(r.severity)), el("td", {}, r.for_ms / 1000 + " s"), el("td", {}, r.description)))),
      el("h2", {}, t("xid_catalog"), " ", d.xid_catalog.version),
      table(["XID", t("name"), t("class"), t("severity"), t("action")], d.xid_catalog.codes.map((x) => el("tr", {},
        el("td", {}, x.xid), el("td", {}, x.name), el("td", {}, x.class), el("td", {}, t(x.severity)), el("td", {}, x.action)))));
  },

  async registrations(main) {
    const data = await api("GET", "/api/v1/registrations");
    const staff = ["admin", "operator"].includes(me.role);
    const rows = data.registrations.map((r) => {
      const actions = el("td", {});
      if (staff && r.state === "pending") {
        const reason = el("input", { placeholder: t("reason"), size: 12 });
        actions.append(
          el("button", { class: "primary", onclick: async () => { try { await api("POST", `/api/v1/registrations/${r.id}/approve`, {}); route(); } catch (e) { actions.append(errorBox(e)); } } }, t("approve")), " ",
          reason, " ",
          el("button", { onclick: async () => { try { await api("POST", `/api/v1/registrations/${r.id}/reject`, { reason: reason.value }); route(); } catch (e) { actions.append(errorBox(e)); } } }, t("reject")));
      } else actions.append(r.reason || "");
      return el("tr", {}, el("td", {}, r.name), el("td", {}, t("kind_" + r.kind)),
        el("td", { class: "mono" }, r.uscc, r.uscc_verified ? "" : el("div", { class: "error" }, t("unverified"))),
        el("td", {}, r.region), el("td", {}, r.industry), el("td", {}, r.contact), el("td", {}, r.account),
        el("td", {}, t(r.state), r.provider ? " · " + r.provider : ""), el("td", {}, fmtTime(r.created_at_ms)), actions);
    });
    main.append(el("h1", {}, t("registrations")),
      table([t("name"), t("kind"), t("uscc"), t("region"), t("industry"), t("contact"), t("account"), t("state"), t("created"), ""], rows));
  },

  async providers(main) {
    const data = await api("GET", "/api/v1/providers");
    main.append(el("h1", {}, t("providers")),
      table([t("code"), t("name"), t("kind"), t("region"), t("industry"), t("uscc"), t("contact")],
        data.providers.map((p) => el("tr", {}, el("td", { class: "mono" }, p.code), el("td", {}, p.name), el("td", {}, t("kind_" + p.kind)),
          el("td", {}, p.region), el("td", {}, p.industry), el("td", { class: "mono" }, p.uscc || "—"), el("td", {}, p.contact || "—")))));
  },

  async tokens(main) {
    const data = await api("GET", "/api/v1/tokens");
    const staff = ["admin", "operator"].includes(me.role);
    const out = el("div", {});
    const form = el("form", { class: "inline" },
      staff ? el("label", {}, t("provider"), el("input", { name: "provider", required: true, size: 8 })) : null,
      el("label", {}, t("ttl_hours"), el("input", { name: "ttl_hours", type: "number", value: 24, min: 1, max: 720 })),
      el("label", {}, t("uses"), el("input", { name: "uses", type: "number", value: 1, min: 1, max: 1000 })),
      el("label", {}, t("site_region"), el("input", { name: "region", size: 6, maxlength: 6 })),
      el("button", { class: "primary", type: "submit" }, t("create_token")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const body = { ttl_hours: Number(f.get("ttl_hours")), uses: Number(f.get("uses")) };
      if (staff) body.provider = f.get("provider");
      if (f.get("region")) body.region = f.get("region");
      try {
        const made = await api("POST", "/api/v1/tokens", body);
        out.replaceChildren(el("div", { class: "notice" }, t("join_once"), el("div", { class: "mono" }, made.command)));
      } catch (e) { out.replaceChildren(errorBox(e)); }
    });
    const rows = data.tokens.map((k) => el("tr", {}, el("td", {}, k.id), el("td", { class: "mono" }, k.provider), el("td", {}, fmtTime(k.expires_at_ms)),
      el("td", {}, k.uses_left), el("td", {}, k.created_by), el("td", {}, k.revoked ? t("revoked") : el("button", { onclick: async () => { await api("DELETE", "/api/v1/tokens/" + k.id); route(); } }, t("revoke")))));
    main.append(el("h1", {}, t("tokens")), me.role === "viewer" ? null : form, out, table(["#", t("provider"), t("expires"), t("uses_left"), t("actor"), ""], rows));
  },

  async nodes(main) {
    const n = await api("GET", "/api/v1/nodes");
    const roleName = (r) => t(r === "industry" ? "industry_node" : r);
    const managers = ["admin", "operator"].includes(me.role);
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
    if (me.role === "admin" && n.role !== "industry") {
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
      if (c.state === "approved" && me.role === "admin") return el("td", {},
        el("button", { onclick: call("revoke", () => ({ reason: reason() })) }, t("revoke")));
      return el("td", {});
    };
    const rows = n.children.map((c) => el("tr", { "data-child": c.id },
      el("td", {}, c.id), el("td", {}, roleName(c.role)), el("td", { class: "mono" }, c.segment), el("td", { class: "mono" }, c.prefix || "—"),
      el("td", {}, c.operator_name + " (" + c.operator_uscc + ")"), el("td", { class: "state-" + c.link }, t(c.link)),
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
        el("td", { class: "mono" }, p.node), el("td", { class: "mono" }, p.owner_code), el("td", {}, p.name), el("td", { class: "mono" }, p.uscc), el("td", {}, p.identifiers)))) : null,
      n.duplicate_uscc.length ? el("h2", {}, t("duplicate_uscc")) : null,
      n.duplicate_uscc.length ? table([t("uscc"), t("prefix")], n.duplicate_uscc.map((d) => el("tr", {}, el("td", { class: "mono" }, d.uscc), el("td", { class: "mono" }, d.nodes.join(", "))))) : null,
    ].filter(Boolean));
  },

  async audit(main, params) {
    const q = new URLSearchParams(params);
    // Times are typed and shown as the page's local time; the API takes milliseconds.
    const toMs = (v) => (v ? String(new Date(v).getTime()) : "");
    const toInput = (ms) => (ms ? fmtTime(Number(ms)).replace(" ", "T").slice(0, 16) : "");
    const form = el("form", { class: "inline", id: "audit-filter" },
      el("label", {}, t("actor"), el("input", { name: "actor", value: q.get("actor") || "", size: 12 })),
      el("label", {}, t("action_prefix"), el("input", { name: "action", value: q.get("action") || "", size: 16 })),
      el("label", {}, t("subject_contains"), el("input", { name: "subject", value: q.get("subject") || "", size: 16 })),
      el("label", {}, t("since"), el("input", { name: "since", type: "datetime-local", value: toInput(q.get("since")) })),
      el("label", {}, t("until"), el("input", { name: "until", type: "datetime-local", value: toInput(q.get("until")) })),
      el("button", { class: "primary", type: "submit" }, t("filter")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const next = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) next.set(k, k === "since" || k === "until" ? toMs(v) : v);
      location.hash = "#/audit?" + next.toString();
    });
    if (!q.get("limit")) q.set("limit", "200");
    const data = await api("GET", "/api/v1/audit?" + q.toString());
    const older = new URLSearchParams(q);
    if (data.next_before != null) older.set("before", data.next_before);
    main.append(el("h1", {}, t("audit")), form,
      data.entries.length ? table([t("when"), t("actor"), t("action"), t("subject"), t("detail"), t("address")],
        data.entries.map((e) => el("tr", { class: "audit-entry" }, el("td", { class: "nowrap" }, fmtTime(e.at_ms)), el("td", {}, e.actor), el("td", { class: "mono" }, e.action), el("td", { class: "mono" }, e.subject), el("td", {}, e.detail), el("td", { class: "mono" }, e.address))))
        : el("p", { class: "none" }, t("no_entries")),
      data.next_before != null ? el("a", { href: "#/audit?" + older.toString(), id: "audit-older" }, t("older")) : null);
  },

  async accounts(main) {
    const data = await api("GET", "/api/v1/accounts");
    const roles = ["admin", "operator", "viewer", "provider", "reseller", "line_provider", "user"];
    const out = el("div", {});
    const act = (path, ev) => api("POST", path).then(() => route(), (e) => ev.target.after(errorBox(e)));
    const list = el("div", {});
    const draw = (accounts) => list.replaceChildren(table([t("username"), t("role"), t("provider"), t("created_at"), t("account_state"), ""], accounts.map((a) => {
      const pick = el("select", { name: "role" }, roles.map((r) => el("option", { value: r, selected: r === a.role }, t("role_" + r))));
      return el("tr", { class: "account", "data-login": a.login },
        el("td", {}, a.login), el("td", {}, pick,
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
  },

  async me(main) {
    const pw = el("div", {});
    const pform = el("form", { class: "stack", id: "password-form" },
      el("label", {}, t("current_password"), el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
      el("label", {}, t("new_password"), el("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: 10 })),
      el("button", { class: "primary", type: "submit", id: "password-submit" }, t("change_password")), pw);
    pform.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/api/v1/session/password", Object.fromEntries(new FormData(pform)));
        const forced = me.must_change_password;
        await loadMe();
        if (forced) { if (location.hash === "#/overview") route(); else location.hash = "#/overview"; return; }
        pform.reset();
        pw.replaceChildren(el("div", { class: "notice", id: "password-changed" }, t("password_changed")));
      } catch (e) { pw.replaceChildren(errorBox(e)); }
    });
    main.append(el("h1", {}, t("me"), " · ", me.login),
      me.must_change_password ? el("div", { class: "notice", id: "must-change" }, t("must_change")) : null,
      el("h2", {}, t("change_password")), pform);
    if (me.must_change_password) return;
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
  },

  async selections(main, params) {
    const q = new URLSearchParams(params);
    if (!q.get("limit")) q.set("limit", "100");
    const data = await api("GET", "/api/v1/selections?" + q.toString());
    const demand = (d) => Object.entries(d || {}).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" · ");
    const rows = data.selections.map((s) => el("tr", { class: "selection-record" },
      el("td", { class: "nowrap" }, fmtTime(s.at_ms)), el("td", {}, s.actor), el("td", { class: "mono" }, demand(s.demand)),
      el("td", {}, s.matched_hosts), el("td", {}, s.candidates), el("td", { class: "mono" }, Array.isArray(s.chosen) ? s.chosen.join(", ") : "—"),
      el("td", {}, s.no_match || "—"), el("td", {}, (s.elapsed_us / 1000).toFixed(1))));
    const last = data.selections[data.selections.length - 1];
    main.append(el("h1", {}, t("selections")),
      rows.length ? table([t("when"), t("actor"), t("demand"), t("matched"), t("candidates"), t("chosen"), t("no_match"), t("elapsed_ms")], rows) : el("p", { class: "none" }, t("no_entries")),
      rows.length === Number(q.get("limit")) && last ? el("a", { href: "#/selections?before=" + last.id }, t("older")) : null);
  },

  async prices(main, _query, code) {
    const staff = ["admin", "operator", "viewer"].includes(me.role);
    const own = me.provider && me.provider.code;
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
    const editable = me.role !== "viewer" && (staff || code === own);
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
  },

  async lines(main) {
    const data = await api("GET", "/api/v1/lines");
    const mayRegister = ["admin", "line_provider"].includes(me.role);
    const own = me.provider && me.provider.code;
    const out = el("div", {});
    const input = (name, label, attrs) => el("label", {}, label, el("input", { name, required: true, ...attrs }));
    const form = el("form", { class: "inline", id: "line-form" },
      me.role === "admin" ? input("provider", t("provider"), { size: 8 }) : null,
      input("name", t("line_name"), { size: 12 }),
      input("from_region", t("from_region"), { size: 6, maxlength: 6 }),
      input("to_region", t("to_region"), { size: 6, maxlength: 6 }),
      input("latency_ms", t("latency_ms"), { type: "number", min: 0, step: "any", size: 5 }),
      input("bandwidth_mbps", t("bandwidth_mbps"), { type: "number", min: 1, size: 7 }),
      el("label", {}, t("price_month"), el("input", { name: "price_per_mbps_month", size: 6 })),
      el("button", { class: "primary", type: "submit", id: "line-submit" }, t("register_line")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(form));
      const body = { name: f.name, from_region: f.from_region, to_region: f.to_region, latency_ms: Number(f.latency_ms), bandwidth_mbps: Number(f.bandwidth_mbps) };
      if (f.price_per_mbps_month) body.price_per_mbps_month = f.price_per_mbps_month;
      if (f.provider) body.provider = f.provider;
      try { await api("POST", "/api/v1/lines", body); route(); } catch (e) { out.replaceChildren(errorBox(e)); }
    });
    const stateCellFor = (l) => {
      if (!(me.role === "admin" || (me.role === "line_provider" && l.provider === own))) return el("td", {}, t("state_" + l.state));
      const pick = el("select", { class: "line-state", onchange: async (ev) => {
        try { await api("PATCH", "/api/v1/lines/" + l.id, { state: ev.target.value }); route(); } catch (e) { out.replaceChildren(errorBox(e)); }
      } }, ["open", "maintenance", "closed"].map((v) => el("option", { value: v, selected: v === l.state }, t("state_" + v))));
      return el("td", {}, pick);
    };
    const rows = data.lines.map((l) => el("tr", { class: "line-row" }, el("td", { class: "mono" }, `${l.provider}-L${String(l.id).padStart(6, "0")}`), el("td", {}, l.name),
      el("td", {}, l.from_region + " → " + l.to_region), el("td", {}, (l.latency_us / 1000).toFixed(1)), el("td", {}, l.bandwidth_mbps),
      el("td", {}, l.price_per_mbps_month || "—"), stateCellFor(l)));
    main.append(el("h1", {}, t("lines")), el("p", { class: "note" }, t("lines_note")), mayRegister ? form : null, out,
      table([t("identifier"), t("line_name"), t("region"), t("latency_ms"), t("bandwidth_mbps"), t("price_month"), t("state")], rows));
  },

  async selection(main) {
    const out = el("div", { id: "selection-answer" });
    const input = (name, label, attrs) => el("label", {}, label, el("input", { name, ...attrs }));
    const form = el("form", { class: "inline", id: "selection-form" },
      el("label", {}, t("type"), el("select", { name: "resource_type" }, el("option", { value: "" }, t("any")), ["C", "A", "H"].map((c) => el("option", { value: c }, c)))),
      input("model", t("model"), { size: 10, placeholder: "H100" }),
      input("count", t("count"), { type: "number", min: 1, max: 64, size: 4 }),
      input("min_memory_gib", t("min_mem"), { type: "number", min: 1, size: 5 }),
      input("hosts", t("hosts_wanted"), { type: "number", min: 1, max: 256, size: 4 }),
      el("label", {}, t("together"), el("select", { name: "together" }, ["", "region", "provider", "fabric"].map((v) => el("option", { value: v }, v ? v : t("anywhere"))))),
      input("region", t("region_prefix"), { size: 6, placeholder: "44" }),
      input("user_region", t("user_region"), { size: 6, placeholder: "440305" }),
      input("max_latency_ms", t("max_latency"), { type: "number", min: 0, step: "any", size: 5 }),
      input("min_bandwidth_mbps", t("min_bw"), { type: "number", min: 1, size: 7 }),
      input("max_price_per_hour_cny", t("max_price"), { size: 7, inputmode: "decimal" }),
      el("label", {}, t("availability"), el("select", { name: "availability" }, el("option", { value: "free_now" }, t("free_now_opt")), el("option", { value: "installed" }, t("installed")))),
      input("expression", t("expression"), { size: 40, placeholder: "host.cpus >= 64 && gpus.all(g, g.temperature_celsius < 80)" }),
      input("scope", t("scope"), { size: 12, placeholder: "subtree · local · CN.32" }),
      input("deadline_ms", t("deadline"), { type: "number", min: 100, max: 10000, size: 6, placeholder: "3000" }),
      el("button", { class: "primary", type: "submit", id: "selection-submit" }, t("select")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(form));
      const demand = { limit: 50 };
      const num = (k) => (f[k] !== "" && f[k] != null ? Number(f[k]) : undefined);
      const accel = {};
      if (f.model) accel.model = f.model;
      if (num("count")) accel.count = num("count");
      if (num("min_memory_gib")) accel.min_memory_gib = num("min_memory_gib");
      if (Object.keys(accel).length) demand.accelerator = accel;
      if (f.resource_type) demand.resource_type = f.resource_type;
      if (num("hosts")) demand.hosts = num("hosts");
      if (f.together) demand.together = f.together;
      for (const k of ["region", "user_region", "expression", "availability", "max_price_per_hour_cny", "scope"]) if (f[k]) demand[k] = f[k];
      for (const k of ["max_latency_ms", "min_bandwidth_mbps", "deadline_ms"]) if (num(k) !== undefined) demand[k] = num(k);
      try { out.replaceChildren(...renderAnswer(await api("POST", "/api/v1/selection", demand))); }
      catch (e) { out.replaceChildren(errorBox(e)); }
    });
    main.append(el("h1", {}, t("selection")), form, out);
  },

  async register(main) {
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
  },
};

function renderAnswer(a) {
  const parts = [el("p", { id: "selection-summary" }, `${t("matched")}: ${a.matched_hosts} / ${a.considered_hosts} · ${a.elapsed_us} µs`)];
  if (a.partial) parts.push(el("p", { class: "error", id: "selection-partial" }, t("partial_answer")));
  if (a.nodes.length) {
    parts.push(el("h2", {}, t("nodes_asked")), table([t("node"), t("outcome"), t("elapsed"), t("candidates_n"), t("reason")], a.nodes.map((n) =>
      el("tr", { class: "node-outcome" }, el("td", { class: "mono" }, n.node), el("td", { class: "outcome-" + n.outcome }, t("outcome_" + n.outcome)),
        el("td", {}, n.elapsed_ms == null ? "—" : n.elapsed_ms + " ms"), el("td", {}, n.candidates == null ? "—" : String(n.candidates)),
        el("td", {}, n.reason || "")))));
  }
  const held = el("div", { id: "hold-result" });
  parts.push(held);
  // Holding a candidate's accelerators: the node holding them decides.
  const holdButton = (h) => {
    if (!h.resources.some((r) => r.includes("_A_"))) return "";
    const button = el("button", { class: "hold", type: "button" }, t("hold"));
    button.addEventListener("click", async () => {
      try {
        const r = await api("POST", "/api/v1/reservations", { node: h.node, resources: h.resources, request_id: crypto.randomUUID() });
        const release = el("button", { type: "button", id: "hold-release" }, t("release"));
        release.addEventListener("click", async () => {
          try { const e = await api("DELETE", "/api/v1/reservations/" + encodeURIComponent(r.id)); held.replaceChildren(el("p", { class: "notice" }, `${r.id} · ${t("hold_" + e.state)}`)); }
          catch (e) { held.replaceChildren(errorBox(e)); }
        });
        held.replaceChildren(el("p", { class: "notice", id: "hold-notice" }, `${t("held_until")} ${fmtTime(r.expires_at_ms)} · ${r.id} · ${r.resources.join(", ")} `, release));
      } catch (e) { held.replaceChildren(errorBox(e)); }
    });
    return button;
  };
  const rows = [];
  a.candidates.forEach((c, rank) => c.hosts.forEach((h, i) => {
    const path = h.path ? `${h.path.latency_ms.toFixed(1)} ms ≥ ${h.path.bottleneck_mbps} Mb/s` + (h.path.segments.some((s) => s.line_id) ? " · " + t("lines") + " " + h.path.segments.filter((s) => s.line_id).map((s) => s.line_id).join(" → ") : "") : "—";
    rows.push(el("tr", { class: "candidate" }, el("td", {}, i === 0 ? String(rank + 1) : ""), el("td", {}, i === 0 ? c.score.toFixed(3) : ""),
      el("td", { class: "mono" }, h.node), el("td", { class: "mono" }, h.node === a.node ? el("a", { href: "#/hosts/" + h.host_id }, h.identifier || h.hostname) : (h.identifier || h.hostname)),
      el("td", {}, h.hostname), el("td", {}, h.provider), el("td", {}, h.region),
      stateCell(h.state), el("td", {}, h.freshness_ms == null ? "—" : (h.freshness_ms / 1000).toFixed(1) + " s"),
      el("td", { class: "mono" }, h.resources.join("\n")), el("td", {}, path), el("td", {}, h.price_per_hour_cny == null ? "—" : "¥" + h.price_per_hour_cny),
      el("td", {}, `A ${h.parts.availability.toFixed(2)} · L ${h.parts.latency == null ? "—" : h.parts.latency.toFixed(2)} · U ${h.parts.load.toFixed(2)} · P ${h.parts.price == null ? "—" : h.parts.price.toFixed(2)}`),
      el("td", {}, c.hosts.length === 1 ? holdButton(h) : "")));
  }));
  if (rows.length) {
    parts.push(table(["#", t("score"), t("node"), t("identifier"), t("hostname"), t("provider"), t("region"), t("state"), t("freshness"), t("resources"), t("path"), t("price_h"), "", ""], rows));
  } else {
    parts.push(el("p", { class: "error" }, t("nothing")), el("h2", {}, t("eliminated")),
      table([t("kind"), t("hosts")], a.eliminated.map((e) => el("tr", {}, el("td", { class: "mono" }, e.constraint), el("td", {}, e.hosts)))),
      el("h2", {}, t("nearest")),
      table([t("hostname"), t("detail")], a.nearest_misses.map((m) => el("tr", {}, el("td", {}, m.hostname), el("td", {}, m.failed.map((f) => f.constraint + ": " + f.detail).join("; "))))));
    if (a.groups_short) parts.push(el("p", {}, a.groups_short));
  }
  return parts;
}

const staffRole = (r) => ["admin", "operator", "viewer"].includes(r);
const orgRole = (r) => r !== "user" && r !== "line_provider";
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
      me = await api("POST", "/api/v1/session", Object.fromEntries(new FormData(form)));
      await loadMe();
      if (location.hash.startsWith("#/login") || !location.hash) location.hash = "#/overview";
      else route();
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  main.append(el("h1", {}, t("login")), form);
}

async function loadMe() {
  try { me = await api("GET", "/api/v1/session"); } catch { me = null; }
  const nav = document.getElementById("nav");
  const links = (pages) => pages.filter(([, ok]) => ok(me.role)).map(([k]) => el("a", { href: "#/" + k, id: "nav-" + k }, t(k)));
  nav.replaceChildren(...(me ? NAV.flatMap(([group, pages]) => {
    const shown = links(pages);
    if (!shown.length) return [];
    if (!group) return shown;
    return [el("details", { class: "menu", id: "menu-" + group }, el("summary", {}, t(group)), el("div", { class: "items" }, shown))];
  }) : []));
  // One menu open at a time.
  for (const d of nav.querySelectorAll("details")) {
    d.addEventListener("toggle", () => { if (d.open) for (const o of nav.querySelectorAll("details")) if (o !== d) o.open = false; });
  }
  document.getElementById("who").replaceChildren(me ? el("a", { href: "#/me", id: "me-link" }, me.login + " · " + t("role_" + me.role)) : "");
  const logout = document.getElementById("logout");
  logout.hidden = !me;
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

async function route() {
  if (live) { live.close(); live = null; }
  if (refresh) { clearTimeout(refresh); refresh = null; }
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
  if (page === "register") return pages.register(view);
  if (!me) return renderLogin(view);
  // A generated password is changed before anything else.
  const render = me.must_change_password ? pages.me : pages[page] || pages.overview;
  try {
    await render(view, query || "", arg && decodeURIComponent(arg));
    if (mine !== routes) return;
    // The overview, the alerts and the child nodes' links keep themselves
    // current (not while someone is typing into a form there).
    if (render === pages.overview || render === pages.alerts || render === pages.nodes) {
      const again = () => {
        if (!typing(view)) return route();
        window.suanliRefreshesHeld = (window.suanliRefreshesHeld || 0) + 1;
        refresh = setTimeout(again, 5000);
      };
      refresh = setTimeout(again, render === pages.overview ? 5000 : 2000);
    }
  }
  catch (e) {
    if (e.status === 401) { me = null; await loadMe(); main.replaceChildren(); renderLogin(main); }
    else if (mine === routes) view.append(errorBox(e));
  }
}

document.getElementById("lang").addEventListener("click", async () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("suanli.lang", lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
  await loadMe();
  route();
});
document.getElementById("logout").addEventListener("click", async () => {
  try { await api("DELETE", "/api/v1/session"); } catch { /* already gone */ }
  me = null; await loadMe(); location.hash = "#/login"; route();
});
window.addEventListener("hashchange", route);
document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文";
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
loadMe().then(route);
