//! What a user sends to selection: the demand JSON, whose `expression` is
//! CEL, and CEL on its own. Anything is a demand or a 422's reasons.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suanli_aggregator::selection::{Expression, demand};

fuzz_target!(|text: &str| {
    if let Ok(body) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = demand::parse(&body);
    }
    let _ = Expression::compile(text);
});
