//! Monitoring end to end, on SQLite and PostgreSQL: a real agent stops and
//! "host silent" reaches a real HTTP receiver once, signed, and resolves
//! once when the agent returns; an XID 79 from the stand-in NVML takes the
//! GPU out of selection, a restart of the aggregator does not bring it
//! back, and staff marking it healthy does.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ring::hmac;
use serde_json::{Value, json};
use suanli_tests::{
    Agent, Aggregator, Backend, FAST_ALERTS, Request, component, nvml_standin, on_each_backend,
    receiver::Receiver, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

/// Hosts online, as the overview counts them.
fn online(node: &Aggregator) -> i64 {
    call(node, "GET", "/api/v1/summary", None).1["hosts"]["online"]
        .as_i64()
        .unwrap_or(0)
}

/// Hosts 1 to `n` online and at their interval: until two samples have
/// come, a host's interval is unknown and silence is judged at the 10 s
/// default.
fn steady(node: &Aggregator, n: i64) -> bool {
    online(node) == n
        && (1..=n).all(|id| {
            !call(node, "GET", &format!("/api/v1/hosts/{id}"), None).1["interval_ms"].is_null()
        })
}

fn call(node: &Aggregator, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = Request::new(method, path).bearer(&node.admin_token());
    if let Some(body) = body {
        r = r.json(&body.to_string());
    }
    let response = r.send(node.http);
    let value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

/// The alerts a webhook received, as (status, alertname) per alert.
fn told(hook: &Receiver, alertname: &str) -> Vec<String> {
    hook.received()
        .iter()
        .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == alertname)
        .map(|a| a["status"].as_str().unwrap().to_owned())
        .collect()
}

on_each_backend!(
    a_silent_host_is_told_once_signed_and_its_return_resolves_it_once("monitoring_silent")
);

fn a_silent_host_is_told_once_signed_and_its_return_resolves_it_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start("{}");
    let node = Aggregator::start(&dir.path().join("node"), backend, FAST_ALERTS);
    let (status, receiver) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(
            json!({"name": "ops-hook", "kind": "webhook", "url": hook.url("/hook"), "secret": "webhook-secret"}),
        ),
    );
    assert_eq!(status, 201, "{receiver}");
    // The secret is never shown, nor the URL's path and query.
    assert!(!receiver.to_string().contains("webhook-secret"));
    assert_eq!(receiver["url"], format!("http://{}/…", hook.addr));
    assert_eq!(receiver["signed"], true);
    // A receiver reminded every second while an alert fires (the others
    // keep the node's 4 h).
    let reminded = Receiver::start("{}");
    let (status, body) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(
            json!({"name": "reminded", "kind": "webhook", "url": reminded.url("/"), "repeat_interval": "1s"}),
        ),
    );
    assert_eq!(
        (status, &body["repeat_interval_ms"]),
        (201, &json!(1000)),
        "{body}"
    );
    let (status, body) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(
            json!({"name": "nagging", "kind": "webhook", "url": reminded.url("/"), "repeat_interval": "1ms"}),
        ),
    );
    assert_eq!(status, 422, "{body}");

    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "200ms",
        "m-silent",
        "silent-host",
    );
    agent.run();
    wait_until(WAIT, "the host to report", || steady(&node, 1));
    agent.kill();
    wait_until(WAIT, "host silent at the webhook", || {
        told(&hook, "host_silent") == ["firing"]
    });
    // A receiver added while the alert fires is told of it too (as after
    // an Alertmanager reload), and later of its resolution.
    let late = Receiver::start("{}");
    // Named in Chinese, as staff name them.
    let (status, body) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(json!({"name": "运维-后到", "kind": "webhook", "url": late.url("/")})),
    );
    assert_eq!(status, 201, "{body}");
    wait_until(WAIT, "the late receiver told of the firing alert", || {
        told(&late, "host_silent") == ["firing"]
    });
    let request = hook
        .received()
        .into_iter()
        .find(|r| r.json()["alerts"][0]["labels"]["alertname"] == "host_silent")
        .unwrap();
    assert_eq!(request.target, "/hook");
    let body = request.json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "ops-hook");
    assert_eq!(body["alerts"][0]["labels"]["hostname"], "silent-host");
    assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // The signature is the HMAC-SHA256 of the body, keyed by the secret.
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"webhook-secret"),
        &request.body,
    );
    let hex: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        request.headers["x-suanli-signature"],
        format!("sha256={hex}")
    );
    let (_, firing) = call(&node, "GET", "/api/v1/alerts?state=firing", None);
    let silent: Vec<&Value> = firing["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "host_silent")
        .collect();
    assert_eq!(silent.len(), 1, "{firing}");
    let alert_id = silent[0]["id"].as_i64().unwrap();
    let (status, acked) = call(
        &node,
        "POST",
        &format!("/api/v1/alerts/{alert_id}/ack"),
        None,
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["acked_by"], "admin-token");

    wait_until(WAIT, "two reminders", || {
        told(&reminded, "host_silent").len() >= 3
    });

    agent.run();
    wait_until(WAIT, "the resolution at both receivers", || {
        told(&hook, "host_silent") == ["firing", "resolved"]
            && told(&late, "host_silent") == ["firing", "resolved"]
    });
    // Reminded while it fired, told once of its end, and nothing after.
    wait_until(WAIT, "the resolution at the reminded receiver", || {
        told(&reminded, "host_silent").last().map(String::as_str) == Some("resolved")
    });
    let id = receiver["id"].as_i64().unwrap();
    // Each attempt is recorded just after its answer came back.
    let mut ledger = Value::Null;
    wait_until(WAIT, "both attempts recorded", || {
        ledger = call(
            &node,
            "GET",
            &format!("/api/v1/receivers/{id}/attempts"),
            None,
        )
        .1;
        ledger["attempts"].as_array().is_some_and(|a| a.len() >= 2)
    });
    let attempts = ledger["attempts"].as_array().unwrap();
    assert!(attempts.iter().all(|a| a["http_status"] == 200), "{ledger}");

    // A test notification, from the API as from the receivers page: sent
    // through the same ledger, recorded as an attempt, never open.
    let (status, test) = call(&node, "POST", &format!("/api/v1/receivers/{id}/test"), None);
    assert_eq!(status, 202, "{test}");
    wait_until(WAIT, "the test notification at the webhook", || {
        told(&hook, "receiver_test") == ["firing"]
    });
    let request = hook
        .received()
        .into_iter()
        .find(|r| r.json()["alerts"][0]["labels"]["alertname"] == "receiver_test")
        .unwrap();
    let alert = &request.json()["alerts"][0];
    assert_eq!(alert["labels"]["receiver"], "ops-hook", "{alert}");
    assert!(
        alert["annotations"]["summary_zh"]
            .as_str()
            .is_some_and(|s| s.starts_with("测试通知")),
        "{alert}"
    );
    wait_until(WAIT, "the test's attempt recorded", || {
        let ledger = call(
            &node,
            "GET",
            &format!("/api/v1/receivers/{id}/attempts"),
            None,
        )
        .1;
        ledger["attempts"].as_array().is_some_and(|a| a.len() >= 3)
    });
    assert!(
        told(&late, "receiver_test").is_empty(),
        "only the receiver tested is told"
    );
    let (_, firing) = call(&node, "GET", "/api/v1/alerts?state=firing", None);
    assert!(
        !firing.to_string().contains("receiver_test"),
        "a test is never an open alert: {firing}"
    );
    let (status, _) = call(&node, "POST", "/api/v1/receivers/999999/test", None);
    assert_eq!(status, 404);
    // The test notification has come and gone since the resolution: no
    // reminder followed it.
    let reminders = told(&reminded, "host_silent");
    assert_eq!(
        reminders.iter().filter(|s| *s == "resolved").count(),
        1,
        "{reminders:?}"
    );
    assert_eq!(
        reminders.last().map(String::as_str),
        Some("resolved"),
        "{reminders:?}"
    );
}

