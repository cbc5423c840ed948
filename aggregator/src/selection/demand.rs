//! A user's demand (算力需求), read from JSON field by field so that every
//! wrong field is reported at once, whatever is wrong with it.

use serde_json::{Map, Value};
use suanli_protocol::{
    identifier::{NodePrefix, RegionCode, ResourceType},
    model::AcceleratorKind,
};

use crate::{
    check::{Check, FieldProblem, Invalid},
    i18n::Text,
};

/// What the user asks for. Every constraint is hard unless said otherwise.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Demand {
    /// `None`: accelerators if any accelerator field is set, else general compute.
    pub resource_type: Option<ResourceType>,
    pub accelerator: Option<AcceleratorDemand>,
    pub cpu_cores: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    /// Hosts wanted together, all or nothing.
    pub hosts: u32,
    /// What the hosts of a multi-host answer must share.
    pub together: Together,
    /// GB/T 2260 prefix the resources must be in.
    pub region: Option<String>,
    /// Where the user is (GB/T 2260), for latency and bandwidth.
    pub user_region: Option<String>,
    pub max_latency_ms: Option<f64>,
    pub min_bandwidth_mbps: Option<u64>,
    pub providers: Vec<String>,
    /// The hosts' instruction-set family: `X86`, `ARM`, `LA`, `RV`.
    pub architecture: Option<&'static str>,
    pub industries: Vec<String>,
    /// The state a resource is judged on may be at most this old.
    pub max_staleness_ms: Option<u64>,
    /// Free now (the default) or merely installed.
    pub installed: bool,
    /// The most the chosen resources on one host may cost per hour, in
    /// 0.0001 CNY; a host without a listed price fails it.
    pub max_price_cny_e4: Option<i64>,
    /// A CEL expression over the host document; must be true.
    pub expression: Option<String>,
    pub limit: usize,
    /// Which nodes answer (selection across nodes).
    pub scope: Scope,
    /// Nodes whose subtrees are left out.
    pub exclude_nodes: Vec<NodePrefix>,
    /// How long the answer waits for child nodes.
    pub deadline_ms: u64,
    /// A total the chosen resources must reach together (算力度量): as
    /// many hosts as it takes, each giving what its answer lists.
    pub capacity: Option<CapacityDemand>,
}

/// At least this much dense peak capacity at one precision, summed over a
/// candidate's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityDemand {
    pub precision: crate::capacity::Precision,
    /// GFLOPS (GOPS for int8).
    pub gflops: u64,
}

/// The largest total a demand may ask for: a zettaFLOPS, in TFLOPS.
pub const MAX_CAPACITY_TFLOPS: f64 = 1e9;

/// Which nodes of the tree answer a demand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// This node and every node below it.
    #[default]
    Subtree,
    /// This node's own hosts only.
    Local,
    /// The subtree of one node (this one, or one below it).
    Node(NodePrefix),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AcceleratorDemand {
    /// Lower-case: any of the vendor's names (huawei, ascend, 华为).
    pub vendor: Option<String>,
    /// What the vendor calls the device: GPU, NPU, MLU, DCU, XPU, GCU.
    pub kind: Option<AcceleratorKind>,
    /// Lower-case model token, e.g. "h100": "NVIDIA H100 80GB HBM3" matches.
    pub model: Option<String>,
    pub count: u32,
    pub min_memory_bytes: Option<u64>,
    pub min_free_memory_bytes: Option<u64>,
    pub nvlink: Option<bool>,
    pub infiniband_gbps: Option<f64>,
    pub mig: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Together {
    /// No constraint between the hosts.
    #[default]
    Anywhere,
    /// One GB/T 2260 region (the full code).
    Region,
    Provider,
    /// One InfiniBand fabric (subnet prefix and subnet manager).
    Fabric,
}

impl Together {
    pub fn as_str(self) -> &'static str {
        match self {
            Together::Anywhere => "anywhere",
            Together::Region => "region",
            Together::Provider => "provider",
            Together::Fabric => "fabric",
        }
    }
}

