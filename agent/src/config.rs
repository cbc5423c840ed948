//! `/etc/suanli/agent.toml`: what the packaged unit runs the agent with.
//!
//! Every key is optional and mirrors a flag of `run`; a flag or its
//! `SUANLI_*` variable wins over the file, the file over the default. The
//! file the packages ship has every key commented out, so an untouched
//! install behaves exactly like a bare `suanli-agent run`.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Sampling interval until the aggregator asks for another ("5s").
    pub interval: Option<String>,
    /// Most disk the spool may take, in MiB.
    pub spool_max_mib: Option<u64>,
    /// How long a collector may take before it is reported as hung.
    pub timeout_ms: Option<u64>,
    /// A specific `libnvidia-ml.so`.
    pub nvml_library: Option<String>,
    /// Other vendors' libraries, by vendor name (`huawei = "/usr/…/libdcmi.so"`).
    #[serde(default)]
    pub accelerator_libraries: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks a file's text; the error says which key is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.interval()?;
        Ok(config)
    }

    pub fn interval(&self) -> Result<Option<Duration>, String> {
        self.interval
            .as_deref()
            .map(|text| {
                humantime::parse_duration(text).map_err(|e| format!("interval = {text:?}: {e}"))
            })
            .transpose()
    }

    /// The accelerator libraries as `--accel-library` flags, so the one
    /// parser checks both and names a bad vendor the same way.
    pub fn accel_library_flags(&self) -> Vec<String> {
        self.accelerator_libraries
            .iter()
            .map(|(vendor, path)| format!("{vendor}={path}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_valid_and_changes_nothing() {
        let shipped = include_str!("../../packaging/config/agent.toml");
        assert_eq!(AgentConfig::parse(shipped).unwrap(), AgentConfig::default());
    }

    #[test]
    fn every_key_is_read() {
        let config = AgentConfig::parse(
            r#"
            interval = "2s"
            spool_max_mib = 64
            timeout_ms = 500
            nvml_library = "/opt/nvidia/libnvidia-ml.so.1"
            [accelerator_libraries]
            huawei = "/usr/local/Ascend/driver/lib64/driver/libdcmi.so"
            "#,
        )
        .unwrap();
        assert_eq!(config.interval().unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(config.spool_max_mib, Some(64));
        assert_eq!(config.timeout_ms, Some(500));
        assert_eq!(
            config.accel_library_flags(),
            ["huawei=/usr/local/Ascend/driver/lib64/driver/libdcmi.so"]
        );
    }

    #[test]
    fn a_misspelt_key_or_bad_interval_is_named() {
        let typo = AgentConfig::parse("intervall = \"5s\"").unwrap_err();
        assert!(typo.contains("intervall"), "{typo}");
        let bad = AgentConfig::parse("interval = \"soon\"").unwrap_err();
        assert!(bad.contains("interval = \"soon\""), "{bad}");
        let wrong_type = AgentConfig::parse("spool_max_mib = \"lots\"").unwrap_err();
        assert!(wrong_type.contains("spool_max_mib"), "{wrong_type}");
    }
}