#[test]
fn a_silence_stops_notifications_and_a_failing_receiver_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start("{}");
    hook.answer(500, "{}");
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, FAST_ALERTS);
    let (status, _) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(json!({"name": "flaky", "kind": "webhook", "url": hook.url("/")})),
    );
    assert_eq!(status, 201);
    // Silenced: this host's alerts are not sent.
    let (status, silence) = call(
        &node,
        "POST",
        "/api/v1/silences",
        Some(
            json!({"matchers": [{"name": "hostname", "value": "muted-host"}], "duration": "1h", "reason": "maintenance"}),
        ),
    );
    assert_eq!(status, 201, "{silence}");
    let join = node.join_string(None);
    let mut muted = Agent::join_as(
        &dir.path().join("muted"),
        &join,
        "200ms",
        "m-muted",
        "muted-host",
    );
    let join = node.join_string(None);
    let mut loud = Agent::join_as(
        &dir.path().join("loud"),
        &join,
        "200ms",
        "m-loud",
        "loud-host",
    );
    muted.run();
    loud.run();
    wait_until(WAIT, "both hosts to report", || steady(&node, 2));
    muted.kill();
    loud.kill();
    // The receiver fails at first: the loud host's alert is retried until it answers.
    wait_until(WAIT, "two failed attempts", || {
        hook.received()
            .iter()
            .filter(|r| r.json()["alerts"][0]["labels"]["hostname"] == "loud-host")
            .count()
            >= 2
    });
    hook.answer(200, "{}");
    let (_, receivers) = call(&node, "GET", "/api/v1/receivers", None);
    let id = receivers["receivers"][0]["id"].as_i64().unwrap();
    wait_until(WAIT, "a successful attempt", || {
        let (_, ledger) = call(
            &node,
            "GET",
            &format!("/api/v1/receivers/{id}/attempts"),
            None,
        );
        ledger["attempts"][0]["http_status"] == 200
    });
    let hosts_told: Vec<String> = hook
        .received()
        .iter()
        .flat_map(|r| r.json()["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            a["labels"]["hostname"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        hosts_told.iter().all(|h| h != "muted-host"),
        "{hosts_told:?}"
    );
    let (_, receivers) = call(&node, "GET", "/api/v1/receivers", None);
    assert!(
        receivers["receivers"][0]["deliveries"]["suppressed"]
            .as_i64()
            .unwrap()
            >= 1,
        "{receivers}"
    );
}