const GIB: f64 = (1u64 << 30) as f64;
pub const MAX_HOSTS: u32 = 256;
pub const MAX_LIMIT: usize = 1000;
/// Names in `providers` or `industries`, and characters in each: sized,
/// with the expression's length, so that any demand fits the API's body
/// limit however a client escapes it.
pub const MAX_LISTED: usize = 20;
pub const MAX_NAME_CHARS: usize = 32;
pub const MAX_EXPRESSION_CHARS: usize = 2048;
/// How long a federated answer waits for child nodes by default, and at most.
pub const DEFAULT_DEADLINE_MS: u64 = 3_000;
pub const MIN_DEADLINE_MS: u64 = 100;
pub const MAX_DEADLINE_MS: u64 = 10_000;

/// Reads a demand; `Err` lists every field that is wrong.
pub fn parse(body: &Value) -> Result<Demand, Invalid> {
    let mut p = Check::default();
    let Some(object) = body.as_object() else {
        return Err(Invalid(vec![FieldProblem::text(
            "body",
            Text::new("check.demand.object"),
        )]));
    };
    const KNOWN: &[&str] = &[
        "resource_type",
        "accelerator",
        "cpu_cores",
        "memory_gib",
        "disk_gib",
        "hosts",
        "together",
        "region",
        "user_region",
        "max_latency_ms",
        "min_bandwidth_mbps",
        "providers",
        "industries",
        "architecture",
        "max_staleness_s",
        "availability",
        "max_price_per_hour_cny",
        "expression",
        "limit",
        "scope",
        "exclude_nodes",
        "deadline_ms",
        "capacity",
    ];
    p.unknown("", object.keys(), KNOWN);
    let mut demand = Demand {
        resource_type: p.string(object, "resource_type").and_then(|t| {
            let found = ResourceType::parse(&t).ok().or(match t.as_str() {
                "general" | "cpu" => Some(ResourceType::GeneralCompute),
                "ai" | "accelerator" | "gpu" => Some(ResourceType::AiAccelerator),
                "hpc" | "supercomputing" => Some(ResourceType::Supercomputing),
                _ => None,
            });
            if found.is_none() {
                p.fail_text("resource_type", Text::new("check.demand.resource_type"));
            }
            found
        }),
        cpu_cores: p.whole(object, "cpu_cores", 1, 1 << 20).map(|n| n as u32),
        memory_bytes: p.gib(object, "memory_gib"),
        disk_bytes: p.gib(object, "disk_gib"),
        hosts: p
            .whole(object, "hosts", 1, u64::from(MAX_HOSTS))
            .unwrap_or(1) as u32,
        together: match p.string(object, "together").as_deref() {
            None | Some("anywhere") => Together::Anywhere,
            Some("region") => Together::Region,
            Some("provider") => Together::Provider,
            Some("fabric") => Together::Fabric,
            Some(_) => {
                p.fail_text("together", Text::new("check.demand.together"));
                Together::Anywhere
            }
        },
        region: p.region_prefix(object, "region"),
        user_region: p
            .string(object, "user_region")
            .and_then(|r| match RegionCode::parse(&r) {
                Ok(code) => Some(code.to_string()),
                Err(e) => {
                    p.fail_text(
                        "user_region",
                        Text::new("check.demand.user_region").arg("error", e),
                    );
                    None
                }
            }),
        max_latency_ms: p.positive(object, "max_latency_ms"),
        min_bandwidth_mbps: p.whole(object, "min_bandwidth_mbps", 1, 1 << 40),
        providers: p
            .list(object, "providers")
            .into_iter()
            .map(|s| s.to_ascii_uppercase())
            .collect(),
        industries: p
            .list(object, "industries")
            .into_iter()
            .map(|s| s.to_ascii_uppercase())
            .collect(),
        architecture: p.string(object, "architecture").and_then(|a| {
            let family = crate::fleet::cpu_family(&a);
            if family.is_none() {
                p.fail_text("architecture", Text::new("check.demand.architecture"));
            }
            family
        }),
        max_staleness_ms: p
            .positive(object, "max_staleness_s")
            .map(|s| (s * 1000.0) as u64),
        installed: match p.string(object, "availability").as_deref() {
            None | Some("free_now") => false,
            Some("installed") => true,
            Some(_) => {
                p.fail_text("availability", Text::new("check.demand.availability"));
                false
            }
        },
        max_price_cny_e4: p.cny(object, "max_price_per_hour_cny"),
        expression: p.string(object, "expression"),
        limit: p.whole(object, "limit", 1, MAX_LIMIT as u64).unwrap_or(20) as usize,
        scope: match p.string(object, "scope").as_deref() {
            None | Some("subtree") => Scope::Subtree,
            Some("local") => Scope::Local,
            Some(node) => match NodePrefix::parse(node) {
                Ok(prefix) => Scope::Node(prefix),
                Err(e) => {
                    p.fail_text("scope", Text::new("check.demand.scope").arg("error", e));
                    Scope::Subtree
                }
            },
        },
        exclude_nodes: {
            let listed = p.list(object, "exclude_nodes");
            let parsed: Result<Vec<_>, _> = listed.iter().map(|n| NodePrefix::parse(n)).collect();
            parsed.unwrap_or_else(|e| {
                p.fail_text(
                    "exclude_nodes",
                    Text::new("check.demand.exclude_nodes").arg("error", e),
                );
                Vec::new()
            })
        },
        deadline_ms: p
            .whole(object, "deadline_ms", MIN_DEADLINE_MS, MAX_DEADLINE_MS)
            .unwrap_or(DEFAULT_DEADLINE_MS),
        accelerator: None,
        capacity: None,
    };
    if let Some(value) = object.get("capacity") {
        match value.as_object() {
            Some(c) => {
                p.unknown("capacity.", c.keys(), &["precision", "tflops"]);
                let precision = match p.string_at(c, "capacity.precision", "precision") {
                    None => {
                        p.fail_text(
                            "capacity.precision",
                            Text::new("check.demand.precision_required"),
                        );
                        None
                    }
                    Some(name) => {
                        let found = crate::capacity::Precision::parse(&name.to_lowercase());
                        if found.is_none() {
                            p.fail_text("capacity.precision", Text::new("check.demand.precision"));
                        }
                        found
                    }
                };
                let tflops = match p.positive_at(c, "capacity.tflops", "tflops") {
                    Some(t) if t > MAX_CAPACITY_TFLOPS => {
                        p.fail_text("capacity.tflops", Text::new("check.demand.tflops_max"));
                        None
                    }
                    Some(t) => Some(t),
                    None if c.get("tflops").is_none_or(Value::is_null) => {
                        p.fail_text("capacity.tflops", Text::new("check.demand.tflops_required"));
                        None
                    }
                    None => None,
                };
                if let (Some(precision), Some(tflops)) = (precision, tflops) {
                    demand.capacity = Some(CapacityDemand {
                        precision,
                        gflops: ((tflops * 1000.0).round() as u64).max(1),
                    });
                }
            }
            None => p.fail_text("capacity", Text::new("check.demand.capacity")),
        }
    }
    if let Some(value) = object.get("accelerator") {
        match value.as_object() {
            Some(a) => {
                p.unknown(
                    "accelerator.",
                    a.keys(),
                    &[
                        "vendor",
                        "kind",
                        "model",
                        "count",
                        "min_memory_gib",
                        "min_free_memory_gib",
                        "nvlink",
                        "infiniband_gbps",
                        "mig",
                    ],
                );
                demand.accelerator = Some(AcceleratorDemand {
                    vendor: p
                        .string_at(a, "accelerator.vendor", "vendor")
                        .map(|s| s.to_lowercase()),
                    kind: p.string_at(a, "accelerator.kind", "kind").and_then(|s| {
                        match crate::accel::kind_named(&s.to_lowercase()) {
                            Some(kind) => Some(kind),
                            None => {
                                p.fail_text(
                                    "accelerator.kind",
                                    Text::new("check.demand.accelerator_kind"),
                                );
                                None
                            }
                        }
                    }),
                    model: p
                        .string_at(a, "accelerator.model", "model")
                        .map(|s| s.to_lowercase()),
                    count: p
                        .whole_at(a, "accelerator.count", "count", 1, 64)
                        .unwrap_or(1) as u32,
                    min_memory_bytes: p.gib_at(a, "accelerator.min_memory_gib", "min_memory_gib"),
                    min_free_memory_bytes: p.gib_at(
                        a,
                        "accelerator.min_free_memory_gib",
                        "min_free_memory_gib",
                    ),
                    nvlink: p.flag_at(a, "accelerator.nvlink", "nvlink"),
                    infiniband_gbps: p.positive_at(
                        a,
                        "accelerator.infiniband_gbps",
                        "infiniband_gbps",
                    ),
                    mig: p.flag_at(a, "accelerator.mig", "mig"),
                });
            }
            None => p.fail_text("accelerator", Text::new("check.demand.accelerator")),
        }
    }
    // Cross-field rules.
    if demand.accelerator.is_some()
        && demand
            .resource_type
            .is_some_and(|t| t != ResourceType::AiAccelerator)
    {
        p.fail_text("resource_type", Text::new("check.demand.accelerator_type"));
    }
    if demand.user_region.is_none()
        && (demand.max_latency_ms.is_some() || demand.min_bandwidth_mbps.is_some())
    {
        p.fail_text("user_region", Text::new("check.demand.user_region_needed"));
    }
    if demand.together != Together::Anywhere && demand.hosts < 2 && !object.contains_key("capacity")
    {
        p.fail_text("together", Text::new("check.demand.together_hosts"));
    }
    if object.contains_key("capacity") && demand.hosts > 1 {
        p.fail_text("hosts", Text::new("check.demand.hosts_capacity"));
    }
    if demand
        .expression
        .as_deref()
        .is_some_and(|e| e.chars().count() > MAX_EXPRESSION_CHARS)
    {
        p.fail_text(
            "expression",
            Text::new("check.too_long").arg("max", MAX_EXPRESSION_CHARS),
        );
    }
    p.done().map(|()| demand)
}

