//! Accelerators beyond NVIDIA and the domestic CPU platforms, through
//! stand-in vendor libraries (`tests/fixtures/{dcmi,rsmi,nvml}-standin`,
//! compiled here) and fixture host trees (`tests/fixtures/hosts`): the agent
//! reports exactly what each library answers, in Suanli's units; an
//! unsupported call is absent, a failing, hung or unsafe library is a
//! problem and never a crash; and the fixture servers are found by
//! selection end to end.

#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command, time::Duration};

use serde_json::{Value, json};
use suanli_tests::{
    Agent, Aggregator, Backend, FAST_ALERTS, Request, binary, component, fixture_host,
    nvml_standin, standin, wait_until,
};

const WAIT: Duration = Duration::from_secs(60);

fn dcmi(dir: &Path, defines: &[&str]) -> std::path::PathBuf {
    standin(dir, "dcmi-standin/dcmi_standin.c", "libdcmi.so", defines)
}

fn rsmi(dir: &Path, defines: &[&str]) -> std::path::PathBuf {
    standin(
        dir,
        "rsmi-standin/rsmi_standin.c",
        "librocm_smi64.so",
        defines,
    )
}

use suanli_tests::agent_inventory as inventory;

fn problems_of<'a>(report: &'a Value, collector: &str) -> Vec<&'a Value> {
    report["problems"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["collector"] == collector).collect())
        .unwrap_or_default()
}

fn absent(object: &Value, fields: &[&str]) {
    let object = object.as_object().unwrap();
    for field in fields {
        assert!(
            !object.contains_key(*field),
            "{field} should be absent: {object:?}"
        );
    }
}

#[test]
fn ascend_reports_exactly_what_dcmi_answers() {
    let dir = tempfile::tempdir().unwrap();
    let library = dcmi(dir.path(), &[]);
    let flag = format!("huawei={}", library.display());
    let report = inventory(&["--accel-library", &flag], &[]);

    assert_eq!(
        report["inventory"]["gpus"][0],
        json!({
            "uuid": "ASCEND-910B0000-0A5A5A5A-12345678-9ABCDEF0-00C0FFEE",
            "name": "Ascend 910B3",
            "pciBusId": "00000000:01:00.0",
            "architecture": "V1",
            "memoryTotalBytes": "68719476736",
            "maxSmClockMhz": 1800,
            "eccEnabled": true,
            "vendor": "ACCELERATOR_VENDOR_HUAWEI",
            "kind": "ACCELERATOR_KIND_NPU",
            "model": "910B3",
            "stableIdSource": "STABLE_ID_SOURCE_DIE_ID"
        })
    );
    let sample = &report["sample"]["gpus"][0];
    // 0.1 W → mW, MB → bytes, at the boundary.
    for (field, value) in [
        ("utilizationPercent", json!(37)),
        ("memoryUtilizationPercent", json!(50)),
        ("memoryTotalBytes", json!("68719476736")),
        ("memoryUsedBytes", json!("3221225472")),
        ("memoryFreeBytes", json!("65498251264")),
        ("temperatureCelsius", json!(45)),
        ("powerMilliwatts", json!(312500)),
        ("smClockMhz", json!(1650)),
        ("eccCorrectedVolatile", json!("2")),
        ("eccUncorrectedAggregate", json!("1")),
        ("retiredPagesSingleBit", json!(1)),
        ("health", json!("DEVICE_HEALTH_OK")),
        ("healthCode", json!("0")),
        (
            "processes",
            json!([{"pid": 4194399, "usedMemoryBytes": "2147483648"}]),
        ),
    ] {
        assert_eq!(sample[field], value, "{field}");
    }
    assert_eq!(sample["links"].as_array().unwrap().len(), 7, "HCCS 1–7");
    assert_eq!(
        sample["links"][2],
        json!({"kind": "KIND_HCCS", "index": 3, "txTotal": "1003", "rxTotal": "2003", "crcErrorsTotal": "0", "retriesTotal": "4"})
    );

    // NPU 1 has no HBM, temperature or power: absent, its memory from the DDR call.
    let npu1 = &report["sample"]["gpus"][1];
    absent(
        npu1,
        &[
            "temperatureCelsius",
            "powerMilliwatts",
            "eccCorrectedVolatile",
        ],
    );
    assert_eq!(npu1["memoryTotalBytes"], json!("34359738368"));
    assert_eq!(npu1["memoryUsedBytes"], json!("17179869184"));
    assert_eq!(npu1["health"], json!("DEVICE_HEALTH_WARNING"));
    assert_eq!(npu1["errorCodes"], json!(["2351931401"]));
    // Its raised error code is one event, on the right device.
    assert_eq!(
        report["sample"]["deviceEvents"],
        json!([{
            "vendor": "ACCELERATOR_VENDOR_HUAWEI",
            "deviceIndex": 1,
            "pciBusId": "00000000:02:00.0",
            "code": "2351931401",
            "observedAtUnixMs": report["sample"]["deviceEvents"][0]["observedAtUnixMs"].clone()
        }])
    );

    let lib = &report["inventory"]["acceleratorLibraries"][0];
    assert_eq!(lib["path"], json!(library.display().to_string()));
    assert_eq!(lib["version"], json!("24.1.rc3"));
    assert!(lib.get("missingSymbols").is_none(), "{lib}");
    assert!(problems_of(&report, "ascend").is_empty(), "{report}");
}

