//! `serve` configuration: defaults < TOML file < environment < flags.
//!
//! The file has a section per part of the node (`[node]`, `[store]`,
//! `[ingest]`, `[http]`, `[retention]`, `[selection]`), each defined by the
//! module that reads it; inside, keys are the flags' names with `_` for
//! `-`. Unknown keys are an error. The flat keys of earlier versions (no
//! sections) are still read, each with a warning naming its section.
//! [`ServeFile`] is every setting, flat and optional, as flags and files
//! merge; [`ServeConfig`] is the validated result the node runs with. All
//! problems are reported at once, not one per run.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use suanli_protocol::{
    identifier::{Industry, NodePrefix, RegionCode},
    node::Role,
};

use crate::{
    alerting::{
        AlertSettings, AlertsSection, InhibitSpec, REPEAT_INTERVAL_BOUNDS, ReceiverSpec,
        compile_inhibit_rules,
    },
    api::{HttpSection, https::HttpTls},
    ingest::IngestSection,
    node::NodeSection,
    routing::SelectionSection,
    selection::PublicLatency,
    store::{RetentionSection, StoreSection},
};

/// The config file, a section per part of the node.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub node: NodeSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub selection: SelectionSection,
    #[serde(default)]
    pub alerts: AlertsSection,
}

impl ConfigFile {
    /// The sections' names, as the file spells them.
    fn section_names() -> Vec<String> {
        toml::Table::try_from(Self::default())
            .map(|t| t.into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default()
    }

    /// The section `key` belongs in: the one whose struct takes it. Keys
    /// are the flags' names, so each has one home.
    fn home(key: &str, value: &toml::Value) -> Option<String> {
        Self::section_names().into_iter().find(|section| {
            let one = toml::Table::from_iter([(key.to_owned(), value.clone())]);
            let file = toml::Table::from_iter([(section.clone(), one.into())]);
            Self::deserialize(toml::Value::Table(file)).is_ok()
        })
    }
}

/// What a config file (or the flags) may set.
#[derive(Debug, Clone, Default, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Where the node keeps its CA, credentials and (by default) its SQLite database.
    #[arg(long, env = "SUANLI_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// postgres://… for a node with several aggregator replicas; SQLite in the data dir by default.
    #[arg(long, env = "SUANLI_DATABASE_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// UDP address agents connect to.
    #[arg(long, env = "SUANLI_QUIC_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic_listen: Option<SocketAddr>,
    /// TCP address of the HTTP API.
    #[arg(long, env = "SUANLI_HTTP_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS on the API and dashboard (with http_tls_key).
    /// Without one, a non-loopback listener serves HTTPS with a certificate the node CA signs.
    #[arg(long, env = "SUANLI_HTTP_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tls_cert: Option<PathBuf>,
    /// PEM private key of http_tls_cert.
    #[arg(long, env = "SUANLI_HTTP_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address, for a node behind a TLS-terminating proxy
    /// (browsers sign in only over HTTPS).
    #[arg(long, env = "SUANLI_HTTP_PLAINTEXT", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_plaintext: Option<bool>,
    /// Address written into join strings, if agents must use another than the listener's.
    #[arg(long, env = "SUANLI_ADVERTISE", value_name = "HOST:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// This node's identifier prefix until a parent assigns one (a national node's is CN).
    #[arg(long, env = "SUANLI_NODE_PREFIX", value_name = "PREFIX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_prefix: Option<String>,
    /// This node's place in the hierarchy: national, regional or industry.
    #[arg(long, env = "SUANLI_ROLE", value_name = "ROLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Sampling interval imposed on every agent (e.g. 5s); agents keep their own if unset.
    #[arg(long, env = "SUANLI_SAMPLE_INTERVAL", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_interval: Option<String>,
    /// How long a new connection may take to speak (e.g. 10s).
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<String>,
    /// Agents admitted per second; beyond it they are told to come back later.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admissions_per_second: Option<f64>,
    /// How long raw samples are kept before they are folded into one-minute rollups (e.g. 24h).
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_retention: Option<String>,
    /// How long one-minute rollups are kept (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup_retention: Option<String>,
    /// GB/T 2260 region code of this machine, for the local agent's provider.
    #[arg(long, value_name = "CODE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_region: Option<String>,
    /// GB/T 4754 industry (section + division) for the local agent's provider.
    #[arg(long, value_name = "CODE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_industry: Option<String>,
    /// Selection's public-network latency within a city, in ms (national target: about 1).
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_latency_city_ms: Option<f64>,
    /// … within a province (national target: at most 5).
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_latency_province_ms: Option<f64>,
    /// … between provinces, i.e. hub nodes (national target: at most 20).
    #[arg(long, value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_latency_national_ms: Option<f64>,
    /// Bandwidth selection assumes for a public-network segment, in Mb/s.
    #[arg(long, value_name = "MBPS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_bandwidth_mbps: Option<u64>,
    /// How often the monitoring rules are evaluated (e.g. 5s).
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_interval: Option<String>,
    /// How long a new alert waits for others of its group before it is sent (e.g. 30s; 0s sends at once).
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    /// How often a still-firing alert is told again, for receivers that set none (Alertmanager's repeat_interval; e.g. 4h).
    #[arg(long, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    /// The dashboard's address as people reach it, for links in notifications.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_external_url: Option<String>,
    /// Allow receivers at plain-http loopback addresses, even for signed channels.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_loopback_http: Option<bool>,
    /// Receivers declared in the file ([[alerts.receivers]]).
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receivers: Option<Vec<ReceiverSpec>>,
    /// Inhibition rules ([[alerts.inhibit_rules]]), after the built-in one.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inhibit_rules: Option<Vec<InhibitSpec>>,
}

