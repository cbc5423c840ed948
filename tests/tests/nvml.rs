//! The agent against a stand-in `libnvidia-ml.so` with known answers.
//!
//! The stand-in (`tests/fixtures/nvml-standin/nvml_standin.c`) is compiled
//! here with the system C compiler; it exports the NVML entry points the
//! agent calls, returns fixed values, and "not supported" for some of them.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use suanli_tests::{agent_inventory, nvml_standin as build_standin};

fn inventory(library: &std::path::Path, env: &[(&str, &str)]) -> Value {
    let library = library.to_str().expect("UTF-8 path");
    let env: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("SUANLI_NVML_LIBRARY", library)])
        .collect();
    agent_inventory(&[], &env)
}

#[test]
fn reports_exactly_what_nvml_answers() {
    let dir = tempfile::tempdir().unwrap();
    let report = inventory(&build_standin(dir.path()), &[]);

    assert_eq!(
        report["inventory"]["gpuSystem"],
        json!({"driverVersion": "550.54.15", "cudaDriverVersion": "12.4", "nvmlVersion": "12.550.54.15"})
    );
    // proto3 JSON omits zero-valued plain fields (index 0) and writes 64-bit integers as strings.
    assert_eq!(
        report["inventory"]["gpus"][0],
        json!({
            "uuid": "GPU-00000000-1111-2222-3333-444444444444",
            "name": "NVIDIA H100 80GB HBM3",
            "serial": "1650923012345",
            "pciBusId": "00000000:18:00.0",
            "architecture": "Hopper",
            "computeCapability": "9.0",
            "vbiosVersion": "96.00.74.00.01",
            "memoryTotalBytes": "85520809984",
            "powerLimitMilliwatts": 700000,
            "slowdownTemperatureCelsius": 89,
            "shutdownTemperatureCelsius": 92,
            "maxSmClockMhz": 1980,
            "maxMemoryClockMhz": 2619,
            "maxPcieGeneration": 5,
            "maxPcieWidth": 16,
            "eccEnabled": true,
            "migEnabled": false,
            "migPending": false,
            "vendor": "ACCELERATOR_VENDOR_NVIDIA",
            "kind": "ACCELERATOR_KIND_GPU",
            "stableIdSource": "STABLE_ID_SOURCE_UUID"
        })
    );
    assert_eq!(report["inventory"]["gpus"][1]["migEnabled"], json!(true));
    assert_eq!(
        report["sample"]["gpus"][0],
        json!({
            "uuid": "GPU-00000000-1111-2222-3333-444444444444",
            "utilizationPercent": 87,
            "memoryUtilizationPercent": 41,
            "memoryTotalBytes": "85520809984",
            "memoryUsedBytes": "42949672960",
            "memoryFreeBytes": "42007789568",
            "temperatureCelsius": 64,
            "powerMilliwatts": 612345,
            "energyMillijoules": "9876543210",
            "smClockMhz": 1755,
            "memoryClockMhz": 2619,
            "throttleReasonsMask": "36",
            "throttleReasons": ["SW_POWER_CAP", "SW_THERMAL_SLOWDOWN"],
            "eccCorrectedVolatile": "1",
            "eccUncorrectedVolatile": "11",
            "eccCorrectedAggregate": "2",
            "eccUncorrectedAggregate": "12",
            "retiredPagesSingleBit": 2,
            "retiredPagesDoubleBit": 1,
            "retiredPagesPending": false,
            "remappedRowsCorrectable": 3,
            "remappedRowsUncorrectable": 1,
            "remappedRowsPending": false,
            "remappedRowsFailure": false,
            "pcieGeneration": 5,
            "pcieWidth": 16,
            "pcieReplayCount": 7,
            "processes": [{"pid": 4194399, "usedMemoryBytes": "42949672960"}],
            "performanceState": 0
        })
    );
    // GPU 1 does not support temperature, power or energy: absent, not 0.
    let gpu1 = report["sample"]["gpus"][1].as_object().unwrap();
    for absent in [
        "temperatureCelsius",
        "powerMilliwatts",
        "energyMillijoules",
        "pcieRxBytesPerSecond",
        "fanSpeedPercent",
    ] {
        assert!(
            !gpu1.contains_key(absent),
            "{absent} should be absent: {gpu1:?}"
        );
    }
    assert_eq!(
        gpu1["utilizationPercent"],
        json!(0),
        "a real 0 is still reported"
    );
    assert_eq!(gpu1["throttleReasons"], json!(["GPU_IDLE"]));

    // The XID event the stand-in queues arrives once, attributed to GPU 0.
    let xids: Vec<&Value> = report["sample"]["xidEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "nvml")
        .collect();
    assert_eq!(xids.len(), 1, "{xids:?}");
    assert_eq!(xids[0]["xid"], json!("79"));
    assert_eq!(xids[0]["pciBusId"], json!("00000000:18:00.0"));

    // Unsupported calls are not problems.
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems.iter().all(|p| p["collector"] != "nvidia"),
        "{problems:?}"
    );
}

#[test]
fn init_failure_means_zero_gpus_and_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let report = inventory(
        &build_standin(dir.path()),
        &[("SUANLI_STANDIN_INIT_FAIL", "1")],
    );
    assert!(report["inventory"].get("gpus").is_none());
    let nvidia: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["collector"] == "nvidia")
        .collect();
    assert_eq!(nvidia.len(), 1);
    assert_eq!(nvidia[0]["kind"], "KIND_UNSUPPORTED");
    assert!(
        nvidia[0]["message"]
            .as_str()
            .unwrap()
            .contains("driver not loaded"),
        "{nvidia:?}"
    );
}

#[test]
fn a_missing_library_is_a_cpu_host_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let report = inventory(&dir.path().join("libnvidia-ml.so.1"), &[]);
    assert!(report["inventory"].get("gpus").is_none());
    let msg = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["collector"] == "nvidia")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("NVML library not found"), "{msg}");
}