/// Every vendor's stand-in writes the newest public layout of each struct
/// whole, through memset and memcpy (built with -fno-builtin so that the
/// sanitizer sees each write), into the agent built with AddressSanitizer
/// (`.ci/sanitizer.sh`): nothing lands outside the agent's buffers. A
/// struct declared smaller than its newest layout, as DCMI's ECC struct
/// was (28 bytes of 36), is a stack-buffer-overflow here; a driver that
/// writes 64 bytes more than any public header lands in the headroom.
#[test]
#[ignore = "needs an agent built with AddressSanitizer: run .ci/test"]
fn vendor_libraries_writing_their_newest_layouts_stay_inside_the_agents_buffers() {
    let Some(agent) = std::env::var_os("SUANLI_ASAN_AGENT")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file())
    else {
        component::missing(
            "an agent built with AddressSanitizer",
            "SUANLI_ASAN_AGENT names no file",
        );
    };
    component::found("AddressSanitizer");
    let dir = tempfile::tempdir().unwrap();
    let dcmi = ("dcmi-standin/dcmi_standin.c", "libdcmi.so");
    let rsmi = ("rsmi-standin/rsmi_standin.c", "librocm_smi64.so");
    let cndev = ("cndev-standin/cndev_standin.c", "libcndev.so");
    let mxsml = ("mxsml-standin/mxsml_standin.c", "libmxsml.so");
    for (i, (vendor, (source, library), define)) in [
        ("huawei", dcmi, None),
        ("huawei", dcmi, Some("-DGROWN")),
        ("hygon", rsmi, None),
        ("amd", rsmi, Some("-DAMD")),
        ("cambricon", cndev, None),
        ("metax", mxsml, None),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = dir.path().join(i.to_string());
        std::fs::create_dir(&dir).unwrap();
        let flags: Vec<&str> = ["-fno-builtin"].into_iter().chain(define).collect();
        let path = standin(&dir, source, library, &flags);
        let out = Command::new(&agent)
            .args([
                "inventory",
                "--json",
                "--window-ms",
                "20",
                "--accel-library",
            ])
            .arg(format!("{vendor}={}", path.display()))
            .env("ASAN_OPTIONS", "detect_leaks=0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("AddressSanitizer"),
            "{vendor} {define:?}: {stderr}"
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            report["inventory"]["gpus"].as_array().map(Vec::len),
            Some(2),
            "{vendor} {define:?}: {report}"
        );
    }
}

