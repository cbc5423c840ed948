//! The dashboard in a real browser: the README's first command (a node
//! with an agent for this host), headless Chromium signs in, finds this
//! host, watches its live chart grow, switches to English, and saves a
//! screenshot. Needs Debian's Chromium, which `.ci/test` installs: a plain
//! `cargo test` reports it ignored.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use suanli_tests::{Agent, Aggregator, Backend, Request, browser};

const WAIT: Duration = Duration::from_secs(60);

#[test]
#[ignore = "needs Chromium: run .ci/test"]
fn staff_sign_in_find_this_host_and_watch_it_live() {
    let chromium = browser::chromium();
    let dir = tempfile::tempdir().unwrap();
    // The agent samples every 5 s on its own; the open page must make it 1 s.
    let node = Aggregator::start(
        &dir.path().join("node"),
        Backend::Sqlite,
        &[
            "--with-local-agent",
            "--local-agent-interval",
            "5s",
            "--alert-interval",
            "500ms",
            "--group-wait",
            "0s",
            // The test's webhook listens on loopback.
            "--alert-loopback-http",
        ],
    );
    let url = format!("http://{}/", node.http);
    let mut page = browser::Browser::open(&chromium, &url);
    page.wait_for(
        WAIT,
        "the sign-in form",
        "!!document.getElementById('login-form')",
    );
    assert_eq!(
        page.eval("document.documentElement.lang"),
        "zh-CN",
        "Chinese first"
    );
    // The initial password was generated: a new one comes before anything.
    page.sign_in_changing_password("admin", &node.admin_password(), "a new long password");
    page.wait_for(
        WAIT,
        "the overview with this host online",
        "document.querySelector('#hosts-online .n')?.textContent === '1'",
    );
    // 算力规模 leads the overview, each figure labelled with its precision;
    // this host's CPU states no clock here, so it is counted as unrated.
    page.wait_for(
        WAIT,
        "the capacity cards",
        "document.querySelector('#scale-general .l')?.textContent === '通用算力 · FP32' \
         && !!document.getElementById('scale-period') \
         && !!document.getElementById('hour-selections') \
         && document.getElementById('chart-trend-capacity-24h')?.dataset.points !== undefined",
    );
    // The 24-hour trend draws a point every 5 minutes: the node's latest
    // resource report, stored again as the two 5-minute periods before,
    // stands in for the hours this node has not yet run.
    backdate_reports(&node);
    page.wait_for(
        WAIT,
        "the capacity trend drawn",
        "Number(document.getElementById('chart-trend-capacity-24h')?.dataset.points) >= 2 \
         && !!document.querySelector('#chart-trend-capacity-24h canvas') \
         && !!document.querySelector('#chart-trend-util-24h canvas')",
    );
    // The 30 days from the hourly rollups, and the hourly streams' charts,
    // with Chinese legends and dates written 2026-12-07 01:42.
    page.wait_for(
        WAIT,
        "the 30-day trend and the streams drawn",
        "!!document.querySelector('#chart-trend-capacity-30d canvas') \
         && !!document.querySelector('#chart-trend-util-30d canvas') \
         && !!document.querySelector('#chart-stream-scheduling canvas')",
    );
    let legend = page
        .eval("document.querySelector('#chart-stream-scheduling .u-legend')?.textContent ?? ''");
    assert!(legend.as_str().unwrap().contains("选型请求"), "{legend}");
    page.eval("document.getElementById('chart-trend-capacity-30d').scrollIntoView(); true");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-trends.png");
    std::fs::write(&out, page.screenshot()).unwrap();
    eprintln!("screenshot: {}", out.display());

    // Every count of hosts on the overview opens the hosts list, filtered.
    page.eval("document.querySelector('a[href=\"#/hosts?state=online\"]').click(); true");
    page.wait_for(
        WAIT,
        "the hosts list with this host online",
        "document.querySelector('tr[data-host] td.state-online') !== null \
         && document.getElementById('nav-hosts')?.classList.contains('active') === true",
    );

    // Find this host among the resources and open it.
    page.eval("location.hash = '#/resources?type=C'; true");
    page.wait_for(
        WAIT,
        "the resource list",
        "!!document.querySelector('a.host-link')",
    );
    page.eval("document.querySelector('a.host-link').click(); true");
    page.wait_for(
        WAIT,
        "the host page's chart",
        "!!document.querySelector('#chart-cpu canvas')",
    );
    // It opens with the last hour as stored, then goes on live.
    let stored = page.eval("Number(document.getElementById('chart-cpu').dataset.stored)");
    let stored = stored.as_u64().unwrap();
    assert!(stored >= 1, "history on first paint: {stored} steps");
    page.wait_for(
        WAIT,
        "two live points after the stored ones",
        &format!("Number(document.getElementById('chart-cpu').dataset.points) >= {stored} + 2"),
    );
    let before = page.eval("Number(document.getElementById('chart-cpu').dataset.points)");
    page.wait_for(
        Duration::from_secs(10),
        "the chart to change again",
        &format!("Number(document.getElementById('chart-cpu').dataset.points) > {before}"),
    );
    // Points arrive at the live interval (1 s), not the agent's own 5 s.
    let gap = page.eval(
        "(() => { const x = window.suanliCharts.cpu.data[0]; return x[x.length - 1] - x[x.length - 2]; })()",
    );
    let gap = gap.as_f64().unwrap();
    // The agent's own interval here is 5 s: anything well under it is the live one.
    assert!(gap > 0.0 && gap < 3.0, "live samples {gap} s apart");
    // Load (read against the host's CPUs), network and the other panels
    // are drawn from the same history and samples: this host's network
    // moved something in its last live sample (the page's own traffic).
    let panels = page.eval(
        "(() => { const c = window.suanliCharts; const last = (a) => a[a.length - 1];
           return ['load', 'disk', 'network', 'temperature'].every((n) => !!c[n])
             && c.load.series.length === 3 && last(c.load.data[2]) > 0
             && c.network.data.slice(1).some((s) => s.some((v) => v != null)); })()",
    );
    assert_eq!(panels, serde_json::json!(true), "the host's panels");
    let identifier = page.eval("document.getElementById('host-identifier').textContent");
    assert!(
        identifier.as_str().unwrap().starts_with("CN."),
        "{identifier}"
    );
    assert!(
        page.eval("document.getElementById('chart-gpu_util').textContent")
            .as_str()
            .unwrap()
            .contains("没有加速卡"),
        "a host without an accelerator is normal, and says so"
    );

    // Another range: its history, and no live feed.
    page.eval("document.querySelector('#history-range a[data-hours=\"24\"]').click(); true");
    page.wait_for(
        WAIT,
        "the last 24 hours",
        "document.querySelector('#history-range a.active')?.dataset.hours === '24'
          && Number(document.getElementById('chart-cpu')?.dataset.stored) >= 1",
    );
    // Any other range: 20 days is read in whole hours.
    page.eval(
        "(() => { const f = document.getElementById('custom-range'); f.days.value = '20'; f.hours.value = '0';
          f.querySelector('button').click(); return true; })()",
    );
    page.wait_for(
        WAIT,
        "20 days",
        "document.getElementById('main').dataset.drawn === 'hosts/1?hours=480' \
          && Number(document.getElementById('chart-cpu')?.dataset.stored) >= 1",
    );
    page.eval("history.go(-2); true");
    page.wait_for(
        WAIT,
        "the live hour again",
        "document.querySelector('#history-range a.active')?.dataset.hours === '1'",
    );

    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-host.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", out.display(), png.len());

    // Prices: the node's own provider lists a core-hour price.
    page.eval("location.hash = '#/prices'; true");
    page.wait_for(
        WAIT,
        "the price list",
        "!!document.getElementById('prices-add')",
    );
    page.eval(
        "(() => { document.getElementById('prices-add').click();
          const row = [...document.querySelectorAll('tr.price-row')].pop();
          row.querySelector('[name=resource]').value = 'cpu';
          row.querySelector('[name=per_hour_cny]').value = '0.05';
          document.getElementById('prices-save').click(); return true; })()",
    );
    page.wait_for(
        WAIT,
        "the prices saved",
        "!!document.getElementById('prices-saved')",
    );

    // Lines: staff register one for a provider and put it under maintenance.
    page.eval("location.hash = '#/lines'; true");
    page.wait_for(
        WAIT,
        "the line form",
        "!!document.getElementById('line-form')",
    );
    page.eval(
        "(async () => {
          const code = (await (await fetch('/api/v1/providers')).json()).providers[0].code;
          const f = document.getElementById('line-form');
          f.provider.value = code; f.name.value = '京沪专线';
          f.from_region.value = '110108'; f.to_region.value = '310115';
          f.latency_ms.value = '9.5'; f.bandwidth_mbps.value = '100000';
          document.getElementById('line-submit').click(); return true; })()",
    );
    page.wait_for(
        WAIT,
        "the line listed",
        "document.querySelectorAll('tr.line-row').length === 1",
    );
    page.eval(
        "(() => { const s = document.querySelector('select.line-state');
          s.dataset.old = '1'; s.value = 'maintenance';
          s.dispatchEvent(new Event('change')); return true; })()",
    );
    page.wait_for(
        WAIT,
        "the line shown under maintenance",
        "(() => { const s = document.querySelector('select.line-state');
           return !!s && !s.dataset.old && s.value === 'maintenance'; })()",
    );
    let lines_png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-lines.png");
    std::fs::write(&lines_png, page.screenshot()).unwrap();

    // Selection: any free host is this one, priced per core-hour.
    page.eval("location.hash = '#/selection'; true");
    page.wait_for(
        WAIT,
        "the selection form",
        "!!document.getElementById('selection-form')",
    );
    page.eval("document.getElementById('selection-submit').click(); true");
    page.wait_for(
        WAIT,
        "a ranked answer",
        "document.querySelectorAll('#selection-answer tr.candidate').length === 1",
    );
    let selection_png =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-selection.png");
    std::fs::write(&selection_png, page.screenshot()).unwrap();
    assert!(
        page.eval("document.querySelector('#selection-answer tr.candidate').textContent")
            .as_str()
            .is_some_and(|row| row.contains('¥')),
        "the candidate shows its price"
    );
    page.eval(
        "(() => { const f = document.getElementById('selection-form'); f.model.value = 'H100';
          document.getElementById('selection-submit').click(); return true; })()",
    );
    page.wait_for(
        WAIT,
        "why nothing matched",
        "document.getElementById('selection-answer').textContent.includes('加速卡数量')",
    );
    // Each constraint named and each host's reasons given in Chinese.
    let untranslated = page.untranslated();
    assert!(untranslated.is_empty(), "{untranslated:?}");

    // Monitoring: a second host goes silent; staff acknowledge its alert
    // and silence it.
    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "500ms",
        "m-second",
        "second-host",
    );
    agent.run();
    page.eval("location.hash = '#/overview'; true");
    page.wait_for(
        WAIT,
        "the second host online",
        "document.querySelector('#hosts-online .n')?.textContent === '2'",
    );
    agent.kill();
    page.eval("location.hash = '#/alerts'; true");
    // The alerts page redraws itself every 2 s: between finding the button
    // and clicking it the page may be mid-redraw, so find and click at once.
    page.wait_for(
        WAIT,
        "the host-silent alert, acknowledged by a click",
        "(() => { const b = document.querySelector('tr.alert[data-rule=host_silent] button.ack');
          if (!b) return false; b.click(); return true; })()",
    );
    page.wait_for(
        WAIT,
        "the alert acknowledged",
        "document.querySelector('tr.alert[data-rule=host_silent] td.acked')?.textContent === 'admin'",
    );
    // Leaving this host's live page put its agent back on its own 5 s: the
    // node judged its silence by that pace, not the live 1 s, so the only
    // silent host there ever was is the one killed.
    let token = node.admin_token();
    for state in ["firing", "resolved"] {
        let alerts = Request::new("GET", &format!("/api/v1/alerts?state={state}"))
            .bearer(&token)
            .send(node.http)
            .json();
        let silent: Vec<&str> = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "host_silent")
            .map(|a| a["summary"].as_str().unwrap())
            .collect();
        let expected: &[&str] = if state == "firing" {
            &["second-host has sent no sample for 3 s"]
        } else {
            &[]
        };
        assert_eq!(silent, expected, "{state}");
    }
    // Silence it from its row: the form below is filled with its rule
    // and host, and the page's refresh waits while it holds typed text
    // (even with the focus elsewhere).
    page.wait_for(
        WAIT,
        "the silence form, filled from the row",
        "(() => { const b = document.querySelector('tr.alert[data-rule=host_silent] button.silence-this');
          if (!b) return false; b.click(); document.activeElement.blur();
          window.suanliRefreshesHeld = 0; return true; })()",
    );
    page.wait_for(
        WAIT,
        "a refresh held back, the form still filled",
        "window.suanliRefreshesHeld >= 1
          && document.getElementById('silence-form').matchers.value.endsWith('hostname=second-host')",
    );
    page.eval(
        "document.getElementById('silence-form').reason.value = '下线维护';
         document.getElementById('silence-submit').click(); true",
    );
    page.wait_for(
        WAIT,
        "the silence listed",
        "[...document.querySelectorAll('tr.silence')].some((r) => r.textContent.includes('hostname=second-host'))",
    );
    // The alert shows as silenced, in the page and in the API.
    page.wait_for(
        WAIT,
        "the alert marked silenced",
        "document.querySelector('tr.alert[data-rule=host_silent] td.silenced')?.textContent.startsWith('已静默')",
    );
    let alerts = Request::new("GET", "/api/v1/alerts?state=firing")
        .bearer(&token)
        .send(node.http)
        .json();
    let silent = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "host_silent")
        .unwrap();
    assert!(silent["silenced_by"].is_i64(), "{alerts:#}");
    let alerts_png = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-alerts.png");
    std::fs::write(&alerts_png, page.screenshot()).unwrap();
    page.eval("location.hash = '#/overview'; true");
    page.wait_for(
        WAIT,
        "the overview counting the critical alert",
        "Number(document.querySelector('#alerts-critical .n')?.textContent) >= 1",
    );

    // Staff screens: accounts, the audit log filtered, the recorded
    // selections, one's own API keys.
    page.eval("location.hash = '#/accounts'; true");
    page.wait_for(
        WAIT,
        "the accounts page",
        "[...document.querySelectorAll('tr.account')].some((r) => r.dataset.login === 'admin')",
    );
    page.eval("location.hash = '#/audit?action=account.'; true");
    page.wait_for(
        WAIT,
        "the password change in the filtered audit log",
        "[...document.querySelectorAll('tr.audit-entry')].some((r) => r.textContent.includes('account.password'))
          && document.querySelector('#audit-filter input[name=action]').value === 'account.'",
    );
    page.eval("location.hash = '#/selections'; true");
    page.wait_for(
        WAIT,
        "the recorded selections",
        "document.querySelectorAll('tr.selection-record').length >= 1",
    );
    page.eval("location.hash = '#/me'; true");
    page.wait_for(
        WAIT,
        "one's own account and API keys",
        "!!document.getElementById('key-form') && !!document.getElementById('password-form')",
    );
    // A GPU host (two H100s on the stand-in NVML): its page opens with
    // stored history for each card, its thresholds drawn, one small chart
    // per card.
    let library = suanli_tests::nvml_standin(dir.path());
    let mut gpu_host = Agent::join_as(
        &dir.path().join("gpu"),
        &node.join_string(None),
        "200ms",
        "m-gpu",
        "gpu-node-01",
    );
    gpu_host.env = vec![("SUANLI_NVML_LIBRARY".into(), library.display().to_string())];
    gpu_host.run();
    let mut gpu_id = 0;
    suanli_tests::wait_until(WAIT, "the GPU host's samples", || {
        let host = node
            .hosts()
            .into_iter()
            .find(|h| h["hostname"] == "gpu-node-01");
        gpu_id = host.as_ref().map_or(0, |h| h["host_id"].as_i64().unwrap());
        gpu_id != 0 && {
            let (status, body) = node.get(&format!("/api/v1/hosts/{gpu_id}/history?hours=1"));
            status == 200 && {
                let history: serde_json::Value = serde_json::from_str(&body).unwrap();
                history["t_ms"].as_array().is_some_and(|t| t.len() >= 3)
                    && history["gpus"][0]["gpu_utilization_percent"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|v| v.as_f64() == Some(87.0)))
            }
        }
    });
    let gpu_page = format!("hosts/{gpu_id}");
    page.eval(&format!("location.hash = '#/{gpu_page}'; true"));
    page.wait_for(
        WAIT,
        "the GPU host's page",
        &format!(
            "document.getElementById('main').dataset.drawn === '{gpu_page}' \
             && !!document.querySelector('#chart-device-1 canvas')"
        ),
    );
    let gpu_charts = page.eval(
        "(() => { const c = window.suanliCharts; const stored = (n) => Number(document.getElementById('chart-' + n).dataset.stored);
           const labels = (n) => c[n].series.map((s) => s.label);
           return { stored: ['gpu_util', 'gpu_mem', 'gpu_temp', 'gpu_power', 'device-0', 'device-1'].map(stored),
             util: c.gpu_util.data[1].filter((v) => v != null).slice(-1)[0],
             mem_axis: c.gpu_mem.scales.y.max,
             temp: labels('gpu_temp'), power: labels('gpu_power'),
             device0: c['device-0'].data[1].filter((v) => v != null).slice(-1)[0] }; })()",
    );
    for stored in gpu_charts["stored"].as_array().unwrap() {
        assert!(
            stored.as_u64().unwrap() >= 3,
            "history on first paint: {gpu_charts}"
        );
    }
    assert_eq!(gpu_charts["util"], 87.0, "{gpu_charts}");
    assert_eq!(gpu_charts["device0"], 87.0, "{gpu_charts}");
    // Memory against the card's 80 GB, not against what is used.
    assert!(
        gpu_charts["mem_axis"].as_f64().unwrap() >= 74.0,
        "{gpu_charts}"
    );
    assert!(
        gpu_charts["temp"].to_string().contains("降频阈值")
            && gpu_charts["power"].to_string().contains("功耗上限"),
        "threshold lines: {gpu_charts}"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(shots.join("dashboard-gpu-host.png"), page.screenshot()).unwrap();

    // A receiver is tested from its row: the attempt appears on its page.
    let hook = suanli_tests::receiver::Receiver::start("{}");
    let r = Request::new("POST", "/api/v1/receivers")
        .bearer(&node.admin_token())
        .json(
            &serde_json::json!({"name": "ops-hook", "kind": "webhook", "url": hook.url("/")})
                .to_string(),
        )
        .send(node.http);
    assert_eq!(r.status, 201, "{}", r.body);
    page.eval("location.hash = '#/receivers'; true");
    page.wait_for(
        WAIT,
        "the receivers page",
        "!!document.querySelector('button.test-receiver')",
    );
    page.eval("document.querySelector('button.test-receiver').click(); true");
    page.wait_for(
        WAIT,
        "the test's attempt on the receiver's page",
        "[...document.querySelectorAll('#main tbody tr')].some((tr) => tr.children[2]?.textContent === '200')",
    );
    suanli_tests::wait_until(WAIT, "the test at the webhook", || {
        hook.received()
            .iter()
            .any(|r| r.json()["alerts"][0]["labels"]["alertname"] == "receiver_test")
    });

    // Layout that holds: the navigation on one line at 1024 px, and no
    // page wider than a 390 px phone (tables scroll inside their box).
    let overview = ("#/overview", "#province-map");
    let alerts = ("#/alerts", "#silence-form");
    let host = ("#/hosts/1", "#chart-cpu canvas");
    for (width, pages) in [
        (1024, [overview, alerts, host, ("#/accounts", "tr.account")]),
        (390, [overview, alerts, host, ("#/audit", "tr.audit-entry")]),
    ] {
        page.set_width(width);
        for (hash, drawn) in pages {
            // From another page, so each is drawn afresh at this width.
            page.eval("location.hash = '#/rules'; true");
            page.wait_for(
                WAIT,
                "the rules page",
                "!!document.querySelector('#main table')",
            );
            page.eval(&format!("location.hash = '{hash}'; true"));
            page.wait_for(
                WAIT,
                &format!("{hash} at {width} px"),
                &format!(
                    "!!document.querySelector('{drawn}') && !document.querySelector('#main .error')"
                ),
            );
            assert!(!page.overflows(), "{hash} overflows at {width} px");
            let name = hash.trim_start_matches("#/").replace('/', "-");
            std::fs::write(
                shots.join(format!("dashboard-{name}-{width}.png")),
                page.screenshot(),
            )
            .unwrap();
        }
        if width == 1024 {
            let height = page.eval("document.querySelector('header').offsetHeight");
            assert!(
                height.as_f64().unwrap() < 60.0,
                "the header wraps at 1024 px: {height}"
            );
        }
    }
    page.set_width(1440);
    page.eval("document.getElementById('lang').click(); true");
    page.wait_for(
        WAIT,
        "the English page",
        "document.getElementById('nav-overview')?.textContent === 'Overview'",
    );
    // One language at a time: every page in English, then in Chinese,
    // holds no word of the other language outside its data; and each, at
    // 1440 px and on a 390 px phone, is no wider than the window.
    let mut untranslated = Vec::new();
    let mut overflowing = Vec::new();
    let every_page: Vec<&str> = EVERY_PAGE
        .iter()
        .copied()
        .chain([gpu_page.as_str()])
        .collect();
    for lang in ["en", "zh-CN"] {
        if lang == "zh-CN" {
            page.eval("document.getElementById('lang').click(); true");
            page.wait_for(
                WAIT,
                "the Chinese page",
                "document.getElementById('nav-overview')?.textContent === '总览'",
            );
        }
        for width in [1440, 390] {
            page.set_width(width);
            for route in &every_page {
                page.eval(&format!("location.hash = '#/{route}'; true"));
                page.wait_for(
                    WAIT,
                    &format!("#/{route} in {lang} at {width} px"),
                    &format!(
                        "document.getElementById('main').dataset.drawn === '{route}' \
                         && document.documentElement.lang === '{lang}'"
                    ),
                );
                if width == 1440 {
                    for text in page.untranslated() {
                        untranslated.push(format!("{lang} #/{route}: {text}"));
                    }
                }
                if page.overflows() {
                    overflowing.push(format!("{lang} #/{route} at {width} px"));
                }
                // Screenshots of the Chinese pages, which staff see first
                // (each costs the browser a full paint).
                if lang == "zh-CN" {
                    let name = route.replace('/', "-");
                    std::fs::write(
                        shots.join(format!("dashboard-{lang}-{name}-{width}.png")),
                        page.screenshot(),
                    )
                    .unwrap();
                }
            }
        }
    }
    assert!(
        untranslated.is_empty(),
        "text in the other language:\n{}",
        untranslated.join("\n")
    );
    assert!(
        overflowing.is_empty(),
        "wider than the window:\n{}",
        overflowing.join("\n")
    );
}