on_each_backend!(
    an_xid_79_takes_the_gpu_out_of_selection_until_staff_mark_it_healthy("monitoring_xid")
);

fn an_xid_79_takes_the_gpu_out_of_selection_until_staff_mark_it_healthy(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let library = nvml_standin(dir.path());
    let xids = dir.path().join("xids");
    std::fs::write(&xids, "").unwrap();
    let idle = dir.path().join("gpu1-utilization");
    std::fs::write(&idle, "0").unwrap();
    let mut node = Aggregator::start(&dir.path().join("node"), backend, FAST_ALERTS);
    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "200ms",
        "m-gpu",
        "gpu-host",
    );
    agent.env = vec![
        ("SUANLI_NVML_LIBRARY".into(), library.display().to_string()),
        ("SUANLI_STANDIN_XID_FILE".into(), xids.display().to_string()),
        (
            "SUANLI_STANDIN_GPU1_UTILIZATION_FILE".into(),
            idle.display().to_string(),
        ),
    ];
    agent.run();
    let hook = Receiver::start("{}");
    let (status, _) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(json!({"name": "hook", "kind": "webhook", "url": hook.url("/")})),
    );
    assert_eq!(status, 201);
    // When the receiver heard of XID `xid`.
    let heard = |xid: &str| {
        hook.received().into_iter().find_map(|r| {
            let told = r.json()["alerts"]
                .as_array()?
                .iter()
                .any(|a| a["labels"]["xid"] == xid && a["status"] == "firing");
            told.then_some(r.at)
        })
    };
    let demand = json!({"accelerator": {"model": "H100"}});
    let select =
        |node: &Aggregator| call(node, "POST", "/api/v1/selection", Some(demand.clone())).1;
    wait_until(WAIT, "the idle GPU to be selectable", || {
        select(&node)["candidates"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
    });
    let gpu1 = select(&node)["candidates"][0]["hosts"][0]["resources"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let xid_alert = |node: &Aggregator, xid: &str| -> Option<Value> {
        let (_, alerts) = call(node, "GET", "/api/v1/alerts", None);
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                a["rule"] == "gpu_xid" && a["labels"]["xid"] == xid && a["labels"]["gpu"] == "1"
            })
            .cloned()
    };

    // An application error: a warning, and the GPU stays selectable.
    std::fs::write(&xids, "1 13\n").unwrap();
    wait_until(WAIT, "the XID 13 warning", || {
        xid_alert(&node, "13").is_some()
    });
    assert_eq!(xid_alert(&node, "13").unwrap()["severity"], "warning");
    assert_eq!(select(&node)["candidates"].as_array().unwrap().len(), 1);

    // Fallen off the bus: critical, and out of selection, saying why.
    std::fs::write(&xids, "1 13\n1 79\n").unwrap();
    let injected = std::time::Instant::now();
    wait_until(WAIT, "GPU 1 to leave selection", || {
        select(&node)["candidates"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    let answer = select(&node);
    assert!(
        answer["eliminated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["constraint"] == "health"),
        "{answer}"
    );
    let detail = answer["nearest_misses"][0]["failed"][0]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("unhealthy: XID 79"), "{detail}");
    wait_until(WAIT, "the XID 79 alert", || {
        xid_alert(&node, "79").is_some()
    });
    assert_eq!(xid_alert(&node, "79").unwrap()["severity"], "critical");
    wait_until(WAIT, "the receiver to hear of XID 79", || {
        heard("79").is_some()
    });
    // Measured, not asserted: 200 ms sampling, 200 ms evaluation, no group wait.
    eprintln!(
        "XID 79 written to the stand-in's queue → receiver: {} ms",
        heard("79").unwrap().duration_since(injected).as_millis()
    );

    // A restart remembers the fault: the GPU stays out.
    node.restart();
    wait_until(WAIT, "the host to report again", || {
        let (_, summary) = call(&node, "GET", "/api/v1/summary", None);
        summary["hosts"]["online"] == 1
    });
    let answer = select(&node);
    assert!(
        answer["candidates"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    assert!(xid_alert(&node, "79").unwrap()["resolved_at_ms"].is_null());

    // While the host is silent its XID alert is held by host_silent, as
    // Alertmanager's inhibition shows it; host_silent itself is not.
    agent.kill();
    let silent_id = || -> Option<Value> {
        let (_, firing) = call(&node, "GET", "/api/v1/alerts?state=firing", None);
        let alerts = firing["alerts"].as_array()?.clone();
        let silent = alerts.iter().find(|a| a["rule"] == "host_silent")?;
        assert!(silent["inhibited_by"].is_null(), "{silent}");
        Some(silent["id"].clone())
    };
    wait_until(WAIT, "the XID alert inhibited by host_silent", || {
        silent_id().is_some_and(|id| xid_alert(&node, "79").unwrap()["inhibited_by"] == id)
    });
    std::fs::write(&xids, "").unwrap();
    agent.run();
    wait_until(WAIT, "the XID alert no longer inhibited", || {
        silent_id().is_none() && xid_alert(&node, "79").unwrap()["inhibited_by"].is_null()
    });

    // Staff deal with it and say so, with a reason.
    let (status, problem) = call(
        &node,
        "POST",
        &format!("/api/v1/resources/{gpu1}/mark-healthy"),
        Some(json!({"reason": ""})),
    );
    assert_eq!(status, 422, "{problem}");
    let (status, _) = call(
        &node,
        "POST",
        &format!("/api/v1/resources/{gpu1}/mark-healthy"),
        Some(json!({"reason": "reseated the GPU, nvidia-smi -r"})),
    );
    assert_eq!(status, 204);
    wait_until(WAIT, "GPU 1 back in selection", || {
        select(&node)["candidates"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
    });
    wait_until(WAIT, "the XID 79 alert to resolve", || {
        xid_alert(&node, "79").is_some_and(|a| !a["resolved_at_ms"].is_null())
    });
    let (_, audit) = call(&node, "GET", "/api/v1/audit", None);
    assert!(
        audit.to_string().contains("resource.mark_healthy"),
        "{audit}"
    );
}

/// Debian's Alertmanager on a loopback port; killed when dropped.
struct Alertmanager {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    fn start(dir: &std::path::Path) -> Self {
        let binary = std::path::Path::new("/usr/bin/prometheus-alertmanager");
        if !binary.is_file() {
            component::missing("Alertmanager", "/usr/bin/prometheus-alertmanager");
        }
        component::found("Alertmanager");
        std::fs::write(
            dir.join("alertmanager.yml"),
            "route:\n  receiver: none\nreceivers:\n  - name: none\n",
        )
        .unwrap();
        // A port the kernel picks, handed over to Alertmanager.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = std::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let am = Self { child, addr };
        wait_until(WAIT, "Alertmanager to be ready", || {
            Request::new("GET", "/-/ready")
                .try_send(am.addr)
                .is_some_and(|r| r.status == 200)
        });
        am
    }

    /// The alerts Alertmanager holds, by name.
    fn alerts(&self, alertname: &str) -> Vec<Value> {
        let r = Request::new("GET", "/api/v2/alerts").send(self.addr);
        serde_json::from_str::<Value>(&r.body)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .cloned()
            .collect()
    }
}

#[test]
#[ignore = "needs Alertmanager: run .ci/test"]
fn alerts_forwarded_to_an_existing_alertmanager_fire_and_resolve_there() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(dir.path());
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, FAST_ALERTS);
    let (status, body) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(json!({"name": "am", "kind": "alertmanager", "url": format!("http://{}", am.addr)})),
    );
    assert_eq!(status, 201, "{body}");
    let join = node.join_string(None);
    let mut agent = Agent::join_as(&dir.path().join("agent"), &join, "200ms", "m-am", "am-host");
    agent.run();
    wait_until(WAIT, "the host to report", || steady(&node, 1));
    agent.kill();
    wait_until(WAIT, "Alertmanager to hold host_silent", || {
        !am.alerts("host_silent").is_empty()
    });
    let alert = &am.alerts("host_silent")[0];
    assert_eq!(alert["labels"]["hostname"], "am-host");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("am-host")
    );
    agent.run();
    // Resolved: Alertmanager no longer lists it as active.
    wait_until(WAIT, "Alertmanager to see it resolved", || {
        am.alerts("host_silent").is_empty()
    });
}

#[test]
#[ignore = "needs an SMTP server (aiosmtpd): run .ci/test"]
fn mail_reaches_a_real_smtp_server_and_tells_the_resolution_too() {
    let python = std::path::Path::new("/usr/bin/python3");
    let has_aiosmtpd = std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_aiosmtpd {
        component::missing("an SMTP server", "aiosmtpd for /usr/bin/python3");
    }
    component::found("SMTP (aiosmtpd)");
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut smtp = std::process::Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(WAIT, "the SMTP server to listen", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, FAST_ALERTS);
    let url = format!("smtp://{addr}?to=ops@example.com&from=suanli@node.example");
    let (status, body) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(json!({"name": "mail", "kind": "email", "url": url})),
    );
    assert_eq!(status, 201, "{body}");
    // Plain SMTP elsewhere than loopback is refused.
    let (status, _) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(
            json!({"name": "mail2", "kind": "email", "url": "smtp://mail.example.com?to=ops@example.com"}),
        ),
    );
    assert_eq!(status, 422);
    // Each message in the maildir, decoded by Python's email package.
    let mails = || -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| {
                let out = std::process::Command::new(python)
                    .arg("-c")
                    .arg("import email,sys; m=email.message_from_binary_file(open(sys.argv[1],'rb')); print(str(email.header.make_header(email.header.decode_header(m['Subject'])))); print(m['To']); print(m.get_payload(decode=True).decode())")
                    .arg(e.path())
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap()
            })
            .collect()
    };
    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "200ms",
        "m-mail",
        "mail-host",
    );
    agent.run();
    wait_until(WAIT, "the host to report", || steady(&node, 1));
    agent.kill();
    wait_until(WAIT, "the firing mail", || {
        mails()
            .iter()
            .any(|m| m.contains("mail-host 已") && m.contains("秒未上报样本"))
    });
    let firing = mails()
        .into_iter()
        .find(|m| m.contains("[告警 FIRING]"))
        .unwrap();
    assert!(firing.contains("ops@example.com"), "{firing}");
    agent.run();
    wait_until(WAIT, "the resolved mail", || {
        mails().iter().any(|m| m.starts_with("[已恢复 RESOLVED]"))
    });
    let _ = smtp.kill();
    let _ = smtp.wait();
}