#[test]
fn an_older_dcmi_falls_back_and_says_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let library = dcmi(dir.path(), &["-DOLD"]);
    let flag = format!("huawei={}", library.display());
    let report = inventory(&["--accel-library", &flag], &[]);
    // The older chip-info call still names the chip.
    assert_eq!(report["inventory"]["gpus"][0]["name"], "Ascend 910B3");
    let sample = &report["sample"]["gpus"][0];
    absent(sample, &["links", "errorCodes"]);
    assert_eq!(sample["powerMilliwatts"], json!(312500));
    let missing = &report["inventory"]["acceleratorLibraries"][0]["missingSymbols"];
    assert_eq!(
        missing,
        &json!([
            "dcmi_get_device_chip_info_v2",
            "dcmi_get_device_errorcode_v2",
            "dcmi_get_device_info"
        ])
    );
    // A missing entry point is "unsupported", not a fault.
    assert!(problems_of(&report, "ascend").is_empty(), "{report}");
    // And `inventory` says so to a person.
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--window-ms", "20", "--accel-library", &flag])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("library huawei") && text.contains("missing dcmi_get_device_chip_info_v2"),
        "{text}"
    );
    assert!(text.contains("[0] huawei npu Ascend 910B3"), "{text}");
}

#[test]
fn a_failing_hung_or_unsafe_library_is_a_problem_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let library = dcmi(dir.path(), &[]);
    let flag = format!("huawei={}", library.display());

    let no_driver = inventory(
        &["--accel-library", &flag],
        &[("SUANLI_STANDIN_INIT_FAIL", "1")],
    );
    assert!(no_driver["inventory"].get("gpus").is_none());
    let p = problems_of(&no_driver, "ascend");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["kind"], "KIND_FAILED");
    assert!(
        p[0]["message"]
            .as_str()
            .unwrap()
            .contains("dcmi_init failed (-8005)"),
        "{p:?}"
    );

    // A wedged driver call costs the Ascend readings, not the host's.
    let hung = inventory(
        &["--accel-library", &flag, "--timeout-ms", "300"],
        &[("SUANLI_STANDIN_HANG", "1")],
    );
    let p = problems_of(&hung, "ascend");
    assert_eq!(p[0]["kind"], "KIND_TIMED_OUT", "{p:?}");
    assert!(hung["inventory"]["cpu"]["logicalCpus"].as_u64().unwrap() > 0);

    // A library others may rewrite is never loaded by an agent running as root.
    std::fs::set_permissions(
        &library,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let unsafe_lib = inventory(&["--accel-library", &flag], &[]);
    let p = problems_of(&unsafe_lib, "ascend");
    assert!(
        p[0]["message"]
            .as_str()
            .unwrap()
            .contains("writable by group or others"),
        "{p:?}"
    );
    assert!(
        unsafe_lib["inventory"]
            .get("acceleratorLibraries")
            .is_none()
    );

    // A vendor name the agent does not know is refused up front.
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--accel-library", "nvidai=/x.so"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no reader for vendor \"nvidai\""), "{err}");
    // Nor is a vendor this agent cannot read yet, rather than ignored.
    let out = Command::new(binary("suanli-agent"))
        .args(["inventory", "--accel-library", "kunlunxin=/x.so"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no reader for vendor \"kunlunxin\""), "{err}");
}

#[test]
fn hygon_and_amd_read_through_rocm_smi() {
    let dir = tempfile::tempdir().unwrap();
    let hygon = rsmi(dir.path(), &[]);
    let flag = format!("hygon={}", hygon.display());
    let report = inventory(&["--accel-library", &flag], &[]);
    assert_eq!(
        report["inventory"]["gpus"][0],
        json!({
            "uuid": "HYGON-1D94000000000001",
            "name": "Hygon K100_AI",
            "serial": "TRCW280005090000",
            "pciBusId": "00000000:1B:00.0",
            "memoryTotalBytes": "68702699520",
            "powerLimitMilliwatts": 300000,
            "vendor": "ACCELERATOR_VENDOR_HYGON",
            "kind": "ACCELERATOR_KIND_DCU",
            "model": "K100_AI",
            "stableIdSource": "STABLE_ID_SOURCE_UUID"
        })
    );
    // µW → mW, m°C → °C.
    let s0 = &report["sample"]["gpus"][0];
    assert_eq!(s0["powerMilliwatts"], json!(77000));
    assert_eq!(s0["temperatureCelsius"], json!(35));
    assert_eq!(s0["utilizationPercent"], json!(63));
    assert_eq!(s0["eccCorrectedVolatile"], json!("3"));
    // Device 1 has no name (named from its device ID), temperature or power.
    assert_eq!(report["inventory"]["gpus"][1]["name"], "Hygon K100_AI");
    absent(
        &report["sample"]["gpus"][1],
        &["temperatureCelsius", "powerMilliwatts"],
    );
    assert_eq!(
        report["inventory"]["acceleratorLibraries"][0]["version"],
        "6.3.10"
    );
    assert!(problems_of(&report, "hygon").is_empty(), "{report}");

    let amd = rsmi(dir.path(), &["-DAMD"]);
    let flag = format!("amd={}", amd.display());
    let report = inventory(&["--accel-library", &flag], &[]);
    let gpu = &report["inventory"]["gpus"][0];
    assert_eq!(gpu["name"], "AMD Instinct MI210");
    assert_eq!(gpu["uuid"], "AMD-1D94000000000001");
    assert_eq!(gpu["kind"], "ACCELERATOR_KIND_GPU");
    assert!(problems_of(&report, "amd").is_empty(), "{report}");
}