/// "a whole number from {min} to {max}"
fn whole_number(min: u64, max: u64) -> Text {
    Text::new("check.demand.whole")
        .arg("min", min)
        .arg("max", max)
}

/// Readers of a demand's JSON fields: each reads one value or fails its field.
impl Check {
    fn cny(&mut self, o: &Map<String, Value>, key: &str) -> Option<i64> {
        match o.get(key)? {
            Value::Null => None,
            // parse_cny's one error is its rule, which the catalog words.
            value => crate::price::parse_cny(value)
                .map_err(|_| self.fail_text(key, Text::new("check.prices.amount")))
                .ok(),
        }
    }

    fn string(&mut self, o: &Map<String, Value>, key: &str) -> Option<String> {
        self.string_at(o, key, key)
    }

    fn string_at(&mut self, o: &Map<String, Value>, field: &str, key: &str) -> Option<String> {
        match o.get(key)? {
            Value::Null => None,
            Value::String(s) if !s.trim().is_empty() && !s.contains('\0') => {
                Some(s.trim().to_owned())
            }
            _ => {
                self.fail_text(field, Text::new("check.demand.string"));
                None
            }
        }
    }

    fn number_at(&mut self, o: &Map<String, Value>, field: &str, key: &str) -> Option<f64> {
        match o.get(key)? {
            Value::Null => None,
            Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
            _ => {
                self.fail_text(field, Text::new("check.demand.number"));
                None
            }
        }
    }