#[test]
fn a_hung_receiver_holds_up_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let hung = Receiver::hanging();
    let hook = Receiver::start("{}");
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, FAST_ALERTS);
    for (name, url) in [("hung", format!("http://{hung}/")), ("hook", hook.url("/"))] {
        let (status, body) = call(
            &node,
            "POST",
            "/api/v1/receivers",
            Some(json!({"name": name, "kind": "webhook", "url": url})),
        );
        assert_eq!(status, 201, "{body}");
    }
    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "200ms",
        "m-hung",
        "hung-host",
    );
    agent.run();
    wait_until(WAIT, "the host to report", || steady(&node, 1));
    agent.kill();
    wait_until(WAIT, "the other receiver to hear", || {
        told(&hook, "host_silent") == ["firing"]
    });
    // While the hung one's request is still waiting: it has no attempt yet.
    let (_, receivers) = call(&node, "GET", "/api/v1/receivers", None);
    let id = receivers["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "hung")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let attempts = |node: &Aggregator| {
        call(
            node,
            "GET",
            &format!("/api/v1/receivers/{id}/attempts"),
            None,
        )
        .1["attempts"]
            .clone()
    };
    assert_eq!(attempts(&node), json!([]));
    wait_until(WAIT, "the hung receiver's attempt to time out", || {
        let (_, ledger) = call(
            &node,
            "GET",
            &format!("/api/v1/receivers/{id}/attempts"),
            None,
        );
        ledger["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within 10 s"))
    });
}

