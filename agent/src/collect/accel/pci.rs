//! Which accelerator vendors a host has, from the PCI bus in sysfs: read
//! before any vendor library is loaded, so only present vendors' are.

use std::collections::BTreeMap;

use suanli_protocol::model::AcceleratorVendor;

use super::HostRoot;

/// The vendor whose accelerators carry this PCI vendor ID.
pub fn vendor(id: u16) -> Option<AcceleratorVendor> {
    Some(match id {
        0x10de => AcceleratorVendor::Nvidia,
        0x19e5 => AcceleratorVendor::Huawei,
        0x1d94 => AcceleratorVendor::Hygon,
        0x1002 => AcceleratorVendor::Amd,
        0xcabc => AcceleratorVendor::Cambricon,
        0x1e3e => AcceleratorVendor::Iluvatar,
        0x9999 => AcceleratorVendor::Metax,
        0x1ed5 => AcceleratorVendor::MooreThreads,
        _ => return None,
    })
}

/// Display controllers (0x03), processing accelerators (0x12, where Ascend
/// and Hygon K100 sit) and co-processors (0x0b40). Huawei and Hygon also
/// make NICs and host bridges; their classes leave them out.
pub fn is_accelerator_class(class: u32) -> bool {
    matches!(class >> 16, 0x03 | 0x12) || class >> 8 == 0x0b40
}

/// Is this device one of `vendor`'s accelerators? Every Huawei server's
/// BMC shows a VGA controller (Hi171x, class 0x0300) under Huawei's ID:
/// Ascend NPUs are processing accelerators only.
pub fn is_accelerator(vendor: AcceleratorVendor, class: u32) -> bool {
    match vendor {
        AcceleratorVendor::Huawei => class >> 16 == 0x12,
        _ => is_accelerator_class(class),
    }
}

/// Accelerators on the bus, counted by vendor.
pub fn accelerators(root: &HostRoot) -> BTreeMap<AcceleratorVendor, usize> {
    let mut found = BTreeMap::new();
    let dir = "/sys/bus/pci/devices";
    for address in root.entries(dir).unwrap_or_default() {
        let hex = |attr: &str| {
            let text = root.attribute(format!("{dir}/{address}/{attr}"))?;
            u32::from_str_radix(text.trim_start_matches("0x"), 16).ok()
        };
        let (Some(id), Some(class)) = (hex("vendor"), hex("class")) else {
            continue;
        };
        if let Some(vendor) = u16::try_from(id).ok().and_then(vendor)
            && is_accelerator(vendor, class)
        {
            *found.entry(vendor).or_default() += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nics_and_bridges_are_not_accelerators() {
        assert!(is_accelerator_class(0x120000), "Ascend 910B, Hygon K100");
        assert!(is_accelerator_class(0x030200), "3D controller");
        assert!(is_accelerator_class(0x0b4000), "co-processor");
        assert!(!is_accelerator_class(0x020000), "Huawei Hi1822 NIC");
        assert!(!is_accelerator_class(0x060400), "bridge");
        assert_eq!(vendor(0x19e5), Some(AcceleratorVendor::Huawei));
        assert!(
            !is_accelerator(AcceleratorVendor::Huawei, 0x030000),
            "a Huawei BMC's VGA"
        );
        assert!(is_accelerator(AcceleratorVendor::Huawei, 0x120000));
        assert_eq!(vendor(0x8086), None);
    }

    #[test]
    fn counts_the_fixture_hosts_accelerators() {
        let hosts =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hosts");
        let count = |host: &str| accelerators(&HostRoot::at(hosts.join(host)));
        assert_eq!(
            count("kunpeng-ascend"),
            BTreeMap::from([(AcceleratorVendor::Huawei, 8)])
        );
        assert_eq!(
            count("hygon-dcu"),
            BTreeMap::from([(AcceleratorVendor::Hygon, 8)])
        );
        assert!(count("phytium").is_empty());
    }
}
