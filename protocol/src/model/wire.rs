//! Conversions between the domain model and the generated wire types.

use super::*;
use crate::proto;

impl From<ProblemKind> for proto::problem::Kind {
    fn from(kind: ProblemKind) -> Self {
        match kind {
            ProblemKind::Unspecified => Self::Unspecified,
            ProblemKind::Unsupported => Self::Unsupported,
            ProblemKind::Failed => Self::Failed,
            ProblemKind::TimedOut => Self::TimedOut,
        }
    }
}

impl From<proto::problem::Kind> for ProblemKind {
    fn from(kind: proto::problem::Kind) -> Self {
        match kind {
            proto::problem::Kind::Unspecified => Self::Unspecified,
            proto::problem::Kind::Unsupported => Self::Unsupported,
            proto::problem::Kind::Failed => Self::Failed,
            proto::problem::Kind::TimedOut => Self::TimedOut,
        }
    }
}

impl From<HostReport> for proto::HostReport {
    fn from(m: HostReport) -> Self {
        Self {
            inventory: Some(m.inventory.into()),
            sample: Some(m.sample.into()),
            problems: m.problems.into_iter().map(Into::into).collect(),
            agent_version: m.agent_version,
        }
    }
}

impl From<proto::HostReport> for HostReport {
    fn from(p: proto::HostReport) -> Self {
        Self {
            inventory: p.inventory.map(Into::into).unwrap_or_default(),
            sample: p.sample.map(Into::into).unwrap_or_default(),
            problems: p.problems.into_iter().map(Into::into).collect(),
            agent_version: p.agent_version,
        }
    }
}

impl From<Problem> for proto::Problem {
    fn from(m: Problem) -> Self {
        Self {
            collector: m.collector,
            kind: proto::problem::Kind::from(m.kind) as i32,
            message: m.message,
        }
    }
}

impl From<proto::Problem> for Problem {
    fn from(p: proto::Problem) -> Self {
        Self {
            kind: ProblemKind::from(p.kind()),
            collector: p.collector,
            message: p.message,
        }
    }
}