#[test]
fn cambricon_reads_through_cndev() {
    let dir = tempfile::tempdir().unwrap();
    let cndev = standin(
        dir.path(),
        "cndev-standin/cndev_standin.c",
        "libcndev.so",
        &[],
    );
    let flag = format!("cambricon={}", cndev.display());
    let report = inventory(&["--accel-library", &flag], &[]);
    assert_eq!(
        report["inventory"]["gpus"][0],
        json!({
            "uuid": "MLU-00000000-1111-2222-3333-44445555",
            "name": "Cambricon MLU370-X8",
            "serial": "3a1b2c0000",
            "pciBusId": "00000000:1A:00.0",
            "memoryTotalBytes": "51539607552",
            "powerLimitMilliwatts": 250000,
            "maxSmClockMhz": 1300,
            "vendor": "ACCELERATOR_VENDOR_CAMBRICON",
            "kind": "ACCELERATOR_KIND_MLU",
            "model": "MLU370-X8",
            "stableIdSource": "STABLE_ID_SOURCE_UUID"
        })
    );
    // W → mW, MiB → bytes.
    let s0 = &report["sample"]["gpus"][0];
    for (field, value) in [
        ("utilizationPercent", json!(71)),
        ("memoryUsedBytes", json!("1073741824")),
        ("temperatureCelsius", json!(52)),
        ("powerMilliwatts", json!(98000)),
        ("smClockMhz", json!(1300)),
        ("eccCorrectedVolatile", json!("4")),
        ("health", json!("DEVICE_HEALTH_OK")),
        ("healthCode", json!("4")),
    ] {
        assert_eq!(s0[field], value, "{field}");
    }
    absent(
        &report["sample"]["gpus"][1],
        &[
            "temperatureCelsius",
            "powerMilliwatts",
            "eccCorrectedVolatile",
        ],
    );
    assert_eq!(
        report["inventory"]["acceleratorLibraries"][0]["version"],
        "5.10.22"
    );
    assert!(problems_of(&report, "cambricon").is_empty(), "{report}");

    let no_driver = inventory(
        &["--accel-library", &flag],
        &[("SUANLI_STANDIN_INIT_FAIL", "1")],
    );
    let p = problems_of(&no_driver, "cambricon");
    assert!(
        p[0]["message"]
            .as_str()
            .unwrap()
            .contains("cndevInit failed (1)"),
        "{p:?}"
    );
}

