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

/// What an enrolling host says it is: its machine-id, and the firmware's
/// system UUID and board serial where it could read them. The machine-id
/// alone is copied with every disk image and readable by any user; the
/// hardware tells a clone from the host it was copied from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    pub machine_id: String,
    /// `uuid=…;serial=…` of what was readable and not a firmware placeholder.
    pub hardware: Option<String>,
}

/// How an identity matches the hosts already known by its machine-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// The host under the machine-id itself: same hardware, or hardware
    /// unknown on one side (an older agent, an unreadable DMI).
    MachineId,
    /// Another machine with this machine-id: it is keyed by both.
    Distinct(String),
}

impl HostIdentity {
    /// None without a usable machine-id.
    pub fn claimed(
        machine_id: Option<&str>,
        product_uuid: Option<&str>,
        board_serial: Option<&str>,
    ) -> Option<Self> {
        let machine_id = machine_id.map(str::trim).filter(|m| !m.is_empty())?;
        let parts: Vec<String> = [("uuid", product_uuid), ("serial", board_serial)]
            .into_iter()
            .filter_map(|(name, value)| {
                let value = value?.trim().to_ascii_lowercase();
                (!firmware_placeholder(&value)).then(|| format!("{name}={value}"))
            })
            .collect();
        Some(Self {
            machine_id: machine_id.to_owned(),
            hardware: (!parts.is_empty()).then(|| parts.join(";")),
        })
    }

    /// Which host this is, given the hardware recorded for the host under
    /// its machine-id (`None` when none is recorded).
    pub fn matches(&self, recorded: Option<&str>) -> HostMatch {
        match (&self.hardware, recorded) {
            (Some(mine), Some(theirs)) if mine != theirs => {
                HostMatch::Distinct(format!("{}/{mine}", self.machine_id))
            }
            _ => HostMatch::MachineId,
        }
    }
}

/// Values firmware ships when nobody set one: not an identity.
fn firmware_placeholder(value: &str) -> bool {
    const PLACEHOLDERS: &[&str] = &[
        "to be filled by o.e.m.",
        "default string",
        "not specified",
        "not applicable",
        "none",
        "system serial number",
        "base board serial number",
        "0123456789",
        // An SMBIOS UUID some boards ship unchanged on every unit.
        "03000200-0400-0500-0006-000700080009",
    ];
    let digits: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    digits.is_empty()
        || digits.chars().all(|c| c == '0')
        || digits.chars().all(|c| c == 'f')
        || PLACEHOLDERS.contains(&value)
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

    #[test]
    fn a_clone_with_other_hardware_is_another_host() {
        let original = HostIdentity::claimed(
            Some("0123abcd"),
            Some("4C4C4544-0042-3510-8052-B4C04F384E32"),
            Some("CN7016359300AB"),
        )
        .unwrap();
        assert_eq!(
            original.hardware.as_deref(),
            Some("uuid=4c4c4544-0042-3510-8052-b4c04f384e32;serial=cn7016359300ab")
        );
        assert_eq!(
            original.matches(original.hardware.as_deref()),
            HostMatch::MachineId
        );
        // Recorded before the hardware was sent, or unreadable now: the same host.
        assert_eq!(original.matches(None), HostMatch::MachineId);
        let unreadable = HostIdentity::claimed(Some("0123abcd"), None, None).unwrap();
        assert_eq!(unreadable.matches(Some("uuid=x")), HostMatch::MachineId);
        let clone = HostIdentity::claimed(
            Some("0123abcd"),
            Some("5d3f0000-1111-2222-3333-444455556666"),
            None,
        )
        .unwrap();
        assert_eq!(
            clone.matches(original.hardware.as_deref()),
            HostMatch::Distinct("0123abcd/uuid=5d3f0000-1111-2222-3333-444455556666".into())
        );
    }

    #[test]
    fn firmware_placeholders_and_missing_machine_ids_are_no_identity() {
        assert_eq!(HostIdentity::claimed(None, Some("u"), None), None);
        assert_eq!(HostIdentity::claimed(Some("  "), None, None), None);
        for placeholder in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            "To Be Filled By O.E.M.",
            "Default string",
            "",
        ] {
            let id =
                HostIdentity::claimed(Some("m"), Some(placeholder), Some(placeholder)).unwrap();
            assert_eq!(id.hardware, None, "{placeholder:?}");
        }
    }
}