impl ServeFile {
    pub fn defaults() -> Self {
        Self {
            data_dir: Some(PathBuf::from("suanli-data")),
            database_url: None,
            quic_listen: Some(SocketAddr::from(([0, 0, 0, 0], 7443))),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            http_tls_cert: None,
            http_tls_key: None,
            http_plaintext: Some(false),
            advertise: None,
            node_prefix: Some("CN.LOCAL".into()),
            role: Some("regional".into()),
            sample_interval: None,
            handshake_timeout: Some("10s".into()),
            admissions_per_second: Some(200.0),
            raw_retention: Some("24h".into()),
            rollup_retention: Some("30days".into()),
            // Where the node is: said, or read from its prefix (validate).
            local_region: None,
            local_industry: Some("I65".into()),
            public_latency_city_ms: Some(1.0),
            public_latency_province_ms: Some(5.0),
            public_latency_national_ms: Some(20.0),
            public_bandwidth_mbps: Some(1_000),
            alert_interval: Some("5s".into()),
            group_wait: Some("30s".into()),
            repeat_interval: Some("4h".into()),
            alert_external_url: None,
            alert_loopback_http: Some(false),
            receivers: None,
            inhibit_rules: None,
        }
    }

    /// `self` where set, else `lower`.
    pub fn over(self, lower: Self) -> Self {
        Self {
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            quic_listen: self.quic_listen.or(lower.quic_listen),
            http_listen: self.http_listen.or(lower.http_listen),
            http_tls_cert: self.http_tls_cert.or(lower.http_tls_cert),
            http_tls_key: self.http_tls_key.or(lower.http_tls_key),
            http_plaintext: self.http_plaintext.or(lower.http_plaintext),
            advertise: self.advertise.or(lower.advertise),
            node_prefix: self.node_prefix.or(lower.node_prefix),
            role: self.role.or(lower.role),
            sample_interval: self.sample_interval.or(lower.sample_interval),
            handshake_timeout: self.handshake_timeout.or(lower.handshake_timeout),
            admissions_per_second: self.admissions_per_second.or(lower.admissions_per_second),
            raw_retention: self.raw_retention.or(lower.raw_retention),
            rollup_retention: self.rollup_retention.or(lower.rollup_retention),
            local_region: self.local_region.or(lower.local_region),
            local_industry: self.local_industry.or(lower.local_industry),
            public_latency_city_ms: self.public_latency_city_ms.or(lower.public_latency_city_ms),
            public_latency_province_ms: self
                .public_latency_province_ms
                .or(lower.public_latency_province_ms),
            public_latency_national_ms: self
                .public_latency_national_ms
                .or(lower.public_latency_national_ms),
            public_bandwidth_mbps: self.public_bandwidth_mbps.or(lower.public_bandwidth_mbps),
            alert_interval: self.alert_interval.or(lower.alert_interval),
            group_wait: self.group_wait.or(lower.group_wait),
            repeat_interval: self.repeat_interval.or(lower.repeat_interval),
            alert_external_url: self.alert_external_url.or(lower.alert_external_url),
            alert_loopback_http: self.alert_loopback_http.or(lower.alert_loopback_http),
            receivers: self.receivers.or(lower.receivers),
            inhibit_rules: self.inhibit_rules.or(lower.inhibit_rules),
        }
    }

