//! The wire: any bytes, in any chunking, through the frame decoder as an
//! agent's stream (to the aggregator) and as a child node's link (to its
//! parent), and each sample's and filing batch's body. Errors are fine;
//! a panic, a hang or unbounded memory is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suanli_protocol::{
    node::{ChildMessage, FilingBatch},
    stream::{AgentMessage, FrameDecoder, InventoryUpdate},
};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a chunk size, so frames split at any boundary.
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk.max(1));
    let mut agent = FrameDecoder::default();
    let mut child = FrameDecoder::default();
    for piece in bytes.chunks(chunk) {
        agent.push(piece);
        child.push(piece);
        while let Ok(Some(message)) = agent.decode::<AgentMessage>() {
            if let AgentMessage::Sample(sample) = message {
                let _ = sample.decode();
            }
        }
        while let Ok(Some(_)) = child.decode::<ChildMessage>() {}
    }
    let _ = agent.finish();
    let _ = InventoryUpdate::decode(bytes);
    let _ = FilingBatch::decode(bytes);
});