    fn positive_at(&mut self, o: &Map<String, Value>, field: &str, key: &str) -> Option<f64> {
        let v = self.number_at(o, field, key)?;
        if v > 0.0 && v < 1e12 {
            Some(v)
        } else {
            self.fail_text(field, Text::new("check.demand.positive"));
            None
        }
    }

    fn positive(&mut self, o: &Map<String, Value>, key: &str) -> Option<f64> {
        self.positive_at(o, key, key)
    }

    fn whole_at(
        &mut self,
        o: &Map<String, Value>,
        field: &str,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        match o.get(key)? {
            Value::Null => None,
            // 3.0 is as whole as 3 (JSON Schema agrees).
            Value::Number(n) => match n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                    .map(|f| f as u64)
            }) {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.fail_text(field, whole_number(min, max));
                    None
                }
            },
            _ => {
                self.fail_text(field, whole_number(min, max));
                None
            }
        }
    }

    fn whole(&mut self, o: &Map<String, Value>, key: &str, min: u64, max: u64) -> Option<u64> {
        self.whole_at(o, key, key, min, max)
    }

    fn gib_at(&mut self, o: &Map<String, Value>, field: &str, key: &str) -> Option<u64> {
        self.positive_at(o, field, key).map(|g| (g * GIB) as u64)
    }

    fn gib(&mut self, o: &Map<String, Value>, key: &str) -> Option<u64> {
        self.gib_at(o, key, key)
    }

    fn flag_at(&mut self, o: &Map<String, Value>, field: &str, key: &str) -> Option<bool> {
        match o.get(key)? {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            _ => {
                self.fail_text(field, Text::new("check.demand.flag"));
                None
            }
        }
    }

    fn list(&mut self, o: &Map<String, Value>, key: &str) -> Vec<String> {
        match o.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_LISTED => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s)
                            if !s.trim().is_empty()
                                && !s.contains('\0')
                                && s.chars().count() <= MAX_NAME_CHARS =>
                        {
                            out.push(s.trim().to_owned())
                        }
                        _ => {
                            self.fail_text(
                                key,
                                Text::new("check.demand.list_items").arg("max", MAX_NAME_CHARS),
                            );
                            return Vec::new();
                        }
                    }
                }
                out
            }
            Some(_) => {
                self.fail_text(key, Text::new("check.demand.list").arg("max", MAX_LISTED));
                Vec::new()
            }
        }
    }

    fn region_prefix(&mut self, o: &Map<String, Value>, key: &str) -> Option<String> {
        let text = self.string(o, key)?;
        if RegionCode::is_prefix(&text) {
            Some(text)
        } else {
            self.fail_text(key, Text::new("check.demand.region"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bad_field_is_named_at_once() {
        let errors = parse(&json!({
            "resource_type": "Z", "cpu_cores": -1, "memory_gib": "lots", "hosts": 0,
            "together": "nearby", "region": "1", "max_latency_ms": 5, "providers": "P00001",
            "availability": "soon", "colour": "red", "max_price_per_hour_cny": "-3",
            "accelerator": {"count": 99, "nvlink": "yes", "speed": 1},
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        for field in [
            "resource_type",
            "cpu_cores",
            "memory_gib",
            "hosts",
            "together",
            "region",
            "user_region",
            "providers",
            "availability",
            "max_price_per_hour_cny",
            "colour",
            "accelerator.count",
            "accelerator.nvlink",
            "accelerator.speed",
        ] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
    }

    #[test]
    fn a_total_capacity_is_read_in_tflops_and_its_bad_forms_named() {
        let d = parse(&json!({"capacity": {"precision": "FP16", "tflops": 2000}})).unwrap();
        assert_eq!(
            d.capacity,
            Some(CapacityDemand {
                precision: crate::capacity::Precision::Fp16,
                gflops: 2_000_000
            })
        );
        let named = |body: Value, field: &str| {
            let errors = parse(&body).unwrap_err();
            assert!(
                errors.0.iter().any(|e| e.field == field),
                "{field} in {errors:?}"
            );
        };
        named(
            json!({"capacity": {"precision": "fp4", "tflops": 1}}),
            "capacity.precision",
        );
        named(json!({"capacity": {"tflops": 1}}), "capacity.precision");
        named(
            json!({"capacity": {"precision": "fp16"}}),
            "capacity.tflops",
        );
        named(
            json!({"capacity": {"precision": "fp16", "tflops": 0}}),
            "capacity.tflops",
        );
        named(
            json!({"capacity": {"precision": "fp16", "tflops": 2e9}}),
            "capacity.tflops",
        );
        named(
            json!({"capacity": {"precision": "fp16", "tflops": 1, "sparse": true}}),
            "capacity.sparse",
        );
        named(json!({"capacity": 2000}), "capacity");
        named(json!({"region": "99"}), "region");
        named(
            json!({"capacity": {"precision": "fp16", "tflops": null}}),
            "capacity.tflops",
        );
        named(
            json!({"capacity": {"precision": null, "tflops": 1}}),
            "capacity.precision",
        );
        named(
            json!({"capacity": {"precision": "fp16", "tflops": 1}, "hosts": 2}),
            "hosts",
        );
        // Together with a total: as many hosts as it takes, in one region.
        parse(&json!({"capacity": {"precision": "fp16", "tflops": 1}, "together": "region"}))
            .unwrap();
    }

    #[test]
    fn a_typical_demand_reads_as_meant() {
        let d = parse(&json!({
            "accelerator": {"model": "H100", "count": 8, "min_memory_gib": 80},
            "hosts": 4, "together": "region", "region": "44", "user_region": "440305",
            "max_latency_ms": 10, "availability": "installed",
        }))
        .unwrap();
        let a = d.accelerator.as_ref().unwrap();
        assert_eq!((a.model.as_deref(), a.count), (Some("h100"), 8));
        assert_eq!(a.min_memory_bytes, Some(80 << 30));
        assert_eq!(
            (d.hosts, d.together, d.installed),
            (4, Together::Region, true)
        );
        assert_eq!(d.limit, 20);
        assert!(
            parse(&json!({})).is_ok(),
            "an empty demand asks for any free host"
        );
        assert!(parse(&json!([1])).is_err());
    }
}