    /// Reads a config file; also returns a warning for each flat key of
    /// earlier versions, which is read all the same.
    pub fn from_toml(text: &str) -> Result<(Self, Vec<String>), String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let (flat, sections): (toml::Table, toml::Table) =
            table.into_iter().partition(|(_, v)| !v.is_table());
        // Each key in its own section, nothing unknown; then the sections'
        // keys, which are the flags' names, read as one table.
        ConfigFile::deserialize(toml::Value::Table(sections.clone())).map_err(|e| e.to_string())?;
        let merged: toml::Table = sections
            .into_iter()
            .filter_map(|(_, keys)| match keys {
                toml::Value::Table(keys) => Some(keys),
                _ => None,
            })
            .flatten()
            .collect();
        let sectioned =
            ServeFile::deserialize(toml::Value::Table(merged)).map_err(|e| e.to_string())?;
        if flat.is_empty() {
            return Ok((sectioned, Vec::new()));
        }
        let old =
            ServeFile::deserialize(toml::Value::Table(flat.clone())).map_err(|e| e.to_string())?;
        let warnings = flat
            .iter()
            .map(|(key, value)| {
                let home = ConfigFile::home(key, value).unwrap_or_else(|| "its section".into());
                format!("{key}: a key outside any section is deprecated; move it under [{home}]")
            })
            .collect();
        // A key given both ways: the section wins.
        Ok((sectioned.over(old), warnings))
    }

    /// The file `print-default-config` prints: every default, in its section.
    pub fn default_toml() -> Result<String, String> {
        let flat = toml::Table::try_from(Self::defaults()).map_err(|e| e.to_string())?;
        let mut sections = toml::Table::new();
        for (key, value) in flat {
            let home = ConfigFile::home(&key, &value)
                .ok_or_else(|| format!("{key} belongs to no section of the config file"))?;
            if let Some(keys) = sections
                .entry(home)
                .or_insert_with(|| toml::Table::new().into())
                .as_table_mut()
            {
                keys.insert(key, value);
            }
        }
        toml::to_string(&sections).map_err(|e| e.to_string())
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub quic_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub http_tls: HttpTls,
    pub advertise: Option<String>,
    pub node_prefix: NodePrefix,
    pub role: Role,
    pub sample_interval: Option<Duration>,
    pub handshake_timeout: Duration,
    pub admissions_per_second: f64,
    pub raw_retention: Duration,
    pub rollup_retention: Duration,
    pub local_region: RegionCode,
    /// Whether staff said where the node is, or it was inferred.
    pub local_region_source: RegionSource,
    pub local_industry: Industry,
    pub public_network: PublicLatency,
    pub alerts: AlertSettings,
}

/// Where the node's own region came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// `local_region` in the file, the environment or a flag.
    Configured,
    /// The province the node's prefix names (a regional node's `CN.32`).
    Prefix,
    /// Nothing said where: the capital, and the start says so.
    Assumed,
}

/// The region assumed when nothing says where the node is.
const CAPITAL: &str = "110000";

/// The province a prefix names (`CN.32`, `CN.32.I65`), as a region code.
fn province_of(prefix: &NodePrefix) -> Option<RegionCode> {
    prefix
        .segments()
        .find(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| RegionCode::parse(&format!("{p}0000")).ok())
}