#[test]
fn metax_reads_through_mxsml() {
    let dir = tempfile::tempdir().unwrap();
    let mxsml = standin(
        dir.path(),
        "mxsml-standin/mxsml_standin.c",
        "libmxsml.so",
        &[],
    );
    let flag = format!("metax={}", mxsml.display());
    let report = inventory(&["--accel-library", &flag], &[]);
    assert_eq!(
        report["inventory"]["gpus"][0],
        json!({
            "uuid": "GPU-4d455441-5800-0000-0000-000000000000",
            "name": "MetaX MXC500",
            "pciBusId": "00000000:0F:00.0",
            "memoryTotalBytes": "68719476736",
            "vendor": "ACCELERATOR_VENDOR_METAX",
            "kind": "ACCELERATOR_KIND_GPU",
            "model": "MXC500",
            "stableIdSource": "STABLE_ID_SOURCE_UUID"
        })
    );
    // °C×100 → °C, KiB → bytes, rails' mW summed.
    let s0 = &report["sample"]["gpus"][0];
    for (field, value) in [
        ("utilizationPercent", json!(55)),
        ("memoryUsedBytes", json!("536870912")),
        ("temperatureCelsius", json!(42)),
        ("powerMilliwatts", json!(195500)),
        ("smClockMhz", json!(1600)),
    ] {
        assert_eq!(s0[field], value, "{field}");
    }
    absent(
        &report["sample"]["gpus"][1],
        &["temperatureCelsius", "powerMilliwatts"],
    );
    assert!(problems_of(&report, "metax").is_empty(), "{report}");
}

#[test]
fn iluvatar_reads_through_nvml_names_and_reports_milliwatts() {
    let dir = tempfile::tempdir().unwrap();
    let ixml = standin(
        dir.path(),
        "nvml-standin/nvml_standin.c",
        "libixml.so",
        &["-DIXML"],
    );
    let flag = format!("iluvatar={}", ixml.display());
    // No NVIDIA library here: only Iluvatar's.
    let missing_nvml = dir.path().join("libnvidia-ml.so.1");
    let report = inventory(
        &["--accel-library", &flag],
        &[("SUANLI_NVML_LIBRARY", missing_nvml.to_str().unwrap())],
    );
    let gpu = &report["inventory"]["gpus"][0];
    assert_eq!(gpu["name"], "Iluvatar BI-V150");
    assert_eq!(gpu["vendor"], "ACCELERATOR_VENDOR_ILUVATAR");
    // The stand-in answers 150, in watts, as ixml does.
    assert_eq!(
        report["sample"]["gpus"][0]["powerMilliwatts"],
        json!(150000)
    );
    assert_eq!(
        report["inventory"]["acceleratorLibraries"][0]["path"],
        json!(ixml.display().to_string())
    );
    // NVIDIA's own driver info is not Iluvatar's to fill.
    assert!(
        report["inventory"]["gpuSystem"]
            .as_object()
            .is_none_or(|o| o.is_empty())
    );
    assert!(problems_of(&report, "iluvatar").is_empty(), "{report}");
}

#[test]
fn an_nvidia_host_loads_no_other_vendor() {
    let dir = tempfile::tempdir().unwrap();
    let report = inventory(
        &[],
        &[(
            "SUANLI_NVML_LIBRARY",
            nvml_standin(dir.path()).to_str().unwrap(),
        )],
    );
    assert_eq!(report["inventory"]["gpus"].as_array().unwrap().len(), 2);
    assert!(report["inventory"].get("acceleratorLibraries").is_none());
    let collectors: std::collections::BTreeSet<&str> = report["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["collector"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default();
    for vendor in ["ascend", "hygon", "amd", "iluvatar", "cambricon"] {
        assert!(!collectors.contains(vendor), "{collectors:?}");
    }
}

#[test]
fn devices_without_a_reader_are_said_not_hidden() {
    let root = tempfile::tempdir().unwrap();
    let dev = root.path().join("sys/bus/pci/devices/0000:01:00.0");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("vendor"), "0x1ed5\n").unwrap();
    std::fs::write(dev.join("class"), "0x030000\n").unwrap();
    let report = inventory(&["--host-root", root.path().to_str().unwrap()], &[]);
    let p = problems_of(&report, "moore_threads");
    assert_eq!(p.len(), 1, "{report}");
    assert_eq!(p[0]["kind"], "KIND_UNSUPPORTED");
    assert_eq!(
        p[0]["message"],
        "1 moore_threads devices on the PCI bus; this agent has no reader for them yet"
    );
}

