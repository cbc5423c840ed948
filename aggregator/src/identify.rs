//! Minting Suanli identifiers (算力标识) for what a host reports.
//!
//! A resource is known by a stable key, never by its connection: a host by
//! its machine-id (`host:<machine-id>`), a GPU by its UUID (`gpu:<uuid>`).
//! The first time a key is seen it gets an identifier under this node's
//! prefix, the provider's owner code, industry and region, and a serial
//! (the resource's row id); from then on the key maps to that identifier,
//! across reconnects, restarts and agent reinstalls.

use suanli_protocol::{
    identifier::{
        Identifier, Industry, NodePrefix, OwnerCode, RegionCode, ResourceType, Serial, SpecCode,
    },
    model::{GpuInventory, HostInventory},
};

use crate::fleet::Owner;

/// A resource seen in an inventory, not yet named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub key: String,
    pub resource_type: ResourceType,
    pub spec: SpecCode,
}

/// The resources an inventory describes: the host (general compute) and each GPU.
pub fn sightings(machine_key: &str, inventory: &HostInventory) -> Vec<Sighting> {
    let mut out = vec![Sighting {
        key: format!("host:{machine_key}"),
        resource_type: ResourceType::GeneralCompute,
        spec: host_spec(inventory),
    }];
    out.extend(inventory.gpus.iter().filter_map(|gpu| {
        Some(Sighting {
            key: format!("gpu:{}", gpu.uuid.as_deref()?),
            resource_type: ResourceType::AiAccelerator,
            spec: gpu_spec(gpu),
        })
    }));
    out
}

/// `X86-64C`: architecture family and logical CPUs.
pub fn host_spec(inventory: &HostInventory) -> SpecCode {
    let arch = inventory
        .os
        .architecture
        .as_deref()
        .and_then(crate::fleet::cpu_family)
        .unwrap_or("CPU");
    spec(&format!("{arch}-{}C", inventory.cpu.logical_cpus))
}

/// `H100-80G`, `910B3-64G`: the model token of the accelerator's name
/// (any vendor's) and its memory in GiB.
pub fn gpu_spec(gpu: &GpuInventory) -> SpecCode {
    let model = gpu
        .name
        .as_deref()
        .or(gpu.model.as_deref())
        .and_then(crate::accel::model_token)
        .unwrap_or_else(|| gpu.kind.as_str().to_ascii_uppercase());
    match gpu.memory_total_bytes {
        Some(bytes) => spec(&format!("{model}-{}G", (bytes + (1 << 29)) >> 30)),
        None => spec(&model),
    }
}

/// Upper-cases and trims to the spec grammar; falls back to `UNKNOWN`.
fn spec(text: &str) -> SpecCode {
    let mut clean: String = text
        .to_ascii_uppercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(SpecCode::MAX_LEN)
        .collect();
    while clean.ends_with('-') {
        clean.pop();
    }
    SpecCode::parse(&clean)
        .or_else(|_| SpecCode::parse("UNKNOWN"))
        .expect("UNKNOWN is a valid spec")
}

/// The identifier for a resource's serial number.
pub fn mint(
    node: &NodePrefix,
    owner: &Owner,
    sighting: &Sighting,
    serial: i64,
) -> Result<Identifier, suanli_protocol::identifier::FieldError> {
    Ok(Identifier::new(
        node.clone(),
        OwnerCode::parse(&owner.code)?,
        Industry::parse(&owner.industry)?,
        RegionCode::parse(&owner.region)?,
        sighting.resource_type,
        sighting.spec.clone(),
        Serial::parse(&format!("{serial:06}"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use suanli_protocol::model::{AcceleratorKind, AcceleratorVendor};

    fn gpu(name: &str, gib: u64) -> GpuInventory {
        GpuInventory {
            name: Some(name.into()),
            memory_total_bytes: Some(gib << 30),
            uuid: Some("GPU-1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn specs_read_like_the_hardware() {
        assert_eq!(
            gpu_spec(&gpu("NVIDIA H100 80GB HBM3", 80)).as_str(),
            "H100-80G"
        );
        assert_eq!(
            gpu_spec(&gpu("NVIDIA GeForce RTX 4090", 24)).as_str(),
            "4090-24G"
        );
        assert_eq!(
            gpu_spec(&gpu("NVIDIA A800-SXM4-80GB", 80)).as_str(),
            "A800-80G"
        );
        let ascend = GpuInventory {
            vendor: AcceleratorVendor::Huawei,
            kind: AcceleratorKind::Npu,
            ..gpu("Ascend 910B3", 64)
        };
        assert_eq!(gpu_spec(&ascend).as_str(), "910B3-64G");
        let hygon = GpuInventory {
            memory_total_bytes: Some(65520 << 20),
            ..gpu("Hygon K100_AI", 0)
        };
        assert_eq!(gpu_spec(&hygon).as_str(), "K100-64G");
        assert_eq!(
            gpu_spec(&GpuInventory::default()).as_str(),
            "GPU",
            "nothing known"
        );
        let npu = GpuInventory {
            kind: AcceleratorKind::Npu,
            ..GpuInventory::default()
        };
        assert_eq!(gpu_spec(&npu).as_str(), "NPU");
        let mut inv = HostInventory::default();
        inv.os.architecture = Some("x86_64".into());
        inv.cpu.logical_cpus = 64;
        assert_eq!(host_spec(&inv).as_str(), "X86-64C");
        inv.os.architecture = Some("loongarch64".into());
        assert_eq!(host_spec(&inv).as_str(), "LA-64C");
    }

    #[test]
    fn minted_identifiers_parse_back() {
        let owner = Owner {
            id: 1,
            code: "P00001".into(),
            name: "x".into(),
            region: "110108".into(),
            industry: "I65".into(),
            uscc: String::new(),
        };
        let mut inv = HostInventory::default();
        inv.gpus.push(gpu("NVIDIA H100 80GB HBM3", 80));
        for (i, s) in sightings("m1", &inv).iter().enumerate() {
            let id = mint(&NodePrefix::parse("CN.11").unwrap(), &owner, s, i as i64).unwrap();
            assert_eq!(Identifier::parse(&id.to_string()).unwrap(), id);
        }
    }
}
