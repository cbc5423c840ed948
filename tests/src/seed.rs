//! Many hosts stored straight into a stopped node's SQLite database, for
//! benchmarks: providers, hosts with real protobuf inventories (8
//! accelerators of one of seven models each) and their resources, with
//! identifiers minted by the grammar the node uses under its prefix.

use std::path::Path;

use suanli_protocol::{
    identifier::{
        Identifier, Industry, NodePrefix, OwnerCode, RegionCode, ResourceType, Serial, SpecCode,
    },
    model::{GpuInventory, HostInventory},
    stream::InventoryUpdate,
};

pub const MODELS: &[(&str, &str, u64)] = &[
    ("NVIDIA H100 80GB HBM3", "H100-80G", 80),
    ("NVIDIA A100-SXM4-80GB", "A100-80G", 80),
    ("NVIDIA A800-SXM4-80GB", "A800-80G", 80),
    ("NVIDIA H800 PCIe", "H800-80G", 80),
    ("NVIDIA GeForce RTX 4090", "4090-24G", 24),
    ("NVIDIA L40S", "L40S-48G", 48),
    ("Ascend 910B", "910B-64G", 64),
];
pub const REGIONS: &[&str] = &[
    "110000", "310000", "440300", "440100", "330100", "510100", "500000", "420100", "610100",
    "320100", "370200", "150100", "520100", "620100", "640100", "350100", "430100", "210100",
];
pub const PROVIDERS: usize = 40;
pub const GPUS_PER_HOST: usize = 8;

/// What to store.
#[derive(Debug, Clone)]
pub struct Fleet<'a> {
    /// The node's prefix, under which identifiers are minted.
    pub prefix: &'a str,
    /// The regions of the providers, round robin (GB/T 2260).
    pub regions: &'a [&'a str],
    /// Resources in all: each host is one, and each of its accelerators.
    pub resources: usize,
}

/// Stores `fleet` into the stopped node's SQLite database at `data`, in one
/// transaction; the identifiers minted, in order.
pub async fn hosts(data: &Path, fleet: &Fleet<'_>) -> anyhow::Result<Vec<String>> {
    let resources = fleet.resources;
    use sqlx::{Connection as _, Row as _};
    let url = format!("sqlite://{}", data.join("suanli.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    let mut tx = conn.begin().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let first_host: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM hosts")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let first_provider: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM providers")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let mut providers = Vec::new();
    for i in 0..PROVIDERS {
        let id = first_provider + i as i64;
        let region = fleet.regions[i % fleet.regions.len()];
        let code = format!("P{id:05}");
        sqlx::query(
            "INSERT INTO providers (id, owner_code, name, uscc, region, industry, created_at_ms, kind, contact) \
             VALUES ($1, $2, $3, $4, $5, 'I65', $6, 'provider', '')",
        )
        .bind(id)
        .bind(&code)
        .bind(format!("算力提供商 {i}"))
        .bind(format!("BENCH{id:013}"))
        .bind(region)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        providers.push((id, code, region));
    }
    let node = NodePrefix::parse(fleet.prefix)?;
    let mut identifiers = Vec::with_capacity(resources);
    let mut resource_id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM resources")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let mut host_id = first_host;
    while identifiers.len() < resources {
        host_id += 1;
        let (provider_id, code, region) = &providers[host_id as usize % providers.len()];
        let model = MODELS[host_id as usize % MODELS.len()];
        let gpus = GPUS_PER_HOST.min(resources - identifiers.len() - 1);
        let inventory = HostInventory {
            hostname: format!("gpu-{host_id:06}"),
            machine_id: Some(format!("bench-{host_id}")),
            memory_total_bytes: Some(2 << 40),
            cpu: suanli_protocol::model::CpuInventory {
                model_name: Some("Intel(R) Xeon(R) Platinum 8480+".into()),
                logical_cpus: 224,
                ..Default::default()
            },
            gpus: (0..gpus)
                .map(|g| GpuInventory {
                    index: g as u32,
                    uuid: Some(format!("GPU-bench-{host_id}-{g}")),
                    name: Some(model.0.into()),
                    memory_total_bytes: Some(model.2 << 30),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let blob = InventoryUpdate {
            inventory: inventory.clone(),
            unsupported: Vec::new(),
        }
        .encode();
        sqlx::query(
            "INSERT INTO hosts (id, provider_id, machine_key, hostname, cert_sha256, enrolled_at_ms, \
             last_seen_ms, inventory) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(host_id)
        .bind(provider_id)
        .bind(format!("bench-{host_id}"))
        .bind(&inventory.hostname)
        .bind(format!("bench-cert-{host_id}"))
        .bind(now)
        .bind(now)
        .bind(blob)
        .execute(&mut *tx)
        .await?;
        let owner = OwnerCode::parse(code)?;
        let industry = Industry::parse("I65")?;
        let location = RegionCode::parse(region)?;
        let mut mint = |key: String,
                        kind: ResourceType,
                        spec: &str|
         -> anyhow::Result<(i64, String, String, ResourceType)> {
            resource_id += 1;
            let identifier = Identifier::new(
                node.clone(),
                owner.clone(),
                industry.clone(),
                location.clone(),
                kind,
                SpecCode::parse(spec)?,
                Serial::parse(&format!("{resource_id:06}"))?,
            )
            .to_string();
            Ok((resource_id, key, identifier, kind))
        };
        let mut rows = vec![mint(
            format!("host:bench-{host_id}"),
            ResourceType::GeneralCompute,
            "X86-224C",
        )?];
        for g in &inventory.gpus {
            rows.push(mint(
                format!("gpu:{}", g.uuid.as_deref().unwrap_or_default()),
                ResourceType::AiAccelerator,
                model.1,
            )?);
        }
        for (id, key, identifier, kind) in rows {
            sqlx::query(
                "INSERT INTO resources (id, host_id, resource_key, identifier, resource_type, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(host_id)
            .bind(key)
            .bind(&identifier)
            .bind(kind.name_en())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            identifiers.push(identifier);
        }
    }
    tx.commit().await?;
    Ok(identifiers)
}

/// The hourly rollup of an hour whose 360 ten-second reports were all
/// `report`: every count times 360 (utilization too: a sum of readings),
/// `periods` 360.
pub fn hour_of(
    report: &suanli_protocol::node::MarketReport,
) -> suanli_protocol::node::MarketReport {
    use suanli_protocol::node::{CapacityGroup, MarketReport, PrecisionCapacity};
    let times = |g: &CapacityGroup| CapacityGroup {
        registered: g.registered * 360,
        online: g.online * 360,
        stale: g.stale * 360,
        offline: g.offline * 360,
        available: g.available * 360,
        healthy: g.healthy * 360,
        degraded: g.degraded * 360,
        critical: g.critical * 360,
        health_unknown: g.health_unknown * 360,
        memory_bytes: g.memory_bytes * 360,
        available_memory_bytes: g.available_memory_bytes * 360,
        logical_cpus: g.logical_cpus * 360,
        available_logical_cpus: g.available_logical_cpus * 360,
        utilization_permille_sum: g.utilization_permille_sum * 360,
        utilization_readings: g.utilization_readings * 360,
        capacity: g
            .capacity
            .iter()
            .map(|c| PrecisionCapacity {
                registered_gflops: c.registered_gflops * 360,
                available_gflops: c.available_gflops * 360,
                unrated: c.unrated * 360,
                ..c.clone()
            })
            .collect(),
        ..g.clone()
    };
    MarketReport {
        period_ms: 3_600_000,
        periods: 360,
        groups: report.groups.iter().map(times).collect(),
        ..report.clone()
    }
}
