//! Reply schemas, by name; each route names its own (`reply` in `ROUTES`).
//!
//! Routes whose success body is not JSON, and so name none:
//! `GET /metrics` and `GET /metrics/hosts` answer
//! `application/openmetrics-text; version=1.0.0; charset=utf-8` (Prometheus);
//! `GET /api/v1/hosts/{host}/live` answers `text/event-stream` (events named
//! `sample`, each one's data a `Vitals` object); `GET /api/v1/openapi.json`
//! answers `application/json`, the OpenAPI document itself. Routes that answer
//! 204 (or 202 for `POST /api/v1/hosts/{host}/sample-interval`) have no body.
//!
//! Times ending `_ms` are unix milliseconds (integers), `_us` microseconds;
//! prices are decimal strings.

use serde_json::{Value, json};

/// A reference to another schema of `components.schemas`.
fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn or_null(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// An object whose every property is always present but those `optional`
/// (a reply lists what it has; naming the required ones again would only
/// let the two lists drift apart).
fn obj(optional: &[&str], properties: Value) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .map(|p| {
            p.keys()
                .filter(|k| !optional.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    json!({"type": "object", "required": required, "properties": properties})
}

/// An object whose every property is always present.
fn all(properties: Value) -> Value {
    obj(&[], properties)
}

fn list(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// `{"<key>": [item…]}`: a whole list under one key.
fn listed(key: &str, item: &str) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert(key.to_owned(), list(r(item)));
    all(Value::Object(properties))
}

/// `{"<key>": [item…], "<cursor>": next or null}`: one page of a list.
fn page(key: &str, item: &str, cursor: &str, cursor_type: &str) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert(key.to_owned(), list(r(item)));
    properties.insert(cursor.to_owned(), json!({"type": [cursor_type, "null"]}));
    all(Value::Object(properties))
}

pub(super) fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

/// The response schemas, by name, to merge into `components.schemas`.
pub fn schemas() -> Value {
    let text = json!({"type": "string"});
    let int = json!({"type": "integer"});
    let num = json!({"type": "number"});
    let flag = json!({"type": "boolean"});
    let opt_text = json!({"type": ["string", "null"]});
    let opt_int = json!({"type": ["integer", "null"]});
    let opt_num = json!({"type": ["number", "null"]});
    let opt_flag = json!({"type": ["boolean", "null"]});
    let texts = list(text.clone());
    let ints = list(int.clone());
    let host_state = json!({"type": "string", "enum": ["online", "stale", "offline", "revoked"]});
    let severity = json!({"type": "string", "enum": ["info", "warning", "critical"]});
    let role = json!({"type": "string", "enum": ["admin", "operator", "viewer", "provider", "reseller", "line_provider", "user"]});
    let constraint = json!({"type": "string", "enum": [
        "state", "staleness", "resource_type", "region", "provider", "industry", "architecture",
        "cpu_cores", "memory", "disk", "accelerators", "health", "infiniband", "fabric",
        "latency", "bandwidth", "price", "expression"
    ]});

    let named = [
        // ---- sessions ----
        (
            "Session",
            all(json!({
                "login": text, "role": text, "csrf_token": text, "expires_at_ms": int,
                "must_change_password": described(flag.clone(), "the password was generated: the console asks for a new one first"),
            })),
        ),
        (
            "Me",
            all(json!({
                "login": text,
                "role": role,
                "provider": or_null(r("Provider")),
                "csrf_token": described(opt_text.clone(), "the session's CSRF token; null for an API key or the admin token"),
                "must_change_password": described(flag.clone(), "the password was generated: the console asks for a new one first"),
            })),
        ),
        // ---- registrations, accounts, keys, tokens, audit ----
        (
            "RegistrationRecord",
            all(json!({
                "id": int, "kind": text, "name": text, "uscc": text, "uscc_verified": flag,
                "region": text, "industry": text, "contact": text,
                "account": described(text.clone(), "the applicant's login"),
                "state": described(text.clone(), "pending, approved or rejected"),
                "reason": opt_text, "reviewed_by": opt_text, "reviewed_at_ms": opt_int,
                "provider": described(opt_text.clone(), "the owner code assigned on approval"),
                "created_at_ms": int,
            })),
        ),
        (
            "RegistrationList",
            listed("registrations", "RegistrationRecord"),
        ),
        (
            "Account",
            all(json!({
                "id": int, "login": text, "role": text, "provider_id": opt_int, "created_at_ms": int,
                "disabled": described(flag.clone(), "it cannot sign in; its sessions and API keys do not work"),
                "must_change_password": described(flag.clone(), "its password was generated and not yet changed"),
            })),
        ),
        (
            "CreatedAccount",
            json!({"allOf": [r("Account"), obj(&["password"], json!({
                "password": described(text.clone(), "the generated password, shown once; absent when one was given"),
            }))]}),
        ),
        ("AccountList", listed("accounts", "Account")),
        (
            "ApiKey",
            all(json!({
                "id": int, "name": text, "created_at_ms": int, "expires_at_ms": int, "revoked": flag,
            })),
        ),
        (
            "CreatedApiKey",
            all(json!({
                "id": int, "name": text,
                "key": described(text.clone(), "the bearer key, shown once"),
                "expires_at_ms": int,
            })),
        ),
        ("ApiKeyList", listed("api_keys", "ApiKey")),
        (
            "EnrollmentToken",
            all(json!({
                "id": int, "provider": text, "expires_at_ms": int, "uses_left": int,
                "created_at_ms": int, "created_by": text, "revoked": flag,
            })),
        ),
        (
            "CreatedToken",
            all(json!({
                "id": int, "provider": text,
                "join": described(text.clone(), "the join string, shown once"),
                "command": text, "expires_at_ms": int, "uses": int, "region": text,
            })),
        ),
        ("TokenList", listed("tokens", "EnrollmentToken")),
        (
            "AuditEntry",
            all(json!({
                "id": int, "at_ms": int, "actor": text, "action": text, "subject": text, "detail": text, "address": text,
            })),
        ),
        (
            "AuditPage",
            page("entries", "AuditEntry", "next_before", "integer"),
        ),
        // ---- status ----
        (
            "Tally",
            all(json!({
                "key": text, "total": int, "online": int, "free_now": int, "memory_bytes": int,
                "mean_utilization_percent": opt_num,
            })),
        ),
        (
            "Summary",
            all(json!({
                "at_ms": int,
                "hosts": described(
                    all(json!({"online": int, "stale": int, "offline": int, "revoked": int})),
                    "hosts by state",
                ),
                "hosts_total": int, "resources_total": int, "connected_agents": int,
                "capacity": all(json!({"logical_cpus": int, "memory_bytes": int})),
                "mean_cpu_utilization_percent": opt_num,
                "by_resource_type": list(r("Tally")),
                "by_accelerator_model": list(r("Tally")),
                "headline": described(r("Headline"), "this node's own capacity in standard units now (算力规模; docs/market-monitoring.md)"),
                "unrated": described(
                    json!({"type": "object", "additionalProperties": int}),
                    "by resource type: resources with no rating at the headline's precision",
                ),
            })),
        ),
        (
            "Owner",
            all(json!({
                "code": text, "name": text, "region": text, "industry": text,
            })),
        ),
        (
            "GpuFaults",
            obj(
                &["resets"],
                json!({
                    "latched": list(obj(&["class"], json!({"xid": int, "at_ms": int, "class": {"description": "the XID's class"}}))),
                    "counts": {"type": "object", "additionalProperties": int, "description": "count per XID code since the host's last boot"},
                    "recent": list(all(json!({"xid": int, "at_ms": int, "message": opt_text}))),
                    "resets": ints,
                    "needs_inspection": flag,
                }),
            ),
        ),
        (
            "Resource",
            all(json!({
                "identifier": text,
                "health": {"type": "string", "enum": ["healthy", "degraded", "critical", "unknown"]},
                "health_reasons": texts,
                "selectable": flag,
                "faults": or_null(r("GpuFaults")),
                "resource_type": described(text.clone(), "type code: C, A, H, V, K, S or P"),
                "resource_type_name": all(json!({"zh": text, "en": text})),
                "model": opt_text,
                "memory_bytes": opt_int,
                "host_id": int,
                "hostname": opt_text,
                "provider": or_null(r("Owner")),
                "region": opt_text,
                "logical_cpus": described(opt_int.clone(), "a host's own resource only"),
                "state": or_null(host_state.clone()),
                "free_now": opt_flag,
                "last_seen_ms": opt_int,
                "freshness_ms": opt_int,
                "collected_at_ms": opt_int,
                // An accelerator's live figures are its GpuVitals; a host's, four CPU and memory figures.
                "live": {"anyOf": [
                    r("GpuVitals"),
                    all(json!({
                        "cpu_utilization_percent": opt_num, "load_average_1m": opt_num,
                        "memory_total_bytes": opt_int, "memory_used_bytes": opt_int,
                    })),
                    {"type": "null"},
                ]},
            })),
        ),
        (
            "ResourcePage",
            page("resources", "Resource", "next_cursor", "string"),
        ),
        (
            "HostRef",
            all(json!({
                "host_id": int, "hostname": text, "identifier": opt_text,
            })),
        ),
        (
            "LibraryEntry",
            all(json!({
                "identifier": text,
                "type": described(text.clone(), "resource type code"),
                "type_name": opt_text,
                "revision": int,
                "state": text,
                "current": flag,
                "superseded_by": opt_text,
                "owner": all(json!({"code": text, "name": text, "uscc": text})),
                "industry": text, "region": text, "spec": text,
                "model": opt_text, "memory_bytes": opt_int, "logical_cpus": opt_int,
                "changed_at_ms": int, "filed_at_ms": int,
                "holding_node": described(text.clone(), "prefix of the node holding it"),
                "holding_child": described(opt_int.clone(), "the child node it was filed through; null when minted here"),
            })),
        ),
        (
            "RemoteLive",
            all(json!({
                "host_state": text, "health": text, "free_now": opt_flag, "last_seen_ms": opt_int,
                "utilization_percent": opt_num, "memory_used_bytes": opt_int, "memory_total_bytes": opt_int,
                "answered_by": described(text.clone(), "prefix of the node that answered"),
            })),
        ),
        // A resource of this node (with its host), else the identifier library's entry.
        (
            "ResolvedIdentifier",
            json!({"anyOf": [
                {"allOf": [r("Resource"), obj(&["host"], json!({"host": r("HostRef")}))]},
                {"allOf": [r("LibraryEntry"), obj(&["live_state", "live", "live_reason"], json!({
                    "source": {"const": "library"},
                    "live_state": {"type": "string", "enum": ["fresh", "stale", "unreachable"], "description": "with ?live=1, for an identifier a descendant holds"},
                    "live": or_null(r("RemoteLive")),
                    "live_reason": described(text.clone(), "why the live state is stale"),
                }))]},
            ]}),
        ),
        (
            "History",
            all(json!({
                "identifier": text, "metric": text, "from_ms": int, "to_ms": int, "step_ms": int,
                "points": list(all(json!({
                    "t_ms": int, "mean": num, "min": num, "max": num, "samples": int,
                }))),
            })),
        ),
        // ---- providers, prices, lines ----
        (
            "Provider",
            obj(
                &["uscc", "uscc_verified", "contact"],
                json!({
                    "code": text,
                    "name": text,
                    "kind": described(text.clone(), "provider, reseller or line_provider"),
                    "region": text,
                    "industry": text,
                    "uscc": described(text.clone(), "staff and the organisation itself only"),
                    "uscc_verified": flag,
                    "contact": text,
                }),
            ),
        ),
        ("ProviderList", listed("providers", "Provider")),
        (
            "Price",
            all(json!({
                "resource": described(text.clone(), "accelerator or cpu"),
                "model": described(opt_text.clone(), "null for any model"),
                "per_hour_cny": described(text.clone(), "yuan per hour as a decimal string, e.g. \"18.5\""),
            })),
        ),
        (
            "ProviderPrices",
            all(json!({"provider": text, "prices": list(r("Price"))})),
        ),
        (
            "Line",
            all(json!({
                "id": int, "provider": text, "name": text, "from_region": text, "to_region": text,
                "latency_us": int, "bandwidth_mbps": int, "price_per_mbps_month": opt_text,
                "state": described(text.clone(), "open, maintenance or closed"),
                "created_at_ms": int,
            })),
        ),
        ("LineList", listed("lines", "Line")),
        // ---- selection and network ----
        (
            "NetworkPath",
            all(json!({
                "latency_ms": num,
                "bottleneck_mbps": int,
                "segments": list(obj(&["line_id"], json!({
                    "kind": {"type": "string", "enum": ["line", "public"]},
                    "from_region": text, "to_region": text, "latency_ms": num, "bandwidth_mbps": int,
                    "line_id": described(text.clone(), "line segments only"),
                }))),
            })),
        ),
        (
            "HostPick",
            all(json!({
                "node": described(text.clone(), "the prefix of the node holding the host"),
                "host_id": described(int.clone(), "the host's id at the node holding it"), "identifier": opt_text, "hostname": text, "provider": text,
                "region": text, "industry": text, "state": host_state, "stale": flag,
                "freshness_ms": opt_int,
                "resources": described(texts.clone(), "identifiers of the resources chosen on this host"),
                "matching_accelerators": int,
                "path": or_null(r("NetworkPath")),
                "rtt_ms": opt_num,
                "fabric": opt_text,
                "price_per_hour_cny": opt_text,
                "score": num,
                "parts": all(json!({
                    "availability": num, "latency": opt_num, "load": num, "price": opt_num,
                })),
            })),
        ),
        (
            "Candidate",
            obj(
                &["total_gflops"],
                json!({
                    "score": num, "hosts": list(r("HostPick")),
                    "total_gflops": described(int.clone(), "for a demand of a total capacity: what the hosts' listed resources add up to at its precision"),
                }),
            ),
        ),
        (
            "SelectionAnswer",
            all(json!({
                "candidates": list(r("Candidate")),
                "matched_hosts": int,
                "unexamined_hosts": int,
                "considered_hosts": int,
                "eliminated": list(all(json!({"constraint": constraint, "hosts": int}))),
                "nearest_misses": list(all(json!({
                    "node": text, "host_id": int, "hostname": text, "identifier": opt_text,
                    "failed": list(all(json!({"constraint": constraint, "detail": text}))),
                }))),
                "groups_short": opt_text,
                "nodes": described(list(all(json!({
                    "node": text,
                    "outcome": {"type": "string", "enum": ["answered", "skipped", "excluded", "late", "unreachable", "refused", "failed"]},
                    "reason": opt_text,
                    "elapsed_ms": opt_int,
                    "candidates": opt_int,
                }))), "each node below this one the demand reached or not, and what became of it"),
                "partial": described(flag.clone(), "a node that should have answered did not: candidates may be missing"),
                "node": described(text.clone(), "the prefix of the node that answered"),
                "elapsed_us": int,
            })),
        ),
        (
            "Hold",
            all(json!({
                "id": described(text.clone(), "the holding node's prefix and its number there, e.g. CN.32.I65:7"),
                "node": text, "host_id": int, "resources": texts.clone(),
                "holder": described(text.clone(), "the node the user asked at and the user, e.g. CN/alice"),
                "created_at_ms": int, "expires_at_ms": int,
                "state": {"type": "string", "enum": ["held", "released", "expired"]},
                "ended_at_ms": opt_int, "ended_by": opt_text,
                "replayed": described(flag.clone(), "this request was made before: the hold it made"),
            })),
        ),
        ("HoldList", listed("reservations", "Hold")),
        (
            "SelectionRecord",
            all(json!({
                "id": int, "at_ms": int, "actor": text,
                "demand": {"description": "the demand as the user sent it"},
                "matched_hosts": int, "candidates": int,
                "chosen": {"description": "identifiers of the first candidate's resources, or null"},
                "elapsed_us": int,
                "no_match": described(opt_text.clone(), "with no candidate, the main reason: the hard constraint that eliminated the most hosts, group, or no_hosts"),
                "lines_used": described(int.clone(), "dedicated lines on the first candidate's paths"),
            })),
        ),
        ("SelectionList", listed("selections", "SelectionRecord")),
        (
            "LineEdge",
            all(json!({
                "line_id": text, "provider": text, "from_region": text, "to_region": text,
                "latency_ms": num, "bandwidth_mbps": int, "price_per_mbps_month": opt_text,
            })),
        ),
        (
            "RegionLatency",
            all(json!({
                "minute_ms": int, "from_region": text, "to_region": text, "hosts": int,
                "median_rtt_us": int, "min_rtt_us": int, "max_rtt_us": int,
            })),
        ),
        (
            "Network",
            all(json!({
                "public": all(json!({
                    "same_city_ms": num, "same_province_ms": num, "national_ms": num, "bandwidth_mbps": int,
                })),
                "lines": list(r("LineEdge")),
                "observed": list(all(json!({
                        "from_region": text, "to_region": text, "hosts": int,
                        "median_rtt_ms": num, "one_way_ms": num, "configured_ms": num,
                    }),
                )),
                "history": list(r("RegionLatency")),
            })),
        ),
        // ---- hosts ----
        (
            "Link",
            all(json!({
                "connected": flag, "rtt_us": opt_int, "sent_packets": opt_int, "lost_packets": opt_int,
                "rx_bytes": opt_int, "tx_bytes": opt_int, "connected_for_ms": opt_int,
            })),
        ),
        (
            "HostListing",
            all(json!({
                "host_id": int, "hostname": text, "provider": text, "identifier": opt_text,
                "enrolled_at_ms": int, "revoked": flag, "last_seen_ms": opt_int,
                "rtt_us": opt_int, "sent_packets": opt_int, "lost_packets": opt_int, "dropped_samples": opt_int,
                "samples_stored": int, "first_seq": opt_int, "last_seq": opt_int, "gaps": int,
                "resources": list(all(json!({
                    "identifier": text, "resource_type": text, "resource_key": text,
                }))),
                "link": r("Link"),
                "state": described(json!({"enum": ["online", "stale", "offline", "revoked", "enrolled"]}), "by the age of its last sample; enrolled: never streamed"),
                "region": text,
            })),
        ),
        (
            "HostPage",
            page("hosts", "HostListing", "next_cursor", "integer"),
        ),
        (
            "GpuVitals",
            all(json!({
                "vendor": text, "health_code": opt_int, "error_codes": ints, "index": int, "uuid": opt_text,
                "utilization_percent": opt_int, "memory_used_bytes": opt_int, "memory_total_bytes": opt_int,
                "temperature_celsius": opt_int, "power_watts": opt_num, "ecc_uncorrected_volatile": opt_int,
                "xid_errors": int, "nvlink_active": opt_int, "nvlink_down": opt_int,
                "throttle_reasons_mask": opt_int, "throttle_reasons": texts,
                "remapped_rows_pending": opt_flag, "remapped_rows_failure": opt_flag,
                "retired_pages_pending": opt_flag, "processes": ints,
                "slowdown_temperature_celsius": opt_int, "power_limit_watts": opt_num,
            })),
        ),
        (
            "Vitals",
            all(json!({
                "seq": int, "collected_at_ms": int,
                "cpu_utilization_percent": opt_num, "load_average_1m": opt_num,
                "memory_total_bytes": opt_int, "memory_used_bytes": opt_int,
                "disk_total_bytes": opt_int, "disk_available_bytes": opt_int,
                "infiniband_active_gbps": opt_num,
                "disk_read_bytes_per_second": opt_num, "disk_write_bytes_per_second": opt_num,
                "network_rx_bytes_per_second": opt_num, "network_tx_bytes_per_second": opt_num,
                "temperature_celsius": opt_num,
                "gpus": list(r("GpuVitals")),
                "memory_available_bytes": opt_int,
                "filesystems": list(all(json!({"mount_point": text, "used_percent": num}))),
                "infiniband_down": texts,
                "slurm_state": opt_text,
                "clock_offset_ms": opt_int,
                "implausible": list(all(json!({
                    "uuid": opt_text, "index": opt_int,
                    "field": described(text.clone(), "the figure left out, as named in Vitals or GpuVitals"),
                    "raw": described(text.clone(), "the value as reported"),
                }))),
            })),
        ),
        (
            "Host",
            all(json!({
                "host_id": int, "hostname": text, "identifier": opt_text,
                "provider": r("Owner"),
                "region": text,
                "state": host_state,
                "last_seen_ms": opt_int, "interval_ms": opt_int, "spool_backlog": opt_int,
                "link": r("Link"),
                "vitals": or_null(r("Vitals")),
                // The agent's inventory in protobuf's canonical JSON (camelCase, 64-bit integers as strings).
                "inventory": {"type": ["object", "null"], "description": "the host's inventory as the agent reported it (protobuf JSON)"},
                "resources": list(r("Resource")),
                "holds": described(list(all(json!({
                    "identifier": text, "gpu_index": opt_int, "reservation": text, "holder": text, "until_ms": int,
                }))), "accelerators held for someone now (预留): offered to no other demand until then"),
            })),
        ),
        // ---- monitoring ----
        (
            "Alert",
            all(json!({
                "id": int, "fingerprint": text, "rule": text,
                "severity": described(text.clone(), "info, warning or critical"),
                "resource": opt_text,
                "labels": {"type": "object", "additionalProperties": text},
                "summary": text, "started_at_ms": int, "resolved_at_ms": opt_int,
                "acked_by": opt_text, "acked_at_ms": opt_int,
                "silenced_by": described(opt_int.clone(), "the silence muting this firing alert now: it is shown, not notified"),
                "inhibited_by": described(opt_int.clone(), "the firing alert inhibiting this open one now, by an inhibition rule (GET /api/v1/rules lists them; the built-in one: a silent host's host_silent over its other alerts); its notification waits until that alert resolves"),
            })),
        ),
        (
            "HostHistory",
            all(json!({
                "from_ms": int, "to_ms": int, "step_ms": int,
                "t_ms": described(list(int.clone()), "the start of each step something was read in"),
                "cpu_utilization_percent": list(opt_num.clone()),
                "memory_used_bytes": list(opt_num.clone()),
                "load_average_1m": list(opt_num.clone()),
                "disk_read_bytes_per_second": list(opt_num.clone()),
                "disk_write_bytes_per_second": list(opt_num.clone()),
                "network_rx_bytes_per_second": list(opt_num.clone()),
                "network_tx_bytes_per_second": list(opt_num.clone()),
                "temperature_celsius": list(opt_num.clone()),
                "gpus": list(all(json!({
                    "index": int,
                    "gpu_utilization_percent": list(opt_num.clone()),
                    "gpu_memory_used_bytes": list(opt_num.clone()),
                    "gpu_temperature_celsius": list(opt_num.clone()),
                    "gpu_power_watts": list(opt_num.clone()),
                }))),
            })),
        ),
        (
            "Transferred",
            all(json!({"host_id": int, "provider": text})),
        ),
        (
            "AlertPage",
            page("alerts", "Alert", "next_before", "integer"),
        ),
        (
            "SilenceRecord",
            all(json!({
                "id": int,
                "matchers": list(all(json!({"name": text, "value": text, "op": text}))),
                "starts_at_ms": int, "ends_at_ms": int, "created_by": text, "reason": text, "created_at_ms": int,
            })),
        ),
        ("SilenceList", listed("silences", "SilenceRecord")),
        (
            "Receiver",
            obj(
                &["deliveries"],
                json!({
                    "id": int, "name": text, "kind": text,
                    "url": described(text.clone(), "scheme and host only, e.g. https://oapi.dingtalk.com/… (robot tokens live in the path or query)"),
                    "signed": flag,
                    "scope": {"type": "string", "enum": ["provider", "node"]},
                    "mentions": texts,
                    "min_severity": text,
                    "repeat_interval_ms": described(opt_int.clone(), "its own reminder interval; null: the node's repeat_interval"),
                    "declared": described(flag.clone(), "declared in the config file"),
                    "created_by": text, "created_at_ms": int,
                    "deliveries": {"type": "object", "additionalProperties": int, "description": "in the list only: deliveries by state"},
                }),
            ),
        ),
        ("ReceiverList", listed("receivers", "Receiver")),
        (
            "Attempt",
            all(json!({
                "at_ms": int, "alerts": int, "http_status": opt_int, "errcode": opt_text, "error": opt_text,
                "latency_ms": int, "retry": int,
            })),
        ),
        (
            "ReceiverAttempts",
            all(json!({
                "receiver": r("Receiver"), "attempts": list(r("Attempt")),
            })),
        ),
        (
            "Rules",
            all(json!({
                "rules": list(all(json!({
                    "name": text, "severity": severity, "for_ms": int, "keep_firing_for_ms": int, "description": text,
                }))),
                "inhibit_rules": list(all(json!({
                    "source_matchers": texts, "target_matchers": texts, "equal": texts,
                    "built_in": described(flag.clone(), "the node's own rule; others come from [[alerts.inhibit_rules]]"),
                }))),
                "xid_catalog": all(json!({
                    "version": text,
                    "codes": list(all(json!({
                        "xid": int, "class": text, "severity": severity, "name": text, "action": text,
                    }))),
                })),
            })),
        ),
        // ---- hierarchy ----
        (
            "IdentifierPage",
            page("identifiers", "LibraryEntry", "next_cursor", "string"),
        ),
        (
            "ChildNode",
            all(json!({
                "id": int, "role": text, "segment": text, "operator_name": text, "operator_uscc": text,
                "advertise": text,
                "state": described(text.clone(), "pending, approved, rejected or revoked"),
                "link": {"type": "string", "enum": ["connected", "unknown", "pending", "rejected", "revoked"]},
                "reason": opt_text, "prefix": opt_text, "requested_at_ms": int,
                "reviewed_by": opt_text, "reviewed_at_ms": opt_int, "last_heartbeat_ms": opt_int,
                "backlog": opt_int, "dropped": opt_int,
                "identifiers": described(int.clone(), "identifiers filed through it (0 in review answers)"),
            })),
        ),
        (
            "CreatedNodeToken",
            all(json!({
                "id": int, "role": text, "segment": text, "expires_at_ms": int,
                "join": described(text.clone(), "the join string, shown once"),
            })),
        ),
        (
            "Nodes",
            all(json!({
                "role": text,
                "prefix": text,
                "identifiers": all(json!({"own": int, "subtree": int})),
                "children": list(r("ChildNode")),
                "parent": or_null(all(json!({
                        "address": text, "state": text, "reason": opt_text, "request_id": int,
                        "prefix": opt_text, "parent_prefix": opt_text, "requested_at_ms": int, "decided_at_ms": opt_int,
                        "unspooled": int,
                        "link": {"type": "string", "enum": ["connected", "disconnected"]},
                        "backlog": opt_int, "dropped": opt_int, "last_ack_ms": opt_int,
                    }),
                )),
                "providers": list(all(json!({
                    "node": text, "owner_code": text, "name": text, "uscc": text, "identifiers": int,
                }))),
                "duplicate_uscc": list(all(json!({"uscc": text, "nodes": texts}))),
            })),
        ),
        (
            "PrecisionCapacity",
            described(
                all(
                    json!({"precision": text, "registered_gflops": int, "available_gflops": int, "unrated": int}),
                ),
                "peak dense throughput in GFLOPS (GOPS for int8); unrated: resources with no rating at this precision",
            ),
        ),
        (
            "CapacityGroup",
            all(json!({
                "region": text, "resource_type": text, "model": text,
                "registered": int, "online": int, "stale": int, "offline": int, "available": int,
                "healthy": int, "degraded": int, "critical": int, "health_unknown": int,
                "memory_bytes": int, "available_memory_bytes": int,
                "logical_cpus": int, "available_logical_cpus": int,
                "utilization_permille_sum": int, "utilization_readings": int,
                "capacity": list(r("PrecisionCapacity")),
            })),
        ),
        (
            "Heatmap",
            all(json!({
                "hosts": list(all(json!({
                    "host_id": int, "hostname": text, "region": text, "state": host_state,
                    "utilization_percent": described(
                        list(opt_int.clone()),
                        "each accelerator's, in index order; null: no reading, or the host is not online",
                    ),
                }))),
                "hosts_total": int, "truncated": flag,
            })),
        ),
        (
            "Trend",
            all(json!({
                "hours": opt_int, "days": opt_int, "step_ms": int,
                "points": list(all(json!({
                    "period_start_ms": int, "origins": int, "headline": r("Headline"),
                    "available_intelligent_fp16_gflops": int, "available_general_fp32_gflops": int,
                    "accelerators": int, "accelerators_available": int,
                    "accelerator_utilization_permille": opt_int,
                    "accelerators_online_permille": opt_int,
                }))),
            })),
        ),
        (
            "FigureSeries",
            all(json!({
                "stream": text, "days": int, "period_ms": int,
                "points": list(all(json!({
                    "period_start_ms": int, "origins": int, "figures": list(r("Figure")),
                }))),
            })),
        ),
        (
            "Figure",
            described(
                all(json!({"name": text, "label": text, "value": int})),
                "one count of an hourly stream, split by label where it has one (a role, a histogram bucket le=N)",
            ),
        ),
        (
            "Headline",
            all(json!({
                "intelligent_fp16_gflops": int, "general_fp32_gflops": int,
                "supercomputing_fp64_gflops": int, "fp32_equivalent_gflops": int,
            })),
        ),
        (
            "SubtreeReport",
            all(json!({
                "node": text, "stream": text, "period_ms": int, "period_start_ms": int,
                "complete": flag, "missing": texts,
                "origins": list(all(json!({
                    "origin": text, "via": opt_text, "received_at_ms": int, "periods": int,
                    "headline": r("Headline"),
                    "resources": {"type": "object", "additionalProperties": int},
                }))),
                "rating_tables": texts,
                "scale": all(json!({
                    "by_type": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": r("PrecisionCapacity")}},
                    "resources": {"type": "object", "additionalProperties": int},
                    "available": {"type": "object", "additionalProperties": int},
                })),
                "headline": r("Headline"),
                "by_province": described(
                    json!({"type": "object", "additionalProperties": all(json!({
                        "headline": r("Headline"),
                        "resources": {"type": "object", "additionalProperties": int},
                        "available": {"type": "object", "additionalProperties": int},
                    }))}),
                    "by the first two digits of GB/T 2260 (the province)",
                ),
                "previous": or_null(all(json!({
                    "period_start_ms": int, "complete": flag, "headline": r("Headline"),
                    "resources": {"type": "object", "additionalProperties": int},
                    "figures": list(r("Figure")),
                }))),
                "groups": list(r("CapacityGroup")),
                "figures": list(r("Figure")),
                "refusals": list(all(json!({
                    "origin": text, "stream": text, "period_start_ms": int, "received_at_ms": int, "reason": text,
                }))),
            })),
        ),
    ];
    Value::Object(
        named
            .into_iter()
            .map(|(name, schema)| (name.to_owned(), schema))
            .collect(),
    )
}