impl ServeConfig {
    /// Validates a merged file; every problem is listed.
    pub fn validate(file: ServeFile) -> Result<Self, Vec<String>> {
        let file = file.over(ServeFile::defaults());
        let mut problems = Vec::new();
        let duration = |name: &str, value: Option<&str>, problems: &mut Vec<String>| {
            value.and_then(|v| match humantime::parse_duration(v) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => {
                    problems.push(format!("{name}: must be more than zero"));
                    None
                }
                Err(e) => {
                    problems.push(format!(
                        "{name}: {v:?} is not a duration (e.g. 5s, 500ms): {e}"
                    ));
                    None
                }
            })
        };
        let sample_interval = duration(
            "sample_interval",
            file.sample_interval.as_deref(),
            &mut problems,
        );
        let handshake_timeout = duration(
            "handshake_timeout",
            file.handshake_timeout.as_deref(),
            &mut problems,
        );
        let raw_retention = duration(
            "raw_retention",
            file.raw_retention.as_deref(),
            &mut problems,
        );
        let rollup_retention = duration(
            "rollup_retention",
            file.rollup_retention.as_deref(),
            &mut problems,
        );
        let alert_interval = duration(
            "alert_interval",
            file.alert_interval.as_deref(),
            &mut problems,
        );
        let group_wait = match file.group_wait.as_deref().map(humantime::parse_duration) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                problems.push(format!("group_wait: not a duration (e.g. 30s): {e}"));
                Duration::ZERO
            }
            None => Duration::from_secs(30),
        };
        let repeat_interval = duration(
            "repeat_interval",
            file.repeat_interval.as_deref(),
            &mut problems,
        )
        .unwrap_or(Duration::from_secs(4 * 3600));
        let (least, most) = REPEAT_INTERVAL_BOUNDS;
        if !(least..=most).contains(&repeat_interval) {
            problems.push("repeat_interval: from 1s to 30 days".into());
        }
        let loopback_http = file.alert_loopback_http.unwrap_or(false);
        let receivers = file.receivers.clone().unwrap_or_default();
        for spec in &receivers {
            if let Err(invalid) = crate::service::alerts::check_receiver(spec, loopback_http) {
                for p in invalid.0 {
                    problems.push(format!(
                        "receivers.{}.{}: {}",
                        spec.name, p.field, p.message
                    ));
                }
            }
        }
        let mut names: Vec<&str> = receivers.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            problems.push("receivers: two have the same name".into());
        }
        let inhibit_rules =
            compile_inhibit_rules(file.inhibit_rules.as_deref().unwrap_or_default())
                .unwrap_or_else(|e| {
                    problems.push(format!("inhibit_rules.{e}"));
                    Vec::new()
                });
        let alerts = AlertSettings {
            interval: alert_interval.unwrap_or(Duration::from_secs(5)),
            group_wait,
            external_url: file.alert_external_url.clone().unwrap_or_default(),
            loopback_http,
            receivers,
            inhibit_rules,
            repeat_interval,
        };
        if let (Some(raw), Some(rollup)) = (raw_retention, rollup_retention)
            && rollup < raw
        {
            problems.push("rollup_retention: must be at least raw_retention".into());
        }
        let node_prefix = file.node_prefix.as_deref().and_then(|p| {
            NodePrefix::parse(p)
                .map_err(|e| problems.push(format!("node_prefix: {e}")))
                .ok()
        });
        let role = file.role.as_deref().and_then(|r| {
            Role::parse(r)
                .ok_or_else(|| {
                    problems.push(format!("role: {r:?} is not national, regional or industry"))
                })
                .ok()
        });
        // The national node is the root of the prefix tree.
        let node_prefix = match role {
            Some(Role::National) => match node_prefix {
                Some(p)
                    if p == NodePrefix::national()
                        || file.node_prefix.as_deref() == Some("CN.LOCAL") =>
                {
                    Some(NodePrefix::national())
                }
                Some(p) => {
                    problems.push(format!(
                        "node_prefix: a national node's prefix is CN, not {p}"
                    ));
                    None
                }
                None => None,
            },
            _ => node_prefix,
        };
        let (local_region, local_region_source) = match file.local_region.as_deref() {
            Some(p) => (
                RegionCode::parse(p)
                    .map_err(|e| problems.push(format!("local_region: {e}")))
                    .ok(),
                RegionSource::Configured,
            ),
            None => match node_prefix.as_ref().and_then(province_of) {
                Some(province) => (Some(province), RegionSource::Prefix),
                None => (RegionCode::parse(CAPITAL).ok(), RegionSource::Assumed),
            },
        };
        let local_industry = file.local_industry.as_deref().and_then(|p| {
            Industry::parse(p)
                .map_err(|e| problems.push(format!("local_industry: {e}")))
                .ok()
        });
        let public_network = PublicLatency {
            same_city_ms: file.public_latency_city_ms.unwrap_or(1.0),
            same_province_ms: file.public_latency_province_ms.unwrap_or(5.0),
            national_ms: file.public_latency_national_ms.unwrap_or(20.0),
            bandwidth_mbps: file.public_bandwidth_mbps.unwrap_or(1_000),
        };
        for (name, ms) in [
            ("public_latency_city_ms", public_network.same_city_ms),
            (
                "public_latency_province_ms",
                public_network.same_province_ms,
            ),
            ("public_latency_national_ms", public_network.national_ms),
        ] {
            if !(0.0..10_000.0).contains(&ms) {
                problems.push(format!("{name}: a number of milliseconds from 0 to 10000"));
            }
        }
        if public_network.bandwidth_mbps == 0 {
            problems.push("public_bandwidth_mbps: must be more than zero".into());
        }
        let admissions = file.admissions_per_second.unwrap_or(200.0);
        if !(admissions.is_finite() && admissions > 0.0) {
            problems.push("admissions_per_second: must be a positive number".into());
        }
        if let Some(url) = &file.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:"))
        {
            problems.push(format!(
                "database_url: {url:?} is neither sqlite:… nor postgres://…"
            ));
        }
        let http_listen = file
            .http_listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let plaintext = file.http_plaintext.unwrap_or(false);
        let http_tls = match (file.http_tls_cert, file.http_tls_key) {
            (Some(cert), Some(key)) => {
                for (name, path) in [("http_tls_cert", &cert), ("http_tls_key", &key)] {
                    if !path.is_file() {
                        problems.push(format!("{name}: {} is not a readable file", path.display()));
                    }
                }
                if plaintext {
                    problems.push("http_plaintext: contradicts http_tls_cert".into());
                }
                HttpTls::Files { cert, key }
            }
            (Some(_), None) | (None, Some(_)) => {
                problems.push("http_tls_cert and http_tls_key: give both or neither".into());
                HttpTls::Plain
            }
            (None, None) if plaintext || http_listen.ip().is_loopback() => HttpTls::Plain,
            (None, None) => HttpTls::NodeCa {
                names: web_names(http_listen, file.advertise.as_deref()),
            },
        };
        match (
            node_prefix,
            role,
            handshake_timeout,
            local_region,
            local_industry,
            raw_retention,
            rollup_retention,
        ) {
            (
                Some(node_prefix),
                Some(role),
                Some(handshake_timeout),
                Some(local_region),
                Some(local_industry),
                Some(raw_retention),
                Some(rollup_retention),
            ) if problems.is_empty() => Ok(Self {
                data_dir: file.data_dir.unwrap_or_default(),
                database_url: file.database_url,
                quic_listen: file
                    .quic_listen
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7443))),
                http_listen,
                http_tls,
                advertise: file.advertise,
                node_prefix,
                role,
                sample_interval,
                handshake_timeout,
                admissions_per_second: admissions,
                raw_retention,
                rollup_retention,
                local_region,
                local_region_source,
                local_industry,
                public_network,
                alerts,
            }),
            _ => Err(problems),
        }
    }
}

