//! Configuration files: the aggregator's TOML (sections and the flat keys of
//! earlier versions) and the agent's. Anything is read or refused with a
//! reason; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suanli_agent::config::AgentConfig;
use suanli_aggregator::config::{ServeConfig, ServeFile};

fuzz_target!(|text: &str| {
    if let Ok((file, _warnings)) = ServeFile::from_toml(text) {
        let _ = ServeConfig::validate(file);
    }
    let _ = AgentConfig::parse(text);
});
