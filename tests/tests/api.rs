//! The HTTP API as its users meet it: the service center's flows, the
//! role × endpoint access matrix (every cell, read from the OpenAPI
//! document so a new route cannot be left out), and bad input on every
//! endpoint. One real aggregator per test, SQLite unless said otherwise.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use suanli_tests::{Agent, Aggregator, Backend, Request, Session, on_each_backend, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "a long enough password";

fn start(dir: &std::path::Path, backend: Backend) -> Aggregator {
    Aggregator::start(&dir.join("node"), backend, &[])
}

fn admin(node: &Aggregator) -> Session {
    node.sign_in("admin", &node.admin_password())
}

/// Staff create an account with [`PASSWORD`].
fn create_account(staff: &Session, login: &str, role: &str) {
    let r = staff.send(
        "POST",
        "/api/v1/accounts",
        &json!({"login": login, "role": role, "password": PASSWORD}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Files a registration and returns its id.
fn register(node: &Aggregator, kind: &str, uscc: &str, login: &str) -> i64 {
    node.register(kind, uscc, login, PASSWORD)
}

/// Registers an organisation, has staff approve it, and signs its account in.
fn approved(node: &Aggregator, staff: &Session, kind: &str, uscc: &str, login: &str) -> Session {
    node.organisation(staff, kind, uscc, login, PASSWORD)
}

/// Valid credit codes (check characters computed per GB 32100).
const USCC: [&str; 4] = [
    "91350100M000100Y43",
    "91110108551385082Q",
    "91440300708461136T",
    "9144030071526726XG",
];

on_each_backend!(an_organisation_registers_is_reviewed_and_enrolls_its_own_host("api_walkthrough"));

fn an_organisation_registers_is_reviewed_and_enrolls_its_own_host(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path(), backend);
    let staff = admin(&node);

    // Every bad field is named at once.
    let bad = json!({
        "kind": "bank", "name": "", "uscc": "91350100M000100Y44", "region": "999999",
        "industry": "Z99", "contact": "x", "login": "a", "password": "short",
    });
    let r = Request::new("POST", "/api/v1/registrations")
        .json(&bad.to_string())
        .send(node.http);
    assert_eq!(r.status, 422, "{}", r.body);
    let fields = r.error_fields();
    for field in [
        "kind", "name", "uscc", "region", "industry", "login", "password",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
    // In Chinese for a reader who asks: the title and the messages that
    // come from the catalog.
    let zh = Request::new("POST", "/api/v1/registrations")
        .header("Accept-Language", "zh-CN")
        .json(&bad.to_string())
        .send(node.http)
        .json();
    assert_eq!(zh["title"], "字段有误", "{zh}");
    let message = |field: &str| {
        zh["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .map(|e| e["message"].clone())
    };
    assert_eq!(message("name"), Some(json!("不能为空")), "{zh}");
    assert_eq!(
        message("login"),
        Some(json!("3–64 个字符：字母、数字及 . _ - @")),
        "{zh}"
    );
    // The rules and the XID catalog too.
    let rules = staff
        .request("GET", "/api/v1/rules")
        .header("Accept-Language", "zh-CN")
        .send(node.http)
        .json();
    let silent = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "host_silent")
        .unwrap();
    assert!(
        silent["description"]
            .as_str()
            .unwrap()
            .starts_with("连续 3 个上报周期没有样本"),
        "{silent}"
    );
    let xid79 = rules["xid_catalog"]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["xid"] == 79)
        .unwrap();
    assert_eq!(xid79["name"], "GPU 已从总线掉线", "{xid79}");
    // Every other error the console can show: a 404 naming what is
    // missing, a demand's bad fields, an id that is not one.
    let read_zh = |method: &str, path: &str, body: Option<Value>| {
        let mut request = staff
            .request(method, path)
            .header("Accept-Language", "zh-CN");
        if let Some(body) = body {
            request = request.json(&body.to_string());
        }
        let r = request.send(node.http);
        (r.status, r.json())
    };
    let (status, problem) = read_zh("GET", "/api/v1/hosts/no-such-host", None);
    assert_eq!(
        (status, &problem["detail"]),
        (404, &json!("没有主机“no-such-host”")),
        "{problem}"
    );
    let (status, problem) = read_zh(
        "POST",
        "/api/v1/selection",
        Some(json!({"availability": "someday", "user_region": "99"})),
    );
    assert_eq!(status, 422, "{problem}");
    let messages = problem["errors"].to_string();
    assert!(
        messages.contains("free_now 或 installed") && messages.contains("行政区划代码"),
        "{problem}"
    );
    let (status, problem) = read_zh("POST", "/api/v1/alerts/not-a-number/ack", None);
    assert_eq!(
        (status, &problem["detail"]),
        (
            404,
            &json!("“not-a-number”不是有效的告警编号（编号为整数）")
        ),
        "{problem}"
    );
    assert!(
        r.body.contains("accept_unverified_uscc"),
        "says how to file anyway"
    );

    let id = register(&node, "provider", USCC[0], "acme");
    let applicant = node.sign_in("acme", PASSWORD);
    // Not approved yet: no tokens.
    let r = applicant.send("POST", "/api/v1/tokens", &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        applicant.get("/api/v1/registrations").json()["registrations"][0]["state"],
        "pending"
    );

    // A second filing of the same code is refused while the first is pending.
    let dup = json!({
        "kind": "provider", "name": "again", "uscc": USCC[0], "region": "440305",
        "industry": "I65", "contact": "x", "login": "acme2", "password": PASSWORD,
    });
    let r = Request::new("POST", "/api/v1/registrations")
        .json(&dup.to_string())
        .send(node.http);
    assert_eq!(r.status, 409, "{}", r.body);

    let r = staff.send(
        "POST",
        &format!("/api/v1/registrations/{id}/approve"),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = r.json()["provider"].as_str().unwrap().to_owned();
    let r = staff.send(
        "POST",
        &format!("/api/v1/registrations/{id}/approve"),
        &json!({}),
    );
    assert_eq!(r.status, 409, "reviewed twice: {}", r.body);

    // The provider creates its own token and enrolls a host with it.
    // Its hosts are at a site in Chengdu, not where it is registered.
    let r = applicant.send("POST", "/api/v1/tokens", &json!({"region": "5101"}));
    assert_eq!(
        (r.status, r.error_fields()),
        (422, vec!["region".to_owned()]),
        "{}",
        r.body
    );
    let r = applicant.send(
        "POST",
        "/api/v1/tokens",
        &json!({"ttl_hours": 1, "region": "510107"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let made = r.json();
    assert_eq!(made["provider"], code.as_str());
    let r = applicant.send("POST", "/api/v1/tokens", &json!({"provider": "P09999"}));
    assert_eq!(r.status, 403, "another's code: {}", r.body);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        made["join"].as_str().unwrap(),
        "1s",
        "acme-machine-1",
        "acme-gpu-01",
    );
    agent.run();
    wait_until(WAIT, "the provider's host to report", || {
        applicant.get("/api/v1/hosts").json()["hosts"]
            .as_array()
            .unwrap()
            .len()
            == 1
            && applicant.get("/api/v1/resources?q=acme").json()["resources"][0]["state"] == "online"
    });
    let host_id = applicant.get("/api/v1/hosts").json()["hosts"][0]["host_id"]
        .as_i64()
        .unwrap();
    // Pages: past the last host there is none, and a page has a size.
    let after = applicant
        .get(&format!("/api/v1/hosts?cursor={host_id}"))
        .json();
    assert_eq!(after["hosts"], json!([]), "{after}");
    assert_eq!(applicant.get("/api/v1/hosts?limit=0").status, 422);

    // A host that enrolled and never streamed is listed too, as such, and
    // the list filters by state, text and region.
    let r = applicant.send(
        "POST",
        "/api/v1/tokens",
        &json!({"ttl_hours": 1, "region": "510107"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    Agent::join_as(
        &dir.path().join("idle-agent"),
        r.json()["join"].as_str().unwrap(),
        "1s",
        "acme-machine-2",
        "acme-idle-02",
    );
    let names = |query: &str| -> Vec<(String, String)> {
        let page = applicant.get(&format!("/api/v1/hosts?{query}")).json();
        page["hosts"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {page}"))
            .iter()
            .map(|h| {
                (
                    h["hostname"].as_str().unwrap().to_owned(),
                    h["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |name: &str, state: &str| (name.to_owned(), state.to_owned());
    assert_eq!(names("state=enrolled"), [pair("acme-idle-02", "enrolled")]);
    assert_eq!(names("state=online"), [pair("acme-gpu-01", "online")]);
    assert_eq!(names("state=offline"), [pair("acme-idle-02", "enrolled")]);
    assert_eq!(names("q=GPU-01"), [pair("acme-gpu-01", "online")]);
    assert_eq!(names("region=5101").len(), 2);
    assert!(names("region=44").is_empty());
    assert_eq!(names("limit=1").len(), 1);
    // A cursor only where a host follows.
    let cursor = |query: &str| {
        applicant.get(&format!("/api/v1/hosts?{query}")).json()["next_cursor"].clone()
    };
    assert!(cursor("limit=1").is_i64());
    assert!(cursor("limit=2").is_null(), "two hosts in all");
    for (query, field) in [("state=asleep", "state"), ("region=x1", "region")] {
        let r = applicant.get(&format!("/api/v1/hosts?{query}"));
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert_eq!(r.json()["errors"][0]["field"], field, "{}", r.body);
    }

    // Another provider sees none of it; a user sees the resource but not the host.
    let other = approved(&node, &staff, "provider", USCC[1], "other");
    assert!(
        other.get("/api/v1/hosts").json()["hosts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(other.get(&format!("/api/v1/hosts/{host_id}")).status, 404);
    assert_eq!(
        other
            .send(
                "POST",
                &format!("/api/v1/hosts/{host_id}/revoke"),
                &json!({})
            )
            .status,
        404
    );
    let r = staff.send(
        "POST",
        "/api/v1/accounts",
        &json!({"login": "lookup", "role": "user"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let user = node.sign_in("lookup", r.json()["password"].as_str().unwrap());
    let listed = user.get("/api/v1/resources?q=acme").json();
    let identifier = listed["resources"][0]["identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        identifier.contains(&code),
        "{identifier} carries the provider code"
    );
    assert!(
        identifier.contains("_510107_"),
        "{identifier} carries the site"
    );
    assert_eq!(listed["resources"][0]["region"], "510107");
    let near = user.send(
        "POST",
        "/api/v1/selection",
        &json!({"region": "51", "user_region": "510104", "max_latency_ms": 2}),
    );
    assert_eq!(
        near.json()["candidates"][0]["hosts"][0]["hostname"],
        "acme-gpu-01",
        "{}",
        near.body
    );

    // The provider lists its prices; selection ranks and bounds by them.
    let prices = format!("/api/v1/providers/{code}/prices");
    let r = other.send("PUT", &prices, &json!({"prices": []}));
    assert_eq!(r.status, 403, "another's prices: {}", r.body);
    let r = applicant.send(
        "PUT",
        &prices,
        &json!({"prices": [
            {"resource": "gpu", "per_hour_cny": "-1"},
            {"resource": "cpu", "model": "Xeon", "per_hour_cny": "1.23456"},
            {"resource": "accelerator", "model": "H100", "per_hour_cny": 18},
            {"resource": "accelerator", "model": "h100", "per_hour_cny": 19},
        ]}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.error_fields(),
        [
            "prices[0].resource",
            "prices[0].per_hour_cny",
            "prices[1].model",
            "prices[1].per_hour_cny",
            "prices[3].model",
        ],
        "{}",
        r.body
    );
    let r = applicant.send(
        "PUT",
        &prices,
        &json!({"prices": [
            {"resource": "cpu", "per_hour_cny": "0.05"},
            {"resource": "accelerator", "model": "H100", "per_hour_cny": 18.5},
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = user.get(&prices).json();
    assert_eq!(
        listed["prices"],
        json!([
            {"resource": "accelerator", "model": "H100", "per_hour_cny": "18.50"},
            {"resource": "cpu", "model": null, "per_hour_cny": "0.05"},
        ])
    );
    let demand = |max: &str| json!({"region": "51", "cpu_cores": 2, "availability": "installed", "max_price_per_hour_cny": max});
    let priced = user.send("POST", "/api/v1/selection", &demand("0.10"));
    let pick = &priced.json()["candidates"][0]["hosts"][0];
    assert_eq!(
        (&pick["hostname"], &pick["price_per_hour_cny"]),
        (&json!("acme-gpu-01"), &json!("0.10")),
        "{}",
        priced.body
    );
    let dear = user
        .send("POST", "/api/v1/selection", &demand("0.09"))
        .json();
    assert!(dear["candidates"].as_array().unwrap().is_empty());
    // The enrolled host that never streamed fails on its unknown cores.
    assert!(
        dear["eliminated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["constraint"] == "price" && e["hosts"] == 1),
        "{dear}"
    );

    let resolved = user.get(&format!("/api/v1/resources/{identifier}")).json();
    assert_eq!(resolved["state"], "online");
    assert!(resolved["freshness_ms"].as_u64().unwrap() < 15_000);
    assert_eq!(user.get(&format!("/api/v1/hosts/{host_id}")).status, 403);

    // Rejection needs a reason; the audit log has the story.
    let third = register(&node, "reseller", USCC[2], "resale");
    let r = staff.send(
        "POST",
        &format!("/api/v1/registrations/{third}/reject"),
        &json!({}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = staff.send(
        "POST",
        &format!("/api/v1/registrations/{third}/reject"),
        &json!({"reason": "营业执照不清晰"}),
    );
    assert_eq!(r.json()["state"], "rejected");
    let audit = staff.get("/api/v1/audit").json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "registration.create",
        "registration.approve",
        "registration.reject",
        "token.create",
        "login",
        "account.create",
        "prices.set",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["address"] == "127.0.0.1")
    );
    // Prices are stored: a restarted node still has them.
    node.restart();
    wait_until(WAIT, "the restarted node to answer with the price", || {
        let r = user.send("POST", "/api/v1/selection", &demand("0.10"));
        r.status == 200 && r.json()["candidates"][0]["hosts"][0]["price_per_hour_cny"] == "0.10"
    });
    agent.stop();
}

#[test]
fn a_credit_code_failing_its_check_needs_an_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let staff = admin(&node);
    staff.send(
        "POST",
        "/api/v1/accounts",
        &json!({"login": "ops", "role": "operator", "password": PASSWORD}),
    );
    let operator = node.sign_in("ops", PASSWORD);
    let body = json!({
        "kind": "provider", "name": "旧执照公司", "uscc": "91350100M000100Y44", "accept_unverified_uscc": true,
        "region": "350100", "industry": "I65", "contact": "x", "login": "oldco", "password": PASSWORD,
    });
    let r = Request::new("POST", "/api/v1/registrations")
        .json(&body.to_string())
        .send(node.http);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["uscc_verified"], false);
    let id = r.json()["id"].as_i64().unwrap();
    let r = operator.send(
        "POST",
        &format!("/api/v1/registrations/{id}/approve"),
        &json!({}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = staff.send(
        "POST",
        &format!("/api/v1/registrations/{id}/approve"),
        &json!({"reason": "核对原件"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let audit = staff.get("/api/v1/audit").json();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "registration.approve"
                && e["detail"].as_str().unwrap().contains("override")),
        "the override is audited: {audit}"
    );
}

#[test]
fn sessions_keys_throttling_and_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let staff = admin(&node);
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            staff.set_cookie.contains(flag),
            "{flag} in {}",
            staff.set_cookie
        );
    }

    // A change without the CSRF token is refused; with it, accepted.
    let body = json!({"login": "viewer1", "role": "viewer", "password": PASSWORD}).to_string();
    let r = Request::new("POST", "/api/v1/accounts")
        .header("Cookie", &staff.cookie)
        .json(&body)
        .send(node.http);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("CSRF"));
    assert_eq!(
        staff
            .request("POST", "/api/v1/accounts")
            .json(&body)
            .send(node.http)
            .status,
        201
    );

    // API keys: shown once, work as bearer tokens, stop when revoked or expired.
    let r = staff.send("POST", "/api/v1/api-keys", &json!({"name": "prometheus"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let key_id = r.json()["id"].as_i64().unwrap();
    assert!(key.starts_with("sk_"));
    assert!(
        !staff.get("/api/v1/api-keys").body.contains(&key),
        "never shown again"
    );
    let with_key = |path: &str| Request::new("GET", path).bearer(&key).send(node.http);
    assert_eq!(with_key("/metrics").status, 200);
    assert_eq!(
        staff
            .request("DELETE", &format!("/api/v1/api-keys/{key_id}"))
            .send(node.http)
            .status,
        204
    );
    let r = with_key("/api/v1/summary");
    assert_eq!(r.status, 401, "{}", r.body);

    let r = staff.send(
        "POST",
        "/api/v1/api-keys",
        &json!({"name": "short-lived", "ttl_days": 1}),
    );
    let key = r.json()["key"].as_str().unwrap().to_owned();
    expire(&node, "UPDATE api_keys SET expires_at_ms = 1");
    assert_eq!(
        Request::new("GET", "/api/v1/summary")
            .bearer(&key)
            .send(node.http)
            .status,
        401
    );

    // An expired session is told to sign in again.
    let viewer = node.sign_in("viewer1", PASSWORD);
    assert_eq!(viewer.get("/api/v1/summary").status, 200);
    expire(&node, "UPDATE sessions SET expires_at_ms = 1");
    let r = viewer.get("/api/v1/summary");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("expired"), "{}", r.body);

    // Signing out ends the session.
    let again = node.sign_in("viewer1", PASSWORD);
    assert_eq!(
        again
            .request("DELETE", "/api/v1/session")
            .send(node.http)
            .status,
        204
    );
    assert_eq!(again.get("/api/v1/session").status, 401);

    // Five wrong passwords, then even the right one waits.
    let attempt = |password: &str| {
        Request::new("POST", "/api/v1/session")
            .json(&json!({"login": "viewer1", "password": password}).to_string())
            .send(node.http)
    };
    // Unknown logins get the same answer as wrong passwords (and count too).
    let r = Request::new("POST", "/api/v1/session")
        .json(&json!({"login": "nobody", "password": "whatever123"}).to_string())
        .send(node.http);
    assert_eq!(
        (r.status, r.json()["detail"].clone()),
        (401, json!("wrong login or password"))
    );
    // A reader who asks for Chinese reads the same problem in Chinese
    // (the dashboard asks so), its fields' messages too.
    let r = Request::new("POST", "/api/v1/session")
        .header("Accept-Language", "zh-CN,zh;q=0.9")
        .json(&json!({"login": "nobody", "password": "whatever123"}).to_string())
        .send(node.http);
    let problem = r.json();
    assert_eq!(
        (r.status, &problem["title"], &problem["detail"]),
        (401, &json!("未登录"), &json!("用户名或密码错误")),
        "{problem}"
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    for _ in 0..3 {
        assert_eq!(attempt("wrong password!").status, 401);
    }
    let r = attempt(PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    let r = Request::new("POST", "/api/v1/session")
        .header("Accept-Language", "zh")
        .json(&json!({"login": "viewer1", "password": PASSWORD}).to_string())
        .send(node.http);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        r.status == 429
            && detail.starts_with("登录失败次数过多；请 ")
            && detail.ends_with(" 秒后再试"),
        "{detail}"
    );
    // (Every session expired above, and this address is throttled: read
    // the log with the node's admin token.)
    let audit = Request::new("GET", "/api/v1/audit?limit=1000")
        .bearer(&node.admin_token())
        .send(node.http)
        .body;
    assert!(audit.contains("login.failed"));
    assert!(
        !audit.contains("wrong password!"),
        "passwords never reach the audit log"
    );
}

/// Runs SQL against the node's SQLite database, as time passing would.
fn expire(node: &Aggregator, sql: &str) {
    let url = format!("sqlite://{}", node.data_dir.join("suanli.db").display());
    let sql = sql.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        });
}

/// Every role (and nobody) against every documented operation: callers
/// without a role listed in `x-roles` get 403 (401 when not signed in),
/// callers with one get past the gate, and no documented route is missing.
#[test]
fn access_matrix_every_role_against_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let staff = admin(&node);
    // An organisation of each kind, approved, with its account.
    let mut keys: Vec<(String, String)> = Vec::new();
    for (i, (kind, login)) in [
        ("provider", "prov"),
        ("reseller", "resell"),
        ("line_provider", "liner"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = register(&node, kind, USCC[i], login);
        let r = staff.send(
            "POST",
            &format!("/api/v1/registrations/{id}/approve"),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for (role, login) in [
        ("operator", "ops"),
        ("viewer", "watch"),
        ("user", "someone"),
    ] {
        let r = staff.send(
            "POST",
            "/api/v1/accounts",
            &json!({"login": login, "role": role, "password": PASSWORD}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for (role, login) in [
        ("admin", "admin"),
        ("operator", "ops"),
        ("viewer", "watch"),
        ("provider", "prov"),
        ("reseller", "resell"),
        ("line_provider", "liner"),
        ("user", "someone"),
    ] {
        let session = if login == "admin" {
            staff.clone()
        } else {
            node.sign_in(login, PASSWORD)
        };
        let r = session.send("POST", "/api/v1/api-keys", &json!({"name": "matrix"}));
        assert_eq!(r.status, 201, "{}", r.body);
        keys.push((
            role.to_owned(),
            r.json()["key"].as_str().unwrap().to_owned(),
        ));
    }

    let doc = Request::new("GET", "/api/v1/openapi.json")
        .send(node.http)
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut cells = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let roles: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let concrete = path
                .replace("{id}", "999999")
                .replace("{login}", "nobody")
                .replace("{host}", "999999")
                .replace("{code}", "P09999")
                .replace(
                    "{identifier}",
                    "CN.LOCAL_P09999_I65_110000_C_X86-2C_000001_8",
                );
            let method = method.to_uppercase();
            let send = |key: Option<&str>| {
                let mut request = Request::new(&method, &concrete);
                if let Some(key) = key {
                    request = request.bearer(key);
                }
                if op.get("requestBody").is_some() {
                    request = request.json("{}");
                }
                request.send(node.http)
            };
            let anonymous = send(None);
            assert_ne!(
                anonymous.status, 404,
                "{method} {path} documented but not served"
            );
            assert!(
                !anonymous.body.contains("no such endpoint"),
                "{method} {path}"
            );
            if roles == ["public"] {
                assert!(
                    anonymous.status < 500,
                    "{method} {path}: {}",
                    anonymous.body
                );
                continue;
            }
            assert_eq!(
                anonymous.status, 401,
                "anonymous {method} {path}: {}",
                anonymous.body
            );
            for (role, key) in &keys {
                let r = send(Some(key));
                cells += 1;
                if roles.contains(&role.as_str()) {
                    assert!(
                        r.status != 401 && r.status != 403 && r.status < 500,
                        "{role} {method} {path} should pass the gate: {} {}",
                        r.status,
                        r.body
                    );
                    assert!(!r.body.contains("no such endpoint"), "{method} {path}");
                } else {
                    assert_eq!(r.status, 403, "{role} {method} {path}: {}", r.body);
                    assert_eq!(r.header("content-type"), Some("application/problem+json"));
                }
            }
        }
    }
    assert!(cells >= 7 * 30, "{cells} cells checked");
    // And a route that is not documented is not served.
    let r = Request::new("GET", "/api/v1/nothing-here")
        .bearer(&keys[0].1)
        .send(node.http);
    assert_eq!((r.status, r.body.contains("no such endpoint")), (404, true));
}

/// Hostile and broken input on every endpoint: clear errors, nothing harmed.
#[test]
fn bad_input_on_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let token = node.admin_token();
    let doc = Request::new("GET", "/api/v1/openapi.json")
        .send(node.http)
        .json();
    let injections = [
        "'; DROP TABLE accounts; --",
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "%00\u{0}",
        "${jndi:ldap://x}",
        "1 OR 1=1",
        "名字\u{202e}",
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let path_for = |text: &str| {
                let mut p = path.clone();
                for param in ["{id}", "{login}", "{host}", "{code}", "{identifier}"] {
                    p = p.replace(param, &percent(text));
                }
                p
            };
            // Injection strings in every path and query parameter.
            for text in injections {
                let mut target = path_for(text);
                let query: Vec<String> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| format!("{}={}", p["name"].as_str().unwrap(), percent(text)))
                    .collect();
                if !query.is_empty() {
                    target = format!("{target}?{}", query.join("&"));
                }
                let mut request = Request::new(&method, &target).bearer(&token);
                if op.get("requestBody").is_some() {
                    request = request.json("{}");
                }
                let r = request.send(node.http);
                assert!(
                    (200..500).contains(&r.status) && r.status != 0,
                    "{method} {target}: {} {}",
                    r.status,
                    r.body
                );
                if r.status >= 400 {
                    assert_eq!(
                        r.header("content-type"),
                        Some("application/problem+json"),
                        "{method} {target}"
                    );
                }
            }
            if op.get("requestBody").is_none() {
                continue;
            }
            let target = path_for("1");
            let send = |content_type: &str, body: &[u8]| {
                Request::new(&method, &target)
                    .bearer(&token)
                    .header("Content-Type", content_type)
                    .raw_body(body)
                    .send(node.http)
            };
            let malformed = send("application/json", b"{,");
            assert_eq!(
                malformed.status, 400,
                "{method} {path} malformed: {}",
                malformed.body
            );
            let not_json = send("text/plain", b"{}");
            assert_eq!(
                not_json.status, 415,
                "{method} {path} text/plain: {}",
                not_json.body
            );
            let oversize = send("application/json", &vec![b' '; 70 << 10]);
            assert_eq!(oversize.status, 413, "{method} {path} oversize");
            let unknown = send("application/json", br#"{"surprise": true}"#);
            assert_eq!(
                unknown.status, 422,
                "{method} {path} unknown field: {}",
                unknown.body
            );
            // serde would read a struct from an array: not here.
            for not_object in [&b"[null, null]"[..], b"[]", b"7", b"\"text\"", b"null"] {
                let r = send("application/json", not_object);
                assert_eq!(
                    (r.status, r.error_fields()),
                    (422, vec!["body".to_owned()]),
                    "{method} {path} {}: {}",
                    String::from_utf8_lossy(not_object),
                    r.body
                );
            }
            let wrong_types = send("application/json", br#"{"login": 5, "name": [], "interval_ms": "soon", "role": 1, "reason": 2, "ttl_hours": "x"}"#);
            assert_eq!(
                wrong_types.status, 422,
                "{method} {path} wrong types: {}",
                wrong_types.body
            );
        }
    }
    // Text fields take injection strings as plain text, stored and returned verbatim.
    let nasty = "<img src=x onerror=alert(1)>'; DROP TABLE providers; --";
    let body = json!({
        "kind": "provider", "name": nasty, "uscc": USCC[3], "region": "310000", "industry": "I65",
        "contact": nasty, "login": "nasty", "password": PASSWORD,
    });
    let r = Request::new("POST", "/api/v1/registrations")
        .json(&body.to_string())
        .send(node.http);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["name"], nasty);
    let staff = admin(&node);
    let listed = staff.get("/api/v1/registrations").json();
    assert_eq!(listed["registrations"][0]["contact"], nasty);
    assert_eq!(
        staff.get("/api/v1/accounts").status,
        200,
        "accounts table intact"
    );
    // Bad query values are named.
    let r = staff.get("/api/v1/resources?type=Q&state=gone&limit=0");
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["errors"].as_array().unwrap().len(),
        3,
        "{}",
        r.body
    );
    assert_eq!(staff.get("/api/v1/resources?limit=many").status, 400);
    assert_eq!(staff.get("/api/v1/resources?colour=red").status, 400);
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Status API and metrics with a real agent: resolve, history, Prometheus
/// series, and the live view's 1 s sampling that ends when the page closes.
#[test]
fn live_view_speeds_the_host_up_and_lets_it_go() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "3s",
        "live-machine",
        "live-host",
    );
    agent.run();
    let staff = admin(&node);
    wait_until(WAIT, "two samples", || {
        staff.get("/api/v1/hosts/live-host").json()["interval_ms"]
            .as_u64()
            .is_some()
    });
    let host = staff.get("/api/v1/hosts/live-host").json();
    let identifier = host["identifier"].as_str().unwrap().to_owned();
    let interval = host["interval_ms"].as_u64().unwrap();
    assert!((2_000..=4_500).contains(&interval), "{interval}");

    // Open the live view: samples come every second while it is open.
    let mut stream = std::net::TcpStream::connect(node.http).unwrap();
    use std::io::{BufRead, Write};
    write!(
        stream,
        "GET /api/v1/hosts/live-host/live HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n",
        staff.cookie
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut times = Vec::new();
    let mut line = String::new();
    while times.len() < 5 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).unwrap();
            times.push(v["collected_at_ms"].as_u64().unwrap());
        }
    }
    let last_gap = times[4] - times[3];
    assert!(
        (1..=2_000).contains(&last_gap),
        "1 s while watched: {times:?}"
    );
    drop(reader);
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    wait_until(WAIT, "the host back on its own interval", || {
        staff.get("/api/v1/hosts/live-host").json()["interval_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= 2_000)
    });

    // History, resolve, metrics.
    let r = staff.get(&format!(
        "/api/v1/resources/{identifier}/history?step=1s&metric=cpu_utilization_percent"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["points"].as_array().unwrap().len() >= 5);
    let r = staff.get(&format!(
        "/api/v1/resources/{identifier}/history?metric=gpu_power_watts&step=0s"
    ));
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["errors"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
    let r = staff.get("/api/v1/resources/not-an-identifier");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("not a valid identifier"), "{}", r.body);
    let unknown = identifier.replace("000001", "000077");
    let unknown = fix_check(&unknown);
    let r = staff.get(&format!("/api/v1/resources/{unknown}"));
    assert_eq!(r.status, 404, "{}", r.body);
    let metrics = staff.get("/metrics").body;
    assert!(metrics.contains("suanli_hosts{"), "{metrics}");
    assert!(metrics.contains("suanli_samples_stored_total"));
    let per_host = staff
        .get(&format!("/metrics/hosts?identifier={identifier}"))
        .body;
    assert!(
        per_host.contains(&format!("suanli_host_up{{identifier=\"{identifier}\"")),
        "{per_host}"
    );
    assert!(per_host.contains("suanli_host_cpu_utilization_ratio"));
    let summary = staff.get("/api/v1/summary").json();
    assert_eq!(summary["hosts"]["online"], 1);
    // The latency observed to the host's region is offered beside the table.
    let network = staff.get("/api/v1/network").json();
    let observed = &network["observed"][0];
    assert_eq!(observed["to_region"], "110108", "{network}");
    assert!(observed["median_rtt_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(
        observed["configured_ms"], 1.0,
        "same city as the node's default 110000"
    );
    assert!(network["history"].is_array());
    assert_eq!(staff.get("/api/v1/network?hours=0").status, 422);
    // The command line's changes are audited too.
    let audit = staff.get("/api/v1/audit").json();
    for action in ["provider.create", "token.create"] {
        assert!(
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action && e["actor"].as_str().unwrap().starts_with("cli:")),
            "{action}: {audit}"
        );
    }
    agent.stop();
}

/// Replaces an identifier's check character with the right one, by asking
/// the parser what it expected.
fn fix_check(identifier: &str) -> String {
    match suanli_protocol::identifier::Identifier::parse(identifier) {
        Ok(id) => id.to_string(),
        Err(suanli_protocol::identifier::IdentifierError::Check { expected, .. }) => {
            format!("{}{expected}", &identifier[..identifier.len() - 1])
        }
        Err(e) => panic!("{e}"),
    }
}

/// A supervisor that stops reading the node's stdout after the first line
/// must not take the node down with it.
#[test]
fn the_node_keeps_serving_when_its_stdout_is_closed() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(suanli_tests::binary("suanli-aggregator"))
        .args([
            "serve",
            "--quic-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("node"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
    } // the pipe's read end closes here, before the node has written the rest
    let http: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .unwrap()
        .parse()
        .unwrap();
    let password_file = dir.path().join("node/admin.password");
    suanli_tests::wait_until(WAIT, "the initial password", || password_file.exists());
    let password = std::fs::read_to_string(password_file).unwrap();
    let session = Session::sign_in(http, "admin", password.trim());
    assert_eq!(session.get("/api/v1/summary").status, 200);
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
}

on_each_backend!(line_providers_register_and_change_their_own_lines(
    "api_lines"
));

fn line_providers_register_and_change_their_own_lines(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), backend);
    let staff = admin(&node);
    let liner = approved(&node, &staff, "line_provider", USCC[0], "liner");
    let rival = approved(&node, &staff, "line_provider", USCC[1], "rival");
    let r = liner.send(
        "POST",
        "/api/v1/lines",
        &json!({"name": "京沪专线", "from_region": "110108", "to_region": "310115",
                "latency_ms": 9.5, "bandwidth_mbps": 100000, "price_per_mbps_month": "30"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_i64().unwrap();
    let lines_in_paths = || staff.get("/api/v1/network").json()["lines"].clone();
    assert_eq!(lines_in_paths()[0]["latency_ms"], 9.5);

    let path = format!("/api/v1/lines/{id}");
    let r = rival.send("PATCH", &path, &json!({"state": "closed"}));
    assert_eq!(r.status, 403, "another's line: {}", r.body);
    let r = liner.send(
        "PATCH",
        &path,
        &json!({"state": "down", "latency_ms": -1, "bandwidth_mbps": 0}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.error_fields(),
        ["state", "latency_ms", "bandwidth_mbps"],
        "{}",
        r.body
    );
    assert_eq!(liner.send("PATCH", &path, &json!({})).status, 422);
    assert_eq!(
        liner
            .send("PATCH", "/api/v1/lines/999999", &json!({"state": "open"}))
            .status,
        404
    );

    // Under maintenance the line carries no path; reopened, it does,
    // with what was changed, and the rest as it was.
    // A line's identifier, as paths show it, is not its id: nothing by
    // that id (found by Schemathesis following `line_id` to this route).
    let identifier = lines_in_paths()[0]["line_id"].as_str().unwrap().to_owned();
    let r = liner.send(
        "PATCH",
        &format!("/api/v1/lines/{identifier}"),
        &json!({"state": "maintenance"}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = liner.send("PATCH", &path, &json!({"state": "maintenance"}));
    assert_eq!(r.json()["state"], "maintenance", "{}", r.body);
    assert!(lines_in_paths().as_array().unwrap().is_empty());
    let r = liner.send("PATCH", &path, &json!({"state": "open", "latency_ms": 7}));
    assert_eq!(r.status, 200, "{}", r.body);
    let line = &lines_in_paths()[0];
    assert_eq!(
        (
            &line["latency_ms"],
            &line["bandwidth_mbps"],
            &line["price_per_mbps_month"]
        ),
        (&json!(7.0), &json!(100000), &json!("30"))
    );
    let audit = staff.get("/api/v1/audit").json();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "line.update" && e["actor"] == "liner"),
        "{audit}"
    );
}

on_each_backend!(the_last_admin_cannot_be_demoted(
    "the_last_admin_cannot_be_demoted"
));

fn the_last_admin_cannot_be_demoted(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), backend, &[]);
    let staff = admin(&node);
    let demote = |login: &str| {
        staff.send(
            "POST",
            &format!("/api/v1/accounts/{login}/role"),
            &json!({"role": "user"}),
        )
    };
    let r = demote("admin");
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("last admin"), "{}", r.body);
    // With a second admin the first may step down; then the second is the last.
    create_account(&staff, "second", "admin");
    assert_eq!(demote("admin").status, 200);
    let second = node.sign_in("second", PASSWORD);
    let r = second.send(
        "POST",
        "/api/v1/accounts/second/role",
        &json!({"role": "operator"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = second.get("/api/v1/accounts");
    assert_eq!(r.status, 200, "the last admin is still one: {}", r.body);
}

#[test]
fn role_changes_need_a_recent_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let staff = admin(&node);
    create_account(&staff, "watcher", "viewer");
    let promote = |session: &Session| {
        session.send(
            "POST",
            "/api/v1/accounts/watcher/role",
            &json!({"role": "operator"}),
        )
    };
    assert_eq!(promote(&staff).status, 200);
    // Eleven minutes later the same dashboard session may still read, but
    // not hand out roles.
    expire(
        &node,
        "UPDATE sessions SET created_at_ms = created_at_ms - 660000",
    );
    let r = promote(&staff);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("sign-in within the last 10 minutes"),
        "{}",
        r.body
    );
    assert_eq!(staff.get("/api/v1/accounts").status, 200);
    assert_eq!(promote(&admin(&node)).status, 200, "a fresh sign-in may");
}

#[test]
fn an_api_key_never_grants_more_than_its_creator_holds_now() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let staff = admin(&node);
    create_account(&staff, "ops", "operator");
    let ops = node.sign_in("ops", PASSWORD);
    let r = ops.send("POST", "/api/v1/api-keys", &json!({"name": "script"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let whoami = || {
        let r = Request::new("GET", "/api/v1/session")
            .bearer(&key)
            .send(node.http);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["role"].as_str().unwrap().to_owned()
    };
    let staff_only = || {
        Request::new("GET", "/api/v1/accounts")
            .bearer(&key)
            .send(node.http)
            .status
    };
    assert_eq!(whoami(), "operator");
    assert_eq!(staff_only(), 403, "an operator's key is no admin");
    // The creator is demoted: the key follows at once.
    let r = staff.send(
        "POST",
        "/api/v1/accounts/ops/role",
        &json!({"role": "viewer"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(whoami(), "viewer");
    let r = Request::new("POST", "/api/v1/silences")
        .bearer(&key)
        .json(&json!({"matchers": [{"name": "alertname", "op": "=", "value": "host_silent"}], "duration": "1h", "reason": "x"}).to_string())
        .send(node.http);
    assert_eq!(r.status, 403, "a viewer's key cannot silence: {}", r.body);
}

/// The secret in a join string (`token=…`).
fn join_secret(join: &str) -> String {
    join.split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

/// A full flow at trace level, then every log line searched for every
/// secret the flow created or used: none may appear. Key files are 0600
/// and no private key is served.
#[test]
fn no_secret_reaches_a_log_even_at_trace_level() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start_logging(&dir.path().join("node"), Backend::Sqlite, &[], "trace");
    let mut secrets = vec![
        ("admin token", node.admin_token()),
        ("admin password", node.admin_password()),
        ("account password", PASSWORD.to_owned()),
        ("mistyped password", "a mistyped secret password".to_owned()),
    ];
    let staff = admin(&node);
    let r = Request::new("POST", "/api/v1/session")
        .json(&json!({"login": "admin", "password": "a mistyped secret password"}).to_string())
        .send(node.http);
    assert_eq!(r.status, 401, "{}", r.body);
    create_account(&staff, "keeper", "operator");
    let keeper = node.sign_in("keeper", PASSWORD);
    let r = keeper.send("POST", "/api/v1/api-keys", &json!({"name": "script"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let r = Request::new("GET", "/api/v1/session")
        .bearer(&key)
        .send(node.http);
    assert_eq!(r.status, 200, "{}", r.body);
    for session in [&staff, &keeper] {
        let cookie_secret = session.cookie.split_once('=').unwrap().1.to_owned();
        secrets.push(("session cookie", cookie_secret));
        secrets.push(("CSRF token", session.csrf.clone()));
    }
    secrets.push(("API key", key));
    let join = node.join_string(None);
    secrets.push(("enrollment token", join_secret(&join)));
    let child_join = node.admin_ok(&[
        "node",
        "token",
        "create",
        "--role",
        "industry",
        "--industry",
        "I65",
    ]);
    secrets.push(("child node join token", join_secret(&child_join)));

    let mut agent = Agent::join(&dir.path().join("agent"), &join, "200ms");
    agent.env = vec![("SUANLI_LOG".into(), "trace".into())];
    agent.run();
    wait_until(WAIT, "the agent to stream", || {
        node.host().is_some_and(|h| h["last_seen_ms"].is_i64())
    });
    agent.stop();

    let logs = [("aggregator", node.log()), ("agent", agent.log())];
    for (name, log) in &logs {
        assert!(
            log.lines().count() > 20,
            "{name} logged too little to prove anything"
        );
        for (what, secret) in &secrets {
            assert!(secret.len() >= 16, "{what} is too short to search for");
            assert!(
                !log.contains(secret.as_str()),
                "the {name} log holds the {what}"
            );
        }
    }
    for (what, path) in [
        ("node CA key", node.data_dir.join("ca.key")),
        ("server key", node.data_dir.join("server.key")),
        ("admin token", node.data_dir.join("admin.token")),
        ("admin password", node.data_dir.join("admin.password")),
        ("agent key", agent.state_dir.join("agent.key")),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{what} ({}) is {mode:o}", path.display());
    }
    for path in [
        "/ca.key",
        "/server.key",
        "/ui/../ca.key",
        "/ui/%2e%2e/ca.key",
        "/ui/..%2fserver.key",
    ] {
        let (status, body) = node.get(path);
        assert!(
            !body.contains("PRIVATE KEY"),
            "{path} served a private key ({status})"
        );
    }
}

/// The staff screens' API: a generated password is changed before
/// anything else (the session says so), a wrong current one is refused,
/// and the change ends the account's other sessions; a disabled account
/// cannot sign in and its API key stops working, but never the last
/// enabled admin; the audit log finds each step by actor, action, subject
/// and time.
#[test]
fn accounts_are_disabled_passwords_changed_and_the_audit_log_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let staff = admin(&node);
    assert_eq!(
        staff.get("/api/v1/session").json()["must_change_password"],
        true
    );
    // An account staff make without a password gets a generated one.
    let r = staff.send(
        "POST",
        "/api/v1/accounts",
        &json!({"login": "duty", "role": "operator"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let generated = r.json()["password"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["must_change_password"], true);
    let first = node.sign_in("duty", &generated);
    let second = node.sign_in("duty", &generated);
    assert_eq!(
        first.get("/api/v1/session").json()["must_change_password"],
        true
    );
    let change = |session: &Session, current: &str, new: &str| {
        session.send(
            "POST",
            "/api/v1/session/password",
            &json!({"password": current, "new_password": new}),
        )
    };
    let r = change(&first, "not the password", PASSWORD);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("not the current password"), "{}", r.body);
    let r = change(&first, &generated, "short");
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("new_password"), "{}", r.body);
    let r = change(&first, &generated, PASSWORD);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        first.get("/api/v1/session").json()["must_change_password"],
        false
    );
    assert_eq!(
        second.get("/api/v1/session").status,
        401,
        "the other session ended"
    );
    let duty = node.sign_in("duty", PASSWORD);
    let key = duty
        .send("POST", "/api/v1/api-keys", &json!({"name": "巡检"}))
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_key = |path: &str| Request::new("GET", path).bearer(&key).send(node.http);
    assert_eq!(with_key("/api/v1/summary").status, 200);

    // Disabled: no sign-in, no session, no key.
    let r = staff.send("POST", "/api/v1/accounts/duty/disable", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(duty.get("/api/v1/session").status, 401);
    assert_eq!(with_key("/api/v1/summary").status, 401);
    let r = Request::new("POST", "/api/v1/session")
        .json(&json!({"login": "duty", "password": PASSWORD}).to_string())
        .send(node.http);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("disabled"), "{}", r.body);
    // Enabled again, all of it works again.
    let r = staff.send("POST", "/api/v1/accounts/duty/enable", &json!({}));
    assert_eq!(r.json()["disabled"], false, "{}", r.body);
    assert_eq!(with_key("/api/v1/summary").status, 200);
    // The last enabled admin stays.
    let r = staff.send("POST", "/api/v1/accounts/admin/disable", &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("last enabled admin"), "{}", r.body);

    // The audit log, filtered.
    let entries = |query: &str| -> Vec<Value> {
        let r = staff.get(&format!("/api/v1/audit?{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.json()["entries"].as_array().unwrap().clone()
    };
    let actions = |query: &str| -> Vec<String> {
        entries(query)
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        actions("action=account.&subject=duty"),
        [
            "account.enable",
            "account.disable",
            "account.password",
            "account.password_failed",
            "account.create"
        ]
    );
    assert_eq!(
        actions("actor=duty&action=account."),
        ["account.password", "account.password_failed"]
    );
    // Case does not matter, on either database.
    assert_eq!(
        actions("action=ACCOUNT.CREATE&subject=DUTY"),
        ["account.create"]
    );
    assert_eq!(actions("action=login.refused"), ["login.refused"]);
    // Wildcards are literal: `%` matches no action.
    assert!(actions("action=%25").is_empty());
    let created = entries("action=account.create")[0]["at_ms"]
        .as_i64()
        .unwrap();
    assert!(actions(&format!("until={created}&subject=duty")).is_empty());
    assert_eq!(
        actions(&format!("since={created}&action=account.create")),
        ["account.create"]
    );
}

/// A host's charts in one answer: the stored steps on one time axis, every
/// series as long as it, a CPU host's accelerators an empty list, and a
/// range out of bounds refused.
#[test]
fn a_hosts_history_comes_in_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), Backend::Sqlite);
    let mut agent = Agent::join(&dir.path().join("agent"), &node.join_string(None), "200ms");
    agent.run();
    let staff = admin(&node);
    let mut history = Value::Null;
    wait_until(WAIT, "a few stored steps", || {
        history = staff.get("/api/v1/hosts/1/history").json();
        history["t_ms"].as_array().is_some_and(|t| t.len() >= 2)
    });
    let steps = history["t_ms"].as_array().unwrap().len();
    assert_eq!(history["step_ms"], 10_000, "an hour in 10 s steps");
    for series in [
        "cpu_utilization_percent",
        "memory_used_bytes",
        "load_average_1m",
    ] {
        assert_eq!(history[series].as_array().unwrap().len(), steps, "{series}");
    }
    assert!(history["memory_used_bytes"][0].as_f64().unwrap() > 0.0);
    assert_eq!(history["gpus"], json!([]));
    let r = staff.get("/api/v1/hosts/1/history?hours=720");
    assert_eq!(r.json()["step_ms"], 7_200_000, "{}", r.body);
    for (bad, status) in [("0", 422), ("721", 422), ("x", 400)] {
        let r = staff.get(&format!("/api/v1/hosts/1/history?hours={bad}"));
        assert_eq!(r.status, status, "{bad}: {}", r.body);
        assert!(r.body.contains("hours"), "{bad}: {}", r.body);
    }
    assert_eq!(staff.get("/api/v1/hosts/999/history").status, 404);
    agent.stop();
}
