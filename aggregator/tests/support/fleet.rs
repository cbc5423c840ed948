//! A fleet built in memory the way ingest builds it: stored host and
//! resource rows, then one sample per host observed. Shared by the tests
//! that read a fleet (selection, market reports).

#![allow(dead_code)]

use suanli_aggregator::{
    catalog::Catalog,
    store::{CatalogRow, HostRow, Provider},
};
use suanli_protocol::{
    identifier::ResourceType,
    model::{
        AcceleratorVendor, CpuInventory, FilesystemSample, GpuInventory, GpuSample, HostInventory,
        HostSample, InfinibandPort, InfinibandPortSample, NvLinkSample, SlurmNode,
    },
    stream::InventoryUpdate,
};

pub const NOW: u64 = 1_800_000_000_000;
pub const GIB: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct Gpu {
    pub name: &'static str,
    pub memory_gib: u64,
    pub utilization: u32,
    pub used_gib: u64,
    pub nvlink: bool,
    pub mig: bool,
}

pub fn gpu(name: &'static str, memory_gib: u64) -> Gpu {
    Gpu {
        name,
        memory_gib,
        utilization: 0,
        used_gib: 0,
        nvlink: false,
        mig: false,
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub provider: &'static str,
    pub region: &'static str,
    pub industry: &'static str,
    pub cpus: u32,
    pub cpu_util: f64,
    pub memory_gib: u64,
    pub used_gib: u64,
    pub disk_total_gib: u64,
    pub disk_free_gib: u64,
    pub gpus: Vec<Gpu>,
    pub ib: Option<(f64, &'static str)>,
    pub slurm: bool,
    pub age_ms: Option<u64>,
    pub revoked: bool,
    /// Listed prices, 0.0001 CNY per hour: (any accelerator, a core).
    pub price: Option<(i64, i64)>,
}

pub fn spec() -> Spec {
    Spec {
        provider: "P00001",
        region: "110108",
        industry: "I65",
        cpus: 64,
        cpu_util: 10.0,
        memory_gib: 512,
        used_gib: 64,
        disk_total_gib: 2000,
        disk_free_gib: 1500,
        gpus: Vec::new(),
        ib: None,
        slurm: false,
        age_ms: Some(1_000),
        revoked: false,
        price: None,
    }
}

/// Builds a catalog from specs; host ids are 1.. in order.
pub fn fleet(specs: &[Spec]) -> Catalog {
    let catalog = Catalog::default();
    let mut hosts = Vec::new();
    let mut rows = Vec::new();
    let mut resource = 0;
    for (i, s) in specs.iter().enumerate() {
        let host_id = i as i64 + 1;
        let inventory = HostInventory {
            hostname: format!("h{host_id}"),
            memory_total_bytes: Some(s.memory_gib * GIB),
            cpu: CpuInventory {
                logical_cpus: s.cpus,
                physical_cores: Some(s.cpus / 2),
                model_name: Some("Xeon".into()),
                vector_extensions: vec!["avx2".into(), "fma".into()],
                base_frequency_mhz: Some(2_000),
                ..Default::default()
            },
            gpus: s
                .gpus
                .iter()
                .enumerate()
                .map(|(g, gpu)| GpuInventory {
                    index: g as u32,
                    uuid: Some(format!("GPU-{host_id}-{g}")),
                    name: Some(gpu.name.into()),
                    vendor: if gpu.name.starts_with("Ascend") {
                        AcceleratorVendor::Huawei
                    } else {
                        AcceleratorVendor::Nvidia
                    },
                    kind: if gpu.name.starts_with("Ascend") {
                        AcceleratorVendor::Huawei.kind()
                    } else {
                        AcceleratorVendor::Nvidia.kind()
                    },
                    memory_total_bytes: Some(gpu.memory_gib * GIB),
                    mig_enabled: Some(gpu.mig),
                    ..Default::default()
                })
                .collect(),
            infiniband_ports: s
                .ib
                .iter()
                .map(|(_, fabric)| InfinibandPort {
                    device: "mlx5_0".into(),
                    port: 1,
                    link_layer: Some("InfiniBand".into()),
                    subnet_prefix: Some(fabric.to_string()),
                    sm_lid: Some(1),
                    ..Default::default()
                })
                .collect(),
            slurm: s.slurm.then(|| SlurmNode {
                node_name: format!("h{host_id}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        hosts.push(HostRow {
            host_id,
            hostname: format!("h{host_id}"),
            // Where the host is; its provider is registered elsewhere. (One
            // provider row per host: industries are per spec here.)
            region: Some(s.region.into()),
            provider: Provider {
                id: host_id,
                owner_code: s.provider.into(),
                name: s.provider.into(),
                uscc: String::new(),
                region: "110000".into(),
                industry: s.industry.into(),
                kind: "provider".into(),
                contact: String::new(),
                uscc_verified: true,
            },
            revoked: s.revoked,
            last_seen_ms: None,
            rtt_us: Some(2_000),
            inventory: Some(
                InventoryUpdate {
                    inventory: inventory.clone(),
                    unsupported: Vec::new(),
                }
                .encode(),
            ),
        });
        resource += 1;
        rows.push(CatalogRow {
            resource_id: resource,
            identifier: format!("HOST-{host_id}"),
            resource_type: ResourceType::GeneralCompute.name_en().into(),
            resource_key: format!("host:m{host_id}"),
            host_id,
        });
        for g in &inventory.gpus {
            resource += 1;
            rows.push(CatalogRow {
                resource_id: resource,
                identifier: format!("GPU-{host_id}-{}", g.index),
                resource_type: ResourceType::AiAccelerator.name_en().into(),
                resource_key: format!("gpu:{}", g.uuid.clone().unwrap()),
                host_id,
            });
        }
    }
    catalog.install(hosts, rows);
    for (i, s) in specs.iter().enumerate() {
        let Some(age) = s.age_ms else { continue };
        let host_id = i as i64 + 1;
        let mut sample = HostSample {
            collected_at_unix_ms: NOW - age,
            ..Default::default()
        };
        sample.cpu.utilization_percent = Some(s.cpu_util);
        sample.memory.total_bytes = Some(s.memory_gib * GIB);
        sample.memory.used_bytes = Some(s.used_gib * GIB);
        sample.filesystems = vec![FilesystemSample {
            mount_point: "/".into(),
            total_bytes: Some(s.disk_total_gib * GIB),
            available_bytes: Some(s.disk_free_gib * GIB),
            ..Default::default()
        }];
        sample.gpus = s
            .gpus
            .iter()
            .enumerate()
            .map(|(g, gpu)| GpuSample {
                index: g as u32,
                uuid: Some(format!("GPU-{host_id}-{g}")),
                utilization_percent: Some(gpu.utilization),
                memory_total_bytes: Some(gpu.memory_gib * GIB),
                memory_used_bytes: Some(gpu.used_gib * GIB),
                nvlinks: if gpu.nvlink {
                    vec![NvLinkSample {
                        link: 0,
                        active: true,
                        version: Some(4),
                    }]
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
            .collect();
        sample.infiniband_ports =
            s.ib.iter()
                .map(|(gbps, _)| InfinibandPortSample {
                    device: "mlx5_0".into(),
                    port: 1,
                    state: Some("ACTIVE".into()),
                    rate_gbps: Some(*gbps),
                    ..Default::default()
                })
                .collect();
        catalog.observe(host_id, 1, &sample, NOW - age);
    }
    for (i, s) in specs.iter().enumerate() {
        if let Some((gpu, core)) = s.price {
            let price = |resource, per_hour_cny_e4| suanli_aggregator::price::Price {
                resource,
                model: String::new(),
                per_hour_cny_e4,
            };
            catalog.set_prices(
                i as i64 + 1,
                suanli_aggregator::price::PriceList(vec![
                    price(suanli_aggregator::price::Priced::Accelerator, gpu),
                    price(suanli_aggregator::price::Priced::Cpu, core),
                ]),
            );
        }
    }
    catalog
}