#[test]
fn bad_receivers_and_silences_are_refused_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let refused = |path: &str, body: Value, field: &str| {
        let (status, problem) = call(&node, "POST", path, Some(body.clone()));
        assert!(status == 422 || status == 400, "{body}: {status} {problem}");
        assert!(problem.to_string().contains(field), "{body}: {problem}");
    };
    let hook = |fields: Value| {
        let mut body = json!({"name": "x", "kind": "webhook", "url": "https://hooks.example.cn/a"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    refused("/api/v1/receivers", hook(json!({"kind": "pager"})), "kind");
    refused(
        "/api/v1/receivers",
        hook(json!({"url": "ftp://x.cn/"})),
        "url",
    );
    refused("/api/v1/receivers", hook(json!({"url": "https://"})), "url");
    refused(
        "/api/v1/receivers",
        hook(json!({"url": "https://user:pw@x.cn/"})),
        "url",
    );
    // Plain http leaves the machine only where loopback was allowed, and not even then.
    refused(
        "/api/v1/receivers",
        hook(json!({"url": "http://127.0.0.1:9/"})),
        "url",
    );
    refused(
        "/api/v1/receivers",
        hook(
            json!({"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t"}),
        ),
        "secret",
    );
    refused(
        "/api/v1/receivers",
        hook(json!({"mentions": ["not-a-phone"]})),
        "mentions",
    );
    refused(
        "/api/v1/receivers",
        hook(json!({"min_severity": "panic"})),
        "min_severity",
    );
    refused(
        "/api/v1/receivers",
        hook(json!({"name": "has space"})),
        "name",
    );
    refused(
        "/api/v1/receivers",
        hook(json!({"colour": "red"})),
        "colour",
    );
    refused(
        "/api/v1/receivers",
        hook(json!({"secret": "x".repeat(501)})),
        "secret",
    );
    let silence = |fields: Value| {
        let mut body = json!({"matchers": [{"name": "hostname", "value": "h"}], "duration": "1h", "reason": "r"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    refused(
        "/api/v1/silences",
        silence(json!({"reason": " "})),
        "reason",
    );
    refused(
        "/api/v1/silences",
        silence(json!({"matchers": []})),
        "matchers",
    );
    refused(
        "/api/v1/silences",
        silence(json!({"matchers": [{"name": "h", "op": "=~", "value": "("}]})),
        "matchers",
    );
    refused(
        "/api/v1/silences",
        silence(json!({"matchers": [{"name": "h", "op": "<", "value": "1"}]})),
        "matchers",
    );
    refused(
        "/api/v1/silences",
        silence(json!({"duration": "soon"})),
        "duration",
    );
    refused(
        "/api/v1/silences",
        silence(json!({"duration": "400d"})),
        "ends_at_ms",
    );
    refused(
        "/api/v1/silences",
        silence(json!({"duration": null, "ends_at_ms": 1})),
        "ends_at_ms",
    );
    let (status, _) = call(&node, "GET", "/api/v1/alerts?state=burning", None);
    assert_eq!(status, 422);
    let (status, _) = call(&node, "GET", "/api/v1/alerts?limit=0", None);
    assert_eq!(status, 422);
    let (status, _) = call(&node, "POST", "/api/v1/alerts/999999/ack", None);
    assert_eq!(status, 404);
    let (status, _) = call(&node, "POST", "/api/v1/alerts/abc/ack", None);
    assert!(status == 400 || status == 404 || status == 422, "{status}");
    let (status, _) = call(&node, "DELETE", "/api/v1/silences/999999", None);
    assert_eq!(status, 404);
    // A host's own resource is not an accelerator to mark healthy.
    let (status, _) = call(
        &node,
        "POST",
        "/api/v1/resources/CN.LOCAL_NOPE/mark-healthy",
        Some(json!({"reason": "x"})),
    );
    assert_eq!(status, 404);
}

#[test]
fn a_broken_sensor_is_one_data_problem_not_a_temperature_alert() {
    let dir = tempfile::tempdir().unwrap();
    // Staff's own inhibition rule: while a card's data makes no sense, its
    // XIDs are held (shown as inhibited, not sent).
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[[alerts.inhibit_rules]]\n\
         source_matchers = [\"alertname=reading_implausible\"]\n\
         target_matchers = ['alertname=\"gpu_xid\"']\n\
         equal = [\"hostname\", \"uuid\"]\n",
    )
    .unwrap();
    let args: Vec<&str> = FAST_ALERTS
        .iter()
        .copied()
        .chain(["--config", config.to_str().unwrap()])
        .collect();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &args);
    let hook = Receiver::start("{}");
    let (status, receiver) = call(
        &node,
        "POST",
        "/api/v1/receivers",
        Some(json!({"name": "hook", "kind": "webhook", "url": hook.url("/")})),
    );
    assert_eq!(status, 201, "{receiver}");
    let xids = dir.path().join("xids");
    std::fs::write(&xids, "").unwrap();
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &node.join_string(None),
        "200ms",
        "m-broken",
        "broken-sensor",
    );
    agent.env = vec![
        (
            "SUANLI_NVML_LIBRARY".into(),
            nvml_standin(dir.path()).display().to_string(),
        ),
        ("SUANLI_STANDIN_GPU0_CELSIUS".into(), "10000".into()),
        ("SUANLI_STANDIN_XID_FILE".into(), xids.display().to_string()),
    ];
    agent.run();
    let firing = || -> Vec<Value> {
        let (_, alerts) = call(&node, "GET", "/api/v1/alerts?state=firing", None);
        alerts["alerts"].as_array().cloned().unwrap_or_default()
    };
    wait_until(WAIT, "the data problem", || {
        firing().iter().any(|a| a["rule"] == "reading_implausible")
    });
    let samples = |node: &Aggregator| {
        call(node, "GET", "/api/v1/hosts/broken-sensor", None).1["vitals"]["seq"]
            .as_u64()
            .unwrap_or(0)
    };
    // Ten more samples, each evaluated: still the one problem, and no
    // temperature alert.
    let seen = samples(&node);
    wait_until(WAIT, "ten more samples", || samples(&node) >= seen + 10);
    let alerts = firing();
    let problems: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "reading_implausible")
        .collect();
    assert_eq!(problems.len(), 1, "{alerts:?}");
    assert_eq!(problems[0]["labels"]["field"], "temperature_celsius");
    assert_eq!(problems[0]["labels"]["gpu"], "0");
    assert!(
        problems[0]["summary"].as_str().unwrap().contains("10000"),
        "the raw value: {}",
        problems[0]
    );
    assert!(
        !alerts.iter().any(|a| a["rule"] == "gpu_temperature"),
        "{alerts:?}"
    );
    // The figures leave the reading out; the card still counts.
    let (_, host) = call(&node, "GET", "/api/v1/hosts/broken-sensor", None);
    let gpus = &host["vitals"]["gpus"];
    assert!(gpus[0]["temperature_celsius"].is_null(), "{host}");
    assert_eq!(gpus[0]["utilization_percent"], 87, "{host}");
    let (_, summary) = call(&node, "GET", "/api/v1/summary", None);
    let h100 = summary["by_accelerator_model"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"].as_str().unwrap().contains("H100"))
        .cloned()
        .unwrap();
    assert_eq!(h100["total"], 2, "{summary}");

    // An XID on the card with the broken sensor: open, inhibited by the
    // data problem, its notification held.
    std::fs::write(&xids, "0 13\n").unwrap();
    let problem_id = problems[0]["id"].clone();
    wait_until(WAIT, "the XID inhibited", || {
        firing()
            .iter()
            .any(|a| a["rule"] == "gpu_xid" && a["inhibited_by"] == problem_id)
    });
    // A test notification after it: by the time it arrives, the sender
    // has looked at the XID's notification (an older one) and held it.
    let id = receiver["id"].as_i64().unwrap();
    let (status, _) = call(&node, "POST", &format!("/api/v1/receivers/{id}/test"), None);
    assert_eq!(status, 202);
    wait_until(WAIT, "the test told", || {
        told(&hook, "receiver_test") == ["firing"]
    });
    assert_eq!(told(&hook, "reading_implausible"), ["firing"]);
    assert_eq!(told(&hook, "gpu_xid"), Vec::<String>::new());
    let (_, receivers) = call(&node, "GET", "/api/v1/receivers", None);
    assert_eq!(
        receivers["receivers"][0]["deliveries"]["pending"], 1,
        "held, not dropped: {receivers}"
    );
    // The rule is listed after the built-in one.
    let (_, rules) = call(&node, "GET", "/api/v1/rules", None);
    let inhibit = rules["inhibit_rules"].as_array().unwrap();
    assert_eq!(inhibit.len(), 2, "{rules}");
    assert_eq!(inhibit[0]["built_in"], true);
    assert_eq!(inhibit[1]["target_matchers"][0], "alertname=\"gpu_xid\"");

    // The sensor mended: the data problem resolves, and the XID, still
    // firing, is told then (as Alertmanager tells an alert no longer
    // inhibited).
    std::fs::write(&xids, "").unwrap();
    agent.stop();
    agent
        .env
        .retain(|(k, _)| k != "SUANLI_STANDIN_GPU0_CELSIUS");
    agent.run();
    wait_until(WAIT, "the XID told once nothing inhibits it", || {
        told(&hook, "gpu_xid") == ["firing"]
    });
    wait_until(WAIT, "the data problem's end told", || {
        told(&hook, "reading_implausible") == ["firing", "resolved"]
    });
}