impl From<HostInventory> for proto::HostInventory {
    fn from(m: HostInventory) -> Self {
        Self {
            hostname: m.hostname,
            machine_id: m.machine_id,
            os: Some(m.os.into()),
            boot_time_unix_seconds: m.boot_time_unix_seconds,
            dmi: Some(m.dmi.into()),
            cpu: Some(m.cpu.into()),
            memory_total_bytes: m.memory_total_bytes,
            swap_total_bytes: m.swap_total_bytes,
            numa_nodes: m.numa_nodes.into_iter().map(Into::into).collect(),
            filesystems: m.filesystems.into_iter().map(Into::into).collect(),
            network_interfaces: m.network_interfaces.into_iter().map(Into::into).collect(),
            gpu_system: Some(m.gpu_system.into()),
            gpus: m.gpus.into_iter().map(Into::into).collect(),
            infiniband_ports: m.infiniband_ports.into_iter().map(Into::into).collect(),
            slurm: m.slurm.map(Into::into),
            accelerator_libraries: m
                .accelerator_libraries
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<proto::HostInventory> for HostInventory {
    fn from(p: proto::HostInventory) -> Self {
        Self {
            hostname: p.hostname,
            machine_id: p.machine_id,
            os: p.os.map(Into::into).unwrap_or_default(),
            boot_time_unix_seconds: p.boot_time_unix_seconds,
            dmi: p.dmi.map(Into::into).unwrap_or_default(),
            cpu: p.cpu.map(Into::into).unwrap_or_default(),
            memory_total_bytes: p.memory_total_bytes,
            swap_total_bytes: p.swap_total_bytes,
            numa_nodes: p.numa_nodes.into_iter().map(Into::into).collect(),
            filesystems: p.filesystems.into_iter().map(Into::into).collect(),
            network_interfaces: p.network_interfaces.into_iter().map(Into::into).collect(),
            gpu_system: p.gpu_system.map(Into::into).unwrap_or_default(),
            gpus: p.gpus.into_iter().map(Into::into).collect(),
            infiniband_ports: p.infiniband_ports.into_iter().map(Into::into).collect(),
            slurm: p.slurm.map(Into::into),
            accelerator_libraries: p
                .accelerator_libraries
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<OperatingSystem> for proto::OperatingSystem {
    fn from(m: OperatingSystem) -> Self {
        Self {
            name: m.name,
            version: m.version,
            kernel_version: m.kernel_version,
            architecture: m.architecture,
        }
    }
}

impl From<proto::OperatingSystem> for OperatingSystem {
    fn from(p: proto::OperatingSystem) -> Self {
        Self {
            name: p.name,
            version: p.version,
            kernel_version: p.kernel_version,
            architecture: p.architecture,
        }
    }
}

impl From<Dmi> for proto::Dmi {
    fn from(m: Dmi) -> Self {
        Self {
            system_vendor: m.system_vendor,
            product_name: m.product_name,
            product_serial: m.product_serial,
            product_uuid: m.product_uuid,
            board_vendor: m.board_vendor,
            board_name: m.board_name,
            bios_vendor: m.bios_vendor,
            bios_version: m.bios_version,
            board_serial: m.board_serial,
        }
    }
}

impl From<proto::Dmi> for Dmi {
    fn from(p: proto::Dmi) -> Self {
        Self {
            system_vendor: p.system_vendor,
            product_name: p.product_name,
            product_serial: p.product_serial,
            product_uuid: p.product_uuid,
            board_vendor: p.board_vendor,
            board_name: p.board_name,
            bios_vendor: p.bios_vendor,
            bios_version: p.bios_version,
            board_serial: p.board_serial,
        }
    }
}

impl From<CpuInventory> for proto::CpuInventory {
    fn from(m: CpuInventory) -> Self {
        Self {
            model_name: m.model_name,
            vendor: m.vendor,
            sockets: m.sockets,
            physical_cores: m.physical_cores,
            logical_cpus: m.logical_cpus,
            max_frequency_mhz: m.max_frequency_mhz,
            vector_extensions: m.vector_extensions,
            base_frequency_mhz: m.base_frequency_mhz,
        }
    }
}

impl From<proto::CpuInventory> for CpuInventory {
    fn from(p: proto::CpuInventory) -> Self {
        Self {
            model_name: p.model_name,
            vendor: p.vendor,
            sockets: p.sockets,
            physical_cores: p.physical_cores,
            logical_cpus: p.logical_cpus,
            max_frequency_mhz: p.max_frequency_mhz,
            vector_extensions: p.vector_extensions,
            base_frequency_mhz: p.base_frequency_mhz,
        }
    }
}

impl From<NumaNode> for proto::NumaNode {
    fn from(m: NumaNode) -> Self {
        Self {
            id: m.id,
            cpu_list: m.cpu_list,
            memory_total_bytes: m.memory_total_bytes,
        }
    }
}

impl From<proto::NumaNode> for NumaNode {
    fn from(p: proto::NumaNode) -> Self {
        Self {
            id: p.id,
            cpu_list: p.cpu_list,
            memory_total_bytes: p.memory_total_bytes,
        }
    }
}

impl From<Filesystem> for proto::Filesystem {
    fn from(m: Filesystem) -> Self {
        Self {
            device: m.device,
            mount_point: m.mount_point,
            fs_type: m.fs_type,
            network: m.network,
            total_bytes: m.total_bytes,
        }
    }
}

impl From<proto::Filesystem> for Filesystem {
    fn from(p: proto::Filesystem) -> Self {
        Self {
            device: p.device,
            mount_point: p.mount_point,
            fs_type: p.fs_type,
            network: p.network,
            total_bytes: p.total_bytes,
        }
    }
}

impl From<NetworkInterface> for proto::NetworkInterface {
    fn from(m: NetworkInterface) -> Self {
        Self {
            name: m.name,
            mac_address: m.mac_address,
            addresses: m.addresses,
            mtu: m.mtu,
            speed_mbps: m.speed_mbps,
            oper_state: m.oper_state,
            r#virtual: m.r#virtual,
        }
    }
}

impl From<proto::NetworkInterface> for NetworkInterface {
    fn from(p: proto::NetworkInterface) -> Self {
        Self {
            name: p.name,
            mac_address: p.mac_address,
            addresses: p.addresses,
            mtu: p.mtu,
            speed_mbps: p.speed_mbps,
            oper_state: p.oper_state,
            r#virtual: p.r#virtual,
        }
    }
}

impl From<GpuSystem> for proto::GpuSystem {
    fn from(m: GpuSystem) -> Self {
        Self {
            driver_version: m.driver_version,
            cuda_driver_version: m.cuda_driver_version,
            nvml_version: m.nvml_version,
        }
    }
}

impl From<proto::GpuSystem> for GpuSystem {
    fn from(p: proto::GpuSystem) -> Self {
        Self {
            driver_version: p.driver_version,
            cuda_driver_version: p.cuda_driver_version,
            nvml_version: p.nvml_version,
        }
    }
}

impl From<GpuInventory> for proto::GpuInventory {
    fn from(m: GpuInventory) -> Self {
        Self {
            index: m.index,
            uuid: m.uuid,
            name: m.name,
            serial: m.serial,
            pci_bus_id: m.pci_bus_id,
            architecture: m.architecture,
            compute_capability: m.compute_capability,
            vbios_version: m.vbios_version,
            memory_total_bytes: m.memory_total_bytes,
            power_limit_milliwatts: m.power_limit_milliwatts,
            slowdown_temperature_celsius: m.slowdown_temperature_celsius,
            shutdown_temperature_celsius: m.shutdown_temperature_celsius,
            max_sm_clock_mhz: m.max_sm_clock_mhz,
            max_memory_clock_mhz: m.max_memory_clock_mhz,
            max_pcie_generation: m.max_pcie_generation,
            max_pcie_width: m.max_pcie_width,
            ecc_enabled: m.ecc_enabled,
            mig_enabled: m.mig_enabled,
            mig_pending: m.mig_pending,
            numa_node: m.numa_node,
            vendor: proto::AcceleratorVendor::from(m.vendor) as i32,
            kind: proto::AcceleratorKind::from(m.kind) as i32,
            model: m.model,
            stable_id_source: match m.stable_id_source {
                StableIdSource::Unspecified => proto::StableIdSource::Unspecified,
                StableIdSource::Uuid => proto::StableIdSource::Uuid,
                StableIdSource::Serial => proto::StableIdSource::Serial,
                StableIdSource::DieId => proto::StableIdSource::DieId,
            } as i32,
        }
    }
}

impl From<proto::GpuInventory> for GpuInventory {
    fn from(p: proto::GpuInventory) -> Self {
        let (vendor, kind, source) = (p.vendor(), p.kind(), p.stable_id_source());
        Self {
            index: p.index,
            uuid: p.uuid,
            name: p.name,
            serial: p.serial,
            pci_bus_id: p.pci_bus_id,
            architecture: p.architecture,
            compute_capability: p.compute_capability,
            vbios_version: p.vbios_version,
            memory_total_bytes: p.memory_total_bytes,
            power_limit_milliwatts: p.power_limit_milliwatts,
            slowdown_temperature_celsius: p.slowdown_temperature_celsius,
            shutdown_temperature_celsius: p.shutdown_temperature_celsius,
            max_sm_clock_mhz: p.max_sm_clock_mhz,
            max_memory_clock_mhz: p.max_memory_clock_mhz,
            max_pcie_generation: p.max_pcie_generation,
            max_pcie_width: p.max_pcie_width,
            ecc_enabled: p.ecc_enabled,
            mig_enabled: p.mig_enabled,
            mig_pending: p.mig_pending,
            numa_node: p.numa_node,
            vendor: vendor.into(),
            kind: kind.into(),
            stable_id_source: match source {
                proto::StableIdSource::Unspecified => StableIdSource::Unspecified,
                proto::StableIdSource::Uuid => StableIdSource::Uuid,
                proto::StableIdSource::Serial => StableIdSource::Serial,
                proto::StableIdSource::DieId => StableIdSource::DieId,
            },
            model: p.model,
        }
    }
}

impl From<InfinibandPort> for proto::InfinibandPort {
    fn from(m: InfinibandPort) -> Self {
        Self {
            device: m.device,
            port: m.port,
            hca_type: m.hca_type,
            firmware_version: m.firmware_version,
            node_guid: m.node_guid,
            link_layer: m.link_layer,
            subnet_prefix: m.subnet_prefix,
            sm_lid: m.sm_lid,
        }
    }
}

impl From<proto::InfinibandPort> for InfinibandPort {
    fn from(p: proto::InfinibandPort) -> Self {
        Self {
            device: p.device,
            port: p.port,
            hca_type: p.hca_type,
            firmware_version: p.firmware_version,
            node_guid: p.node_guid,
            link_layer: p.link_layer,
            subnet_prefix: p.subnet_prefix,
            sm_lid: p.sm_lid,
        }
    }
}

impl From<SlurmNode> for proto::SlurmNode {
    fn from(m: SlurmNode) -> Self {
        Self {
            node_name: m.node_name,
            partitions: m.partitions,
            cpus_total: m.cpus_total,
            gres: m.gres,
            real_memory_bytes: m.real_memory_bytes,
        }
    }
}

impl From<proto::SlurmNode> for SlurmNode {
    fn from(p: proto::SlurmNode) -> Self {
        Self {
            node_name: p.node_name,
            partitions: p.partitions,
            cpus_total: p.cpus_total,
            gres: p.gres,
            real_memory_bytes: p.real_memory_bytes,
        }
    }
}

impl From<HostSample> for proto::HostSample {
    fn from(m: HostSample) -> Self {
        Self {
            collected_at_unix_ms: m.collected_at_unix_ms,
            window_ms: m.window_ms,
            cpu: Some(m.cpu.into()),
            memory: Some(m.memory.into()),
            filesystems: m.filesystems.into_iter().map(Into::into).collect(),
            block_devices: m.block_devices.into_iter().map(Into::into).collect(),
            network_interfaces: m.network_interfaces.into_iter().map(Into::into).collect(),
            temperatures: m.temperatures.into_iter().map(Into::into).collect(),
            gpus: m.gpus.into_iter().map(Into::into).collect(),
            infiniband_ports: m.infiniband_ports.into_iter().map(Into::into).collect(),
            slurm: m.slurm.map(Into::into),
            xid_events: m.xid_events.into_iter().map(Into::into).collect(),
            device_events: m.device_events.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<proto::HostSample> for HostSample {
    fn from(p: proto::HostSample) -> Self {
        Self {
            collected_at_unix_ms: p.collected_at_unix_ms,
            window_ms: p.window_ms,
            cpu: p.cpu.map(Into::into).unwrap_or_default(),
            memory: p.memory.map(Into::into).unwrap_or_default(),
            filesystems: p.filesystems.into_iter().map(Into::into).collect(),
            block_devices: p.block_devices.into_iter().map(Into::into).collect(),
            network_interfaces: p.network_interfaces.into_iter().map(Into::into).collect(),
            temperatures: p.temperatures.into_iter().map(Into::into).collect(),
            gpus: p.gpus.into_iter().map(Into::into).collect(),
            infiniband_ports: p.infiniband_ports.into_iter().map(Into::into).collect(),
            slurm: p.slurm.map(Into::into),
            xid_events: p.xid_events.into_iter().map(Into::into).collect(),
            device_events: p.device_events.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<CpuSample> for proto::CpuSample {
    fn from(m: CpuSample) -> Self {
        Self {
            utilization_percent: m.utilization_percent,
            cores: m.cores.into_iter().map(Into::into).collect(),
            load_average_1m: m.load_average_1m,
            load_average_5m: m.load_average_5m,
            load_average_15m: m.load_average_15m,
            iowait_percent: m.iowait_percent,
        }
    }
}

impl From<proto::CpuSample> for CpuSample {
    fn from(p: proto::CpuSample) -> Self {
        Self {
            utilization_percent: p.utilization_percent,
            cores: p.cores.into_iter().map(Into::into).collect(),
            load_average_1m: p.load_average_1m,
            load_average_5m: p.load_average_5m,
            load_average_15m: p.load_average_15m,
            iowait_percent: p.iowait_percent,
        }
    }
}

impl From<CoreSample> for proto::CoreSample {
    fn from(m: CoreSample) -> Self {
        Self {
            cpu: m.cpu,
            utilization_percent: m.utilization_percent,
            frequency_mhz: m.frequency_mhz,
        }
    }
}

impl From<proto::CoreSample> for CoreSample {
    fn from(p: proto::CoreSample) -> Self {
        Self {
            cpu: p.cpu,
            utilization_percent: p.utilization_percent,
            frequency_mhz: p.frequency_mhz,
        }
    }
}

impl From<MemorySample> for proto::MemorySample {
    fn from(m: MemorySample) -> Self {
        Self {
            total_bytes: m.total_bytes,
            available_bytes: m.available_bytes,
            used_bytes: m.used_bytes,
            swap_total_bytes: m.swap_total_bytes,
            swap_used_bytes: m.swap_used_bytes,
        }
    }
}

impl From<proto::MemorySample> for MemorySample {
    fn from(p: proto::MemorySample) -> Self {
        Self {
            total_bytes: p.total_bytes,
            available_bytes: p.available_bytes,
            used_bytes: p.used_bytes,
            swap_total_bytes: p.swap_total_bytes,
            swap_used_bytes: p.swap_used_bytes,
        }
    }
}

impl From<FilesystemSample> for proto::FilesystemSample {
    fn from(m: FilesystemSample) -> Self {
        Self {
            mount_point: m.mount_point,
            total_bytes: m.total_bytes,
            available_bytes: m.available_bytes,
            used_bytes: m.used_bytes,
            inodes_total: m.inodes_total,
            inodes_free: m.inodes_free,
        }
    }
}

impl From<proto::FilesystemSample> for FilesystemSample {
    fn from(p: proto::FilesystemSample) -> Self {
        Self {
            mount_point: p.mount_point,
            total_bytes: p.total_bytes,
            available_bytes: p.available_bytes,
            used_bytes: p.used_bytes,
            inodes_total: p.inodes_total,
            inodes_free: p.inodes_free,
        }
    }
}

impl From<BlockDeviceSample> for proto::BlockDeviceSample {
    fn from(m: BlockDeviceSample) -> Self {
        Self {
            name: m.name,
            read_bytes_per_second: m.read_bytes_per_second,
            write_bytes_per_second: m.write_bytes_per_second,
            reads_per_second: m.reads_per_second,
            writes_per_second: m.writes_per_second,
            busy_percent: m.busy_percent,
        }
    }
}

impl From<proto::BlockDeviceSample> for BlockDeviceSample {
    fn from(p: proto::BlockDeviceSample) -> Self {
        Self {
            name: p.name,
            read_bytes_per_second: p.read_bytes_per_second,
            write_bytes_per_second: p.write_bytes_per_second,
            reads_per_second: p.reads_per_second,
            writes_per_second: p.writes_per_second,
            busy_percent: p.busy_percent,
        }
    }
}

impl From<NetworkInterfaceSample> for proto::NetworkInterfaceSample {
    fn from(m: NetworkInterfaceSample) -> Self {
        Self {
            name: m.name,
            rx_bytes_per_second: m.rx_bytes_per_second,
            tx_bytes_per_second: m.tx_bytes_per_second,
            rx_packets_per_second: m.rx_packets_per_second,
            tx_packets_per_second: m.tx_packets_per_second,
            rx_errors_total: m.rx_errors_total,
            tx_errors_total: m.tx_errors_total,
            rx_dropped_total: m.rx_dropped_total,
            tx_dropped_total: m.tx_dropped_total,
        }
    }
}

impl From<proto::NetworkInterfaceSample> for NetworkInterfaceSample {
    fn from(p: proto::NetworkInterfaceSample) -> Self {
        Self {
            name: p.name,
            rx_bytes_per_second: p.rx_bytes_per_second,
            tx_bytes_per_second: p.tx_bytes_per_second,
            rx_packets_per_second: p.rx_packets_per_second,
            tx_packets_per_second: p.tx_packets_per_second,
            rx_errors_total: p.rx_errors_total,
            tx_errors_total: p.tx_errors_total,
            rx_dropped_total: p.rx_dropped_total,
            tx_dropped_total: p.tx_dropped_total,
        }
    }
}

impl From<TemperatureSample> for proto::TemperatureSample {
    fn from(m: TemperatureSample) -> Self {
        Self {
            sensor: m.sensor,
            celsius: m.celsius,
            critical_celsius: m.critical_celsius,
        }
    }
}

impl From<proto::TemperatureSample> for TemperatureSample {
    fn from(p: proto::TemperatureSample) -> Self {
        Self {
            sensor: p.sensor,
            celsius: p.celsius,
            critical_celsius: p.critical_celsius,
        }
    }
}

impl From<GpuSample> for proto::GpuSample {
    fn from(m: GpuSample) -> Self {
        Self {
            index: m.index,
            uuid: m.uuid,
            utilization_percent: m.utilization_percent,
            memory_utilization_percent: m.memory_utilization_percent,
            memory_total_bytes: m.memory_total_bytes,
            memory_used_bytes: m.memory_used_bytes,
            memory_free_bytes: m.memory_free_bytes,
            temperature_celsius: m.temperature_celsius,
            power_milliwatts: m.power_milliwatts,
            energy_millijoules: m.energy_millijoules,
            sm_clock_mhz: m.sm_clock_mhz,
            memory_clock_mhz: m.memory_clock_mhz,
            throttle_reasons_mask: m.throttle_reasons_mask,
            throttle_reasons: m.throttle_reasons,
            ecc_corrected_volatile: m.ecc_corrected_volatile,
            ecc_uncorrected_volatile: m.ecc_uncorrected_volatile,
            ecc_corrected_aggregate: m.ecc_corrected_aggregate,
            ecc_uncorrected_aggregate: m.ecc_uncorrected_aggregate,
            retired_pages_single_bit: m.retired_pages_single_bit,
            retired_pages_double_bit: m.retired_pages_double_bit,
            retired_pages_pending: m.retired_pages_pending,
            remapped_rows_correctable: m.remapped_rows_correctable,
            remapped_rows_uncorrectable: m.remapped_rows_uncorrectable,
            remapped_rows_pending: m.remapped_rows_pending,
            remapped_rows_failure: m.remapped_rows_failure,
            pcie_generation: m.pcie_generation,
            pcie_width: m.pcie_width,
            pcie_rx_bytes_per_second: m.pcie_rx_bytes_per_second,
            pcie_tx_bytes_per_second: m.pcie_tx_bytes_per_second,
            pcie_replay_count: m.pcie_replay_count,
            nvlinks: m.nvlinks.into_iter().map(Into::into).collect(),
            processes: m.processes.into_iter().map(Into::into).collect(),
            fan_speed_percent: m.fan_speed_percent,
            performance_state: m.performance_state,
            health: match m.health {
                None => proto::DeviceHealth::Unspecified,
                Some(DeviceHealth::Ok) => proto::DeviceHealth::Ok,
                Some(DeviceHealth::Warning) => proto::DeviceHealth::Warning,
                Some(DeviceHealth::Critical) => proto::DeviceHealth::Critical,
            } as i32,
            health_code: m.health_code,
            error_codes: m.error_codes,
            links: m.links.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<proto::GpuSample> for GpuSample {
    fn from(p: proto::GpuSample) -> Self {
        let health = p.health();
        Self {
            index: p.index,
            uuid: p.uuid,
            utilization_percent: p.utilization_percent,
            memory_utilization_percent: p.memory_utilization_percent,
            memory_total_bytes: p.memory_total_bytes,
            memory_used_bytes: p.memory_used_bytes,
            memory_free_bytes: p.memory_free_bytes,
            temperature_celsius: p.temperature_celsius,
            power_milliwatts: p.power_milliwatts,
            energy_millijoules: p.energy_millijoules,
            sm_clock_mhz: p.sm_clock_mhz,
            memory_clock_mhz: p.memory_clock_mhz,
            throttle_reasons_mask: p.throttle_reasons_mask,
            throttle_reasons: p.throttle_reasons,
            ecc_corrected_volatile: p.ecc_corrected_volatile,
            ecc_uncorrected_volatile: p.ecc_uncorrected_volatile,
            ecc_corrected_aggregate: p.ecc_corrected_aggregate,
            ecc_uncorrected_aggregate: p.ecc_uncorrected_aggregate,
            retired_pages_single_bit: p.retired_pages_single_bit,
            retired_pages_double_bit: p.retired_pages_double_bit,
            retired_pages_pending: p.retired_pages_pending,
            remapped_rows_correctable: p.remapped_rows_correctable,
            remapped_rows_uncorrectable: p.remapped_rows_uncorrectable,
            remapped_rows_pending: p.remapped_rows_pending,
            remapped_rows_failure: p.remapped_rows_failure,
            pcie_generation: p.pcie_generation,
            pcie_width: p.pcie_width,
            pcie_rx_bytes_per_second: p.pcie_rx_bytes_per_second,
            pcie_tx_bytes_per_second: p.pcie_tx_bytes_per_second,
            pcie_replay_count: p.pcie_replay_count,
            nvlinks: p.nvlinks.into_iter().map(Into::into).collect(),
            processes: p.processes.into_iter().map(Into::into).collect(),
            fan_speed_percent: p.fan_speed_percent,
            performance_state: p.performance_state,
            health: match health {
                proto::DeviceHealth::Unspecified => None,
                proto::DeviceHealth::Ok => Some(DeviceHealth::Ok),
                proto::DeviceHealth::Warning => Some(DeviceHealth::Warning),
                proto::DeviceHealth::Critical => Some(DeviceHealth::Critical),
            },
            health_code: p.health_code,
            error_codes: p.error_codes,
            links: p.links.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<NvLinkSample> for proto::NvLinkSample {
    fn from(m: NvLinkSample) -> Self {
        Self {
            link: m.link,
            active: m.active,
            version: m.version,
        }
    }
}

impl From<proto::NvLinkSample> for NvLinkSample {
    fn from(p: proto::NvLinkSample) -> Self {
        Self {
            link: p.link,
            active: p.active,
            version: p.version,
        }
    }
}

impl From<GpuProcess> for proto::GpuProcess {
    fn from(m: GpuProcess) -> Self {
        Self {
            pid: m.pid,
            used_memory_bytes: m.used_memory_bytes,
            name: m.name,
        }
    }
}

impl From<proto::GpuProcess> for GpuProcess {
    fn from(p: proto::GpuProcess) -> Self {
        Self {
            pid: p.pid,
            used_memory_bytes: p.used_memory_bytes,
            name: p.name,
        }
    }
}

impl From<XidEvent> for proto::XidEvent {
    fn from(m: XidEvent) -> Self {
        Self {
            source: m.source,
            pci_bus_id: m.pci_bus_id,
            gpu_index: m.gpu_index,
            xid: m.xid,
            message: m.message,
            observed_at_unix_ms: m.observed_at_unix_ms,
        }
    }
}

impl From<proto::XidEvent> for XidEvent {
    fn from(p: proto::XidEvent) -> Self {
        Self {
            source: p.source,
            pci_bus_id: p.pci_bus_id,
            gpu_index: p.gpu_index,
            xid: p.xid,
            message: p.message,
            observed_at_unix_ms: p.observed_at_unix_ms,
        }
    }
}

impl From<InfinibandPortSample> for proto::InfinibandPortSample {
    fn from(m: InfinibandPortSample) -> Self {
        Self {
            device: m.device,
            port: m.port,
            state: m.state,
            physical_state: m.physical_state,
            rate_gbps: m.rate_gbps,
            rx_bytes_total: m.rx_bytes_total,
            tx_bytes_total: m.tx_bytes_total,
            rx_packets_total: m.rx_packets_total,
            tx_packets_total: m.tx_packets_total,
            symbol_errors_total: m.symbol_errors_total,
            link_downed_total: m.link_downed_total,
            rx_errors_total: m.rx_errors_total,
            rx_bytes_per_second: m.rx_bytes_per_second,
            tx_bytes_per_second: m.tx_bytes_per_second,
        }
    }
}

impl From<proto::InfinibandPortSample> for InfinibandPortSample {
    fn from(p: proto::InfinibandPortSample) -> Self {
        Self {
            device: p.device,
            port: p.port,
            state: p.state,
            physical_state: p.physical_state,
            rate_gbps: p.rate_gbps,
            rx_bytes_total: p.rx_bytes_total,
            tx_bytes_total: p.tx_bytes_total,
            rx_packets_total: p.rx_packets_total,
            tx_packets_total: p.tx_packets_total,
            symbol_errors_total: p.symbol_errors_total,
            link_downed_total: p.link_downed_total,
            rx_errors_total: p.rx_errors_total,
            rx_bytes_per_second: p.rx_bytes_per_second,
            tx_bytes_per_second: p.tx_bytes_per_second,
        }
    }
}

impl From<SlurmSample> for proto::SlurmSample {
    fn from(m: SlurmSample) -> Self {
        Self {
            state: m.state,
            cpus_allocated: m.cpus_allocated,
            cpus_total: m.cpus_total,
            gres_used: m.gres_used,
            reason: m.reason,
            allocated_memory_bytes: m.allocated_memory_bytes,
        }
    }
}

impl From<proto::SlurmSample> for SlurmSample {
    fn from(p: proto::SlurmSample) -> Self {
        Self {
            state: p.state,
            cpus_allocated: p.cpus_allocated,
            cpus_total: p.cpus_total,
            gres_used: p.gres_used,
            reason: p.reason,
            allocated_memory_bytes: p.allocated_memory_bytes,
        }
    }
}

impl From<AcceleratorVendor> for proto::AcceleratorVendor {
    fn from(m: AcceleratorVendor) -> Self {
        match m {
            AcceleratorVendor::Nvidia => Self::Nvidia,
            AcceleratorVendor::Huawei => Self::Huawei,
            AcceleratorVendor::Hygon => Self::Hygon,
            AcceleratorVendor::Amd => Self::Amd,
            AcceleratorVendor::Cambricon => Self::Cambricon,
            AcceleratorVendor::Iluvatar => Self::Iluvatar,
            AcceleratorVendor::Metax => Self::Metax,
            AcceleratorVendor::MooreThreads => Self::MooreThreads,
            AcceleratorVendor::Kunlunxin => Self::Kunlunxin,
            AcceleratorVendor::Enflame => Self::Enflame,
        }
    }
}

impl From<proto::AcceleratorVendor> for AcceleratorVendor {
    fn from(p: proto::AcceleratorVendor) -> Self {
        match p {
            // An agent that did not say could read only NVML.
            proto::AcceleratorVendor::Unspecified | proto::AcceleratorVendor::Nvidia => {
                Self::Nvidia
            }
            proto::AcceleratorVendor::Huawei => Self::Huawei,
            proto::AcceleratorVendor::Hygon => Self::Hygon,
            proto::AcceleratorVendor::Amd => Self::Amd,
            proto::AcceleratorVendor::Cambricon => Self::Cambricon,
            proto::AcceleratorVendor::Iluvatar => Self::Iluvatar,
            proto::AcceleratorVendor::Metax => Self::Metax,
            proto::AcceleratorVendor::MooreThreads => Self::MooreThreads,
            proto::AcceleratorVendor::Kunlunxin => Self::Kunlunxin,
            proto::AcceleratorVendor::Enflame => Self::Enflame,
        }
    }
}

impl From<AcceleratorKind> for proto::AcceleratorKind {
    fn from(m: AcceleratorKind) -> Self {
        match m {
            AcceleratorKind::Gpu => Self::Gpu,
            AcceleratorKind::Npu => Self::Npu,
            AcceleratorKind::Mlu => Self::Mlu,
            AcceleratorKind::Dcu => Self::Dcu,
            AcceleratorKind::Xpu => Self::Xpu,
            AcceleratorKind::Gcu => Self::Gcu,
        }
    }
}

impl From<proto::AcceleratorKind> for AcceleratorKind {
    fn from(p: proto::AcceleratorKind) -> Self {
        match p {
            proto::AcceleratorKind::Unspecified | proto::AcceleratorKind::Gpu => Self::Gpu,
            proto::AcceleratorKind::Npu => Self::Npu,
            proto::AcceleratorKind::Mlu => Self::Mlu,
            proto::AcceleratorKind::Dcu => Self::Dcu,
            proto::AcceleratorKind::Xpu => Self::Xpu,
            proto::AcceleratorKind::Gcu => Self::Gcu,
        }
    }
}

impl From<AcceleratorLibrary> for proto::AcceleratorLibrary {
    fn from(m: AcceleratorLibrary) -> Self {
        Self {
            vendor: proto::AcceleratorVendor::from(m.vendor) as i32,
            path: m.path,
            version: m.version,
            symbols: m.symbols,
            missing_symbols: m.missing_symbols,
        }
    }
}

impl From<proto::AcceleratorLibrary> for AcceleratorLibrary {
    fn from(p: proto::AcceleratorLibrary) -> Self {
        Self {
            vendor: p.vendor().into(),
            path: p.path,
            version: p.version,
            symbols: p.symbols,
            missing_symbols: p.missing_symbols,
        }
    }
}

impl From<DeviceLink> for proto::DeviceLink {
    fn from(m: DeviceLink) -> Self {
        use proto::device_link::Kind;
        Self {
            kind: match m.kind {
                LinkKind::Unspecified => Kind::Unspecified,
                LinkKind::NvLink => Kind::Nvlink,
                LinkKind::Hccs => Kind::Hccs,
                LinkKind::Xgmi => Kind::Xgmi,
                LinkKind::Xhcl => Kind::Xhcl,
                LinkKind::MluLink => Kind::MluLink,
            } as i32,
            index: m.index,
            up: m.up,
            tx_total: m.tx_total,
            rx_total: m.rx_total,
            crc_errors_total: m.crc_errors_total,
            retries_total: m.retries_total,
        }
    }
}

impl From<proto::DeviceLink> for DeviceLink {
    fn from(p: proto::DeviceLink) -> Self {
        use proto::device_link::Kind;
        Self {
            kind: match p.kind() {
                Kind::Unspecified => LinkKind::Unspecified,
                Kind::Nvlink => LinkKind::NvLink,
                Kind::Hccs => LinkKind::Hccs,
                Kind::Xgmi => LinkKind::Xgmi,
                Kind::Xhcl => LinkKind::Xhcl,
                Kind::MluLink => LinkKind::MluLink,
            },
            index: p.index,
            up: p.up,
            tx_total: p.tx_total,
            rx_total: p.rx_total,
            crc_errors_total: p.crc_errors_total,
            retries_total: p.retries_total,
        }
    }
}

impl From<DeviceEvent> for proto::DeviceEvent {
    fn from(m: DeviceEvent) -> Self {
        Self {
            vendor: proto::AcceleratorVendor::from(m.vendor) as i32,
            device_index: m.device_index,
            pci_bus_id: m.pci_bus_id,
            code: m.code,
            message: m.message,
            observed_at_unix_ms: m.observed_at_unix_ms,
        }
    }
}

impl From<proto::DeviceEvent> for DeviceEvent {
    fn from(p: proto::DeviceEvent) -> Self {
        Self {
            vendor: p.vendor().into(),
            device_index: p.device_index,
            pci_bus_id: p.pci_bus_id,
            code: p.code,
            message: p.message,
            observed_at_unix_ms: p.observed_at_unix_ms,
        }
    }
}