/// Every page of the console an administrator reaches.
const EVERY_PAGE: &[&str] = &[
    "overview",
    "alerts",
    "receivers",
    "rules",
    "hosts",
    "hosts/1",
    "resources",
    "selection",
    "selections",
    "registrations",
    "providers",
    "lines",
    "prices",
    "tokens",
    "accounts",
    "audit",
    "nodes",
    "me",
];

/// Stores the node's latest resource report again as the two five-minute
/// periods before it, through the node's own database.
fn backdate_reports(node: &Aggregator) {
    use sqlx::{Connection, Row};
    use suanli_protocol::node::MarketReport;
    let url = format!("sqlite://{}", node.data_dir.join("suanli.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut db = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
        let row = sqlx::query(
            "SELECT body FROM market_reports WHERE stream = 'resource' \
             ORDER BY period_start_ms DESC LIMIT 1",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        let latest = MarketReport::decode(&row.get::<Vec<u8>, _>(0)).unwrap();
        const HOUR: u64 = 3_600_000;
        let hour = latest.period_start_ms - latest.period_start_ms % HOUR;
        let mut reports = Vec::new();
        for back in 1..=2u64 {
            let start = latest.period_start_ms - latest.period_start_ms % 300_000 - back * 300_000;
            reports.push(MarketReport {
                period_start_ms: start,
                ..latest.clone()
            });
            // The hours before: rollups of 360 such periods, and the
            // scheduling stream's counts.
            reports.push(MarketReport {
                period_start_ms: hour - back * HOUR,
                ..suanli_tests::seed::hour_of(&latest)
            });
            reports.push(MarketReport {
                stream: "scheduling".into(),
                period_start_ms: hour - back * HOUR,
                period_ms: HOUR,
                groups: Vec::new(),
                figures: vec![suanli_protocol::node::Figure {
                    name: "selections_requested".into(),
                    label: String::new(),
                    value: back * 3,
                }],
                ..latest.clone()
            });
        }
        for report in reports {
            sqlx::query(
                "INSERT INTO market_reports (origin, stream, period_ms, period_start_ms, body, \
                 received_at_ms, spooled) VALUES ($1, $2, $3, $4, $5, $4, 1) ON CONFLICT DO NOTHING",
            )
            .bind(&report.origin)
            .bind(&report.stream)
            .bind(report.period_ms as i64)
            .bind(report.period_start_ms as i64)
            .bind(report.clone().encode())
            .execute(&mut db)
            .await
            .unwrap();
        }
    });
}
