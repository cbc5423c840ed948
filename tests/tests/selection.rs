//! Selection end to end: a real agent reads two GPUs from the stand-in
//! NVML library and streams them over QUIC; `POST /api/v1/selection` finds
//! the free one, loses it as soon as a sample shows it busy, and finds it
//! again when it is idle. The time from the busy sample's collection to
//! the answer without it is printed (`--nocapture`), not asserted.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use suanli_tests::{Agent, Aggregator, Backend, Request, nvml_standin, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_gpu_leaves_free_now_answers_with_the_sample_that_shows_it_busy() {
    let dir = tempfile::tempdir().unwrap();
    let library = nvml_standin(dir.path());
    let busy = dir.path().join("gpu1-utilization");
    std::fs::write(&busy, "0").unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let join = node.join_string(None);
    let mut agent = Agent::join_as(
        &dir.path().join("agent"),
        &join,
        "1s",
        "gpu-machine",
        "gpu-host",
    );
    agent.env = vec![
        ("SUANLI_NVML_LIBRARY".into(), library.display().to_string()),
        (
            "SUANLI_STANDIN_GPU1_UTILIZATION_FILE".into(),
            busy.display().to_string(),
        ),
    ];
    agent.run();
    let token = node.admin_token();
    let select = |demand: &Value| -> Value {
        let r = Request::new("POST", "/api/v1/selection")
            .bearer(&token)
            .json(&demand.to_string())
            .send(node.http);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    // GPU 0 of the stand-in is 87 % busy; GPU 1 (MIG on) is idle.
    let demand = json!({"accelerator": {"model": "H100", "min_memory_gib": 79}});
    wait_until(WAIT, "the free GPU to be selectable", || {
        select(&demand)["candidates"].as_array().unwrap().len() == 1
    });
    let answer = select(&demand);
    let pick = &answer["candidates"][0]["hosts"][0];
    assert_eq!(pick["hostname"], "gpu-host");
    assert_eq!(pick["resources"].as_array().unwrap().len(), 1);
    let two = select(&json!({"accelerator": {"model": "H100", "count": 2}}));
    assert!(two["candidates"].as_array().unwrap().is_empty());
    assert_eq!(
        two["nearest_misses"][0]["failed"][0]["detail"], "1 of 2 matching accelerators free",
        "{two}"
    );
    // The same reason for a reader of Chinese.
    let zh = Request::new("POST", "/api/v1/selection")
        .bearer(&token)
        .header("Accept-Language", "zh-CN")
        .json(&json!({"accelerator": {"model": "H100", "count": 2}}).to_string())
        .send(node.http)
        .json();
    assert_eq!(
        zh["nearest_misses"][0]["failed"][0]["detail"], "匹配的加速卡中空闲 1 块（需要 2 块）",
        "{zh}"
    );
    let installed =
        select(&json!({"accelerator": {"model": "H100", "count": 2}, "availability": "installed"}));
    assert_eq!(installed["candidates"].as_array().unwrap().len(), 1);
    // The overview counts the same: two H100s, one free, by model and type.
    let summary = Request::new("GET", "/api/v1/summary")
        .bearer(&token)
        .send(node.http)
        .json();
    let model = &summary["by_accelerator_model"][0];
    assert_eq!(model["key"], "NVIDIA H100 80GB HBM3", "{summary}");
    assert_eq!(
        (&model["total"], &model["online"], &model["free_now"]),
        (&json!(2), &json!(2), &json!(1))
    );
    assert_eq!(model["mean_utilization_percent"], 43.5, "{summary}");
    let types = summary["by_resource_type"].as_array().unwrap();
    let count = |code: &str| {
        types
            .iter()
            .find(|t| t["key"] == code)
            .map(|t| t["total"].clone())
    };
    assert_eq!(
        (count("A"), count("C")),
        (Some(json!(2)), Some(json!(1))),
        "{summary}"
    );

    for round in 0..3 {
        // Busy: gone from free-now answers once a sample says so.
        std::fs::write(&busy, "100").unwrap();
        let flipped = now_ms();
        let started = Instant::now();
        wait_until(WAIT, "the busy GPU to drop out", || {
            select(&demand)["candidates"].as_array().unwrap().is_empty()
        });
        let gone = now_ms();
        let host = Request::new("GET", "/api/v1/hosts/gpu-host")
            .bearer(&token)
            .send(node.http)
            .json();
        let collected = host["vitals"]["collected_at_ms"].as_u64().unwrap();
        eprintln!(
            "round {round}: busy written → absent from answers {} ms; busy sample collected → absent ≤ {} ms",
            gone - flipped,
            gone.saturating_sub(collected.max(flipped))
        );
        assert!(started.elapsed() < WAIT);
        // Idle again: back.
        std::fs::write(&busy, "0").unwrap();
        wait_until(WAIT, "the GPU to come back", || {
            select(&demand)["candidates"].as_array().unwrap().len() == 1
        });
    }
    // The command line asks the same question.
    let out = std::process::Command::new(suanli_tests::binary("suanli-aggregator"))
        .args(["select", "--server", &node.http.to_string(), "--data-dir"])
        .arg(&node.data_dir)
        .arg(demand.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("gpu-host") && text.contains("#1 score"),
        "{text}"
    );
    let out = std::process::Command::new(suanli_tests::binary("suanli-aggregator"))
        .args(["select", "--server", &node.http.to_string(), "--data-dir"])
        .arg(&node.data_dir)
        .arg(r#"{"accelerator": {"model": "B200"}}"#)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nothing matched") && text.contains("accelerators"),
        "{text}"
    );
    // Every query was recorded as scheduling business.
    let recorded = Request::new("GET", "/api/v1/selections?limit=1000")
        .bearer(&token)
        .send(node.http)
        .json();
    assert!(recorded["selections"].as_array().unwrap().len() >= 5);
    agent.stop();
}

#[test]
fn malformed_demands_name_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, &[]);
    let r = Request::new("POST", "/api/v1/selection")
        .bearer(&node.admin_token())
        .json(r#"{"accelerator": {"count": 0, "model": 7}, "region": "Beijing", "max_latency_ms": -1, "expression": "gpus.exists(g,", "sort": "fast"}"#)
        .send(node.http);
    assert_eq!(r.status, 422, "{}", r.body);
    let fields = r.error_fields();
    for field in [
        "accelerator.count",
        "accelerator.model",
        "region",
        "max_latency_ms",
        "expression",
        "sort",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
}