/// `inventory` on each fixture host prints its CPU and accelerators exactly.
#[test]
fn fixture_hosts_are_read_as_the_platforms_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let dcmi_lib = dcmi(dir.path(), &[]);
    let rsmi_lib = rsmi(dir.path(), &[]);
    let eight = [("SUANLI_STANDIN_DEVICES", "8")];
    for (host, library, model, arch, count, accel) in [
        (
            "kunpeng-ascend",
            Some(("SUANLI_HUAWEI_LIBRARY", &dcmi_lib)),
            "HiSilicon Kunpeng-920",
            "aarch64",
            8,
            Some(("Ascend 910B3", "00000000:C2:00.0")),
        ),
        (
            "hygon-dcu",
            Some(("SUANLI_HYGON_LIBRARY", &rsmi_lib)),
            "Hygon C86 7285 32-core Processor",
            "x86_64",
            8,
            Some(("Hygon K100_AI", "00000000:BE:00.0")),
        ),
        ("phytium", None, "Phytium,S2500/64", "aarch64", 0, None),
        ("loongson", None, "Loongson-3C5000", "loongarch64", 0, None),
    ] {
        let root = fixture_host(host);
        let mut env: Vec<(&str, &str)> = eight.to_vec();
        let path;
        if let Some((key, lib)) = library {
            path = lib.display().to_string();
            env.push((key, &path));
        }
        let report = inventory(&["--host-root", root.to_str().unwrap()], &env);
        let inv = &report["inventory"];
        assert_eq!(inv["cpu"]["modelName"], model, "{host}");
        assert_eq!(inv["os"]["architecture"], arch, "{host}");
        assert_eq!(inv["cpu"]["logicalCpus"], 8, "{host}");
        let gpus = inv["gpus"].as_array().cloned().unwrap_or_default();
        assert_eq!(gpus.len(), count, "{host}");
        if let Some((name, last_pci)) = accel {
            assert!(gpus.iter().all(|g| g["name"] == name), "{host}: {gpus:?}");
            assert_eq!(gpus[7]["pciBusId"], last_pci, "{host}");
            assert_eq!(report["sample"]["gpus"].as_array().unwrap().len(), 8);
        } else {
            assert!(inv.get("acceleratorLibraries").is_none(), "{host}");
        }
        let failed: Vec<&Value> = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] != "KIND_UNSUPPORTED")
            .collect();
        assert!(failed.is_empty(), "{host}: {failed:?}");
    }
}