/// The names a node-CA-signed dashboard certificate carries: loopback, the
/// listener's address if it is a specific one, and the advertised host.
fn web_names(listen: SocketAddr, advertise: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    if let Some(host) = advertise.and_then(|a| {
        // HOST:PORT, [V6]:PORT or a bare host.
        a.parse::<SocketAddr>()
            .map(|s| s.ip().to_string())
            .ok()
            .or_else(|| {
                a.rsplit_once(':')
                    .map(|(h, _)| h.trim_matches(['[', ']']).to_owned())
            })
    }) {
        names.push(host);
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_print_as_toml_in_sections() {
        let text = ServeFile::default_toml().unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            table["ingest"]["quic_listen"].as_str(),
            Some("0.0.0.0:7443"),
            "{text}"
        );
        let (back, warnings) = ServeFile::from_toml(&text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(back.quic_listen, ServeFile::defaults().quic_listen);
        ServeConfig::validate(back).unwrap();
    }

    #[test]
    fn the_packaged_file_is_valid_and_changes_nothing() {
        let shipped = include_str!("../../packaging/config/aggregator.toml");
        let (file, warnings) = ServeFile::from_toml(shipped).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            toml::Table::try_from(&file).unwrap(),
            toml::Table::try_from(ServeFile::default()).unwrap()
        );
        // Each commented key, uncommented, is a real key in its section.
        let uncommented = shipped
            .lines()
            .filter_map(|line| line.strip_prefix('#'))
            .filter(|line| line.starts_with('[') || line.contains(" = "))
            .collect::<Vec<_>>()
            .join("\n");
        ServeFile::from_toml(&uncommented).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_in_and_out_of_sections() {
        let err = ServeFile::from_toml("quic_listen = \"0.0.0.0:1\"\nqiuc = 1\n").unwrap_err();
        assert!(err.contains("qiuc"), "{err}");
        let err = ServeFile::from_toml("[ingest]\nqiuc = 1\n").unwrap_err();
        assert!(err.contains("qiuc"), "{err}");
        let err = ServeFile::from_toml("[ingress]\nquic_listen = \"0.0.0.0:1\"\n").unwrap_err();
        assert!(err.contains("ingress"), "{err}");
    }

    #[test]
    fn flat_keys_are_still_read_with_a_warning_naming_their_section() {
        let (file, warnings) =
            ServeFile::from_toml("node_prefix = \"CN.11\"\n[ingest]\nhandshake_timeout = \"3s\"\n")
                .unwrap();
        assert_eq!(file.node_prefix.as_deref(), Some("CN.11"));
        assert_eq!(file.handshake_timeout.as_deref(), Some("3s"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("node_prefix") && warnings[0].contains("[node]"),
            "{warnings:?}"
        );
        // A key no default sets finds its section too.
        let (_, warnings) = ServeFile::from_toml("database_url = \"sqlite://x\"\n").unwrap();
        assert!(warnings[0].contains("[store]"), "{warnings:?}");
        // Given both ways, the section wins.
        let (file, _) =
            ServeFile::from_toml("node_prefix = \"CN.11\"\n[node]\nnode_prefix = \"CN.12\"\n")
                .unwrap();
        assert_eq!(file.node_prefix.as_deref(), Some("CN.12"));
    }

    #[test]
    fn the_nodes_region_is_said_or_read_from_its_prefix_and_an_assumption_is_named() {
        let region = |prefix: Option<&str>, role: Option<&str>, local: Option<&str>| {
            let config = ServeConfig::validate(ServeFile {
                node_prefix: prefix.map(Into::into),
                role: role.map(Into::into),
                local_region: local.map(Into::into),
                ..Default::default()
            })
            .unwrap();
            (config.local_region.to_string(), config.local_region_source)
        };
        assert_eq!(
            region(Some("CN.32"), Some("regional"), None),
            ("320000".to_owned(), RegionSource::Prefix)
        );
        assert_eq!(
            region(Some("CN.32"), Some("regional"), Some("320102")),
            ("320102".to_owned(), RegionSource::Configured)
        );
        assert_eq!(
            region(None, None, None),
            ("110000".to_owned(), RegionSource::Assumed)
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let file = ServeFile {
            sample_interval: Some("soon".into()),
            node_prefix: Some("XX".into()),
            local_region: Some("99".into()),
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        let problems = ServeConfig::validate(file).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    #[test]
    fn https_unless_loopback_or_asked_for_plain() {
        let on = |listen: &str, extra: ServeFile| {
            ServeConfig::validate(ServeFile {
                http_listen: Some(listen.parse().unwrap()),
                advertise: Some("node.example.cn:7443".into()),
                ..extra
            })
        };
        assert_eq!(
            on("127.0.0.1:0", ServeFile::default()).unwrap().http_tls,
            HttpTls::Plain
        );
        match on("0.0.0.0:8443", ServeFile::default()).unwrap().http_tls {
            HttpTls::NodeCa { names } => {
                assert!(names.contains(&"node.example.cn".to_owned()), "{names:?}")
            }
            other => panic!("{other:?}"),
        }
        let plain = ServeFile {
            http_plaintext: Some(true),
            ..Default::default()
        };
        assert_eq!(on("0.0.0.0:80", plain).unwrap().http_tls, HttpTls::Plain);
        let half = ServeFile {
            http_tls_cert: Some("/nonexistent/cert.pem".into()),
            ..Default::default()
        };
        let problems = on("0.0.0.0:443", half).unwrap_err();
        assert!(problems[0].contains("both or neither"), "{problems:?}");
        let missing = ServeFile {
            http_tls_cert: Some("/nonexistent/cert.pem".into()),
            http_tls_key: Some("/nonexistent/key.pem".into()),
            ..Default::default()
        };
        assert_eq!(on("0.0.0.0:443", missing).unwrap_err().len(), 2);
    }

    #[test]
    fn flags_override_the_file() {
        let file = ServeFile {
            node_prefix: Some("CN.11".into()),
            ..Default::default()
        };
        let flags = ServeFile {
            node_prefix: Some("CN.12".into()),
            ..Default::default()
        };
        let config = ServeConfig::validate(flags.over(file)).unwrap();
        assert_eq!(config.node_prefix.to_string(), "CN.12");
    }
}