/// The Kunpeng + 8 × 910B server and the Hygon + 8 × K100 server stream to
/// a node; selection finds them by model, family, vendor and kind.
#[test]
fn selection_finds_domestic_accelerators_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let dcmi_lib = dcmi(dir.path(), &[]);
    let rsmi_lib = rsmi(dir.path(), &[]);
    let health = dir.path().join("npu0-health");
    std::fs::write(&health, "0").unwrap();
    let node = Aggregator::start(&dir.path().join("node"), Backend::Sqlite, FAST_ALERTS);
    let join = node.join_string_for(None, 2);
    let mut agents = Vec::new();
    for (host, key, lib) in [
        ("kunpeng-ascend", "SUANLI_HUAWEI_LIBRARY", &dcmi_lib),
        ("hygon-dcu", "SUANLI_HYGON_LIBRARY", &rsmi_lib),
    ] {
        let root = fixture_host(host).display().to_string();
        let mut agent = Agent::join_with_root(&dir.path().join(host), &join, "1s", &root);
        agent.env = vec![
            (key.into(), lib.display().to_string()),
            ("SUANLI_STANDIN_DEVICES".into(), "8".into()),
            (
                "SUANLI_STANDIN_HEALTH_FILE".into(),
                health.display().to_string(),
            ),
            ("SUANLI_HOST_ROOT".into(), root),
        ];
        agent.run();
        agents.push(agent);
    }
    let token = node.admin_token();
    let select = |demand: Value| -> Value {
        let r = Request::new("POST", "/api/v1/selection")
            .bearer(&token)
            .json(&demand.to_string())
            .send(node.http);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let hosts = |answer: &Value| -> Vec<String> {
        answer["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["hosts"][0]["hostname"].as_str().unwrap().to_owned())
            .collect()
    };
    let eight_910b =
        json!({"accelerator": {"model": "910B", "count": 8}, "availability": "installed"});
    wait_until(WAIT, "both servers' accelerators at the node", || {
        !hosts(&select(eight_910b.clone())).is_empty()
            && !hosts(&select(json!({"accelerator": {"model": "K100"}}))).is_empty()
    });
    let answer = select(eight_910b);
    assert_eq!(hosts(&answer), ["atlas800-01"]);
    assert_eq!(
        answer["candidates"][0]["hosts"][0]["resources"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        hosts(&select(
            json!({"accelerator": {"model": "K100", "count": 8}, "availability": "installed"})
        )),
        ["hygon-k100-01"]
    );
    assert_eq!(
        hosts(&select(
            json!({"accelerator": {"vendor": "昇腾"}, "availability": "installed"})
        )),
        ["atlas800-01"]
    );
    assert_eq!(
        hosts(&select(
            json!({"accelerator": {"kind": "DCU"}, "availability": "installed"})
        )),
        ["hygon-k100-01"]
    );
    assert!(
        hosts(&select(
            json!({"accelerator": {"vendor": "nvidia"}, "availability": "installed"})
        ))
        .is_empty()
    );
    // The CPU platform is a constraint of its own.
    assert_eq!(
        hosts(&select(
            json!({"architecture": "arm64", "availability": "installed"})
        )),
        ["atlas800-01"]
    );
    let wrong = select(json!({"architecture": "loongarch64", "availability": "installed"}));
    assert!(hosts(&wrong).is_empty());
    assert!(
        wrong["nearest_misses"].to_string().contains("ARM host"),
        "{wrong}"
    );
    // Expressions see each accelerator's vendor and kind.
    assert_eq!(
        hosts(&select(json!({
            "resource_type": "A",
            "expression": "gpus.all(g, g.vendor == 'hygon' && g.kind == 'dcu')",
            "availability": "installed"
        }))),
        ["hygon-k100-01"]
    );
    // An architecture no host has is a clear error, not an empty answer.
    let bad = Request::new("POST", "/api/v1/selection")
        .bearer(&token)
        .json(&json!({"architecture": "sparc64"}).to_string())
        .send(node.http);
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains("\"field\":\"architecture\""),
        "{}",
        bad.body
    );
    // A kind no vendor uses is a clear error, not an empty answer.
    let bad = Request::new("POST", "/api/v1/selection")
        .bearer(&token)
        .json(&json!({"accelerator": {"kind": "tpu"}}).to_string())
        .send(node.http);
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("accelerator.kind"), "{}", bad.body);

    // NPU 1 reports a minor alarm with a raised code: an alert, still selectable.
    let alerts = || {
        Request::new("GET", "/api/v1/alerts")
            .bearer(&token)
            .send(node.http)
            .json()["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "accelerator_health")
            .map(|a| {
                (
                    a["severity"].as_str().unwrap().to_owned(),
                    a["summary"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    wait_until(WAIT, "the NPU's own warning as an alert", || {
        !alerts().is_empty()
    });
    assert_eq!(
        alerts(),
        [(
            "warning".to_owned(),
            "huawei accelerator 1 of atlas800-01 reports itself warning (code 1), raising 0x8C2FA009".to_owned()
        )]
    );
    // NPU 0 turns critical by DCMI's own verdict: out of selection, and back
    // when the verdict clears.
    std::fs::write(&health, "3").unwrap();
    let eight = || {
        select(json!({"accelerator": {"model": "910B", "count": 8}, "availability": "installed"}))
    };
    wait_until(WAIT, "the critical NPU out of selection", || {
        hosts(&eight()).is_empty()
    });
    let miss = eight()["nearest_misses"].to_string();
    assert!(miss.contains("reports it critical (code 3)"), "{miss}");
    std::fs::write(&health, "0").unwrap();
    wait_until(WAIT, "the NPU selectable again", || {
        !hosts(&eight()).is_empty()
    });

    // The identifiers' spec codes name each vendor's model.
    let listing = Request::new("GET", "/api/v1/resources?limit=100")
        .bearer(&token)
        .send(node.http);
    assert_eq!(listing.status, 200, "{}", listing.body);
    assert!(listing.body.contains("910B3-64G"), "{}", listing.body);
    assert!(listing.body.contains("K100-64G"), "{}", listing.body);
}
