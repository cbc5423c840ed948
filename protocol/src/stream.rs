//! The messages of the agent ↔ aggregator stream and their framing.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of an
//! encoded `suanli.v1.Frame`. [`FrameDecoder`] is incremental and does no IO:
//! feed it whatever bytes arrived and take out whole messages. A length over
//! [`MAX_FRAME_LEN`] is refused before a byte of the body is buffered.
//!
//! Samples are the hot path and are spooled by the agent as encoded
//! `SequencedSample` bytes ([`SequencedSample::encode`]); [`encode_sample_frame`]
//! wraps such bytes in a frame without decoding them again.

use std::time::Duration;

use prost::Message as _;

use crate::{
    model::{HostInventory, HostSample, Problem},
    proto::{self, frame::Body},
};

/// ALPN of the first major version of the stream. A breaking change gets a
/// new ALPN (`suanli/2`); minor versions are negotiated inside it.
pub const ALPN: &[u8] = b"suanli/1";

/// Minor versions of `suanli/1` this build speaks.
pub const MIN_VERSION: u32 = 1;
pub const MAX_VERSION: u32 = 1;

/// Largest frame either end accepts.
pub const MAX_FRAME_LEN: usize = 4 << 20;

/// What an agent sends.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMessage {
    Hello(Hello),
    EnrollRequest(EnrollRequest),
    Inventory(Box<InventoryUpdate>),
    Sample(EncodedSample),
}

/// What an aggregator sends.
#[derive(Debug, Clone, PartialEq)]
pub enum AggregatorMessage {
    Welcome(Welcome),
    Enrolled(Enrolled),
    /// Every sample up to and including this sequence number is stored.
    Ack {
        through_seq: u64,
    },
    /// Sample at this interval from now on.
    Configure {
        sample_interval: Duration,
    },
    /// Disconnect and come back after this long.
    Wait {
        retry_after: Duration,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub min_version: u32,
    pub max_version: u32,
    pub agent_version: String,
    pub first_pending_seq: Option<u64>,
    pub next_seq: u64,
    pub dropped_samples: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub version: u32,
    pub host_id: u64,
    /// Empty until the host's first inventory has been seen.
    pub host_identifier: String,
    /// `None`: the agent keeps its own configured interval.
    pub sample_interval: Option<Duration>,
    pub stored_through_seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollRequest {
    pub token: String,
    pub csr_der: Vec<u8>,
    pub machine_id: Option<String>,
    pub hostname: String,
    pub agent_version: String,
    pub product_uuid: Option<String>,
    pub board_serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub host_id: u64,
    pub host_identifier: String,
    pub certificate_der: Vec<u8>,
    pub ca_certificate_der: Vec<u8>,
}

/// What the host is: its inventory, and what it does not have.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InventoryUpdate {
    pub inventory: HostInventory,
    /// Problems of kind `Unsupported`: static facts about the host.
    pub unsupported: Vec<Problem>,
}

impl InventoryUpdate {
    /// Splits a report's problems: what the host lacks goes with its
    /// inventory, what went wrong this cycle stays with the sample.
    pub fn split(
        inventory: HostInventory,
        problems: Vec<Problem>,
    ) -> (InventoryUpdate, Vec<Problem>) {
        let (mut unsupported, sample_problems): (Vec<Problem>, Vec<Problem>) = problems
            .into_iter()
            .partition(|p| p.kind == crate::model::ProblemKind::Unsupported);
        // Collectors answer in any order; a fact about the host must compare
        // equal from one cycle to the next, or it would be resent each time.
        unsupported.sort_by(|a, b| (&a.collector, &a.message).cmp(&(&b.collector, &b.message)));
        (
            InventoryUpdate {
                inventory,
                unsupported,
            },
            sample_problems,
        )
    }
}

impl InventoryUpdate {
    /// The protobuf bytes the aggregator stores with a host.
    pub fn encode(self) -> Vec<u8> {
        proto::InventoryUpdate::from(self).encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        Ok(proto::InventoryUpdate::decode(bytes)?.into())
    }
}

/// One sample with the sequence number that makes it stored exactly once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SequencedSample {
    pub seq: u64,
    pub sample: HostSample,
    pub problems: Vec<Problem>,
}

impl SequencedSample {
    /// The protobuf bytes the agent spools and the aggregator stores.
    pub fn encode(self) -> Vec<u8> {
        proto::SequencedSample::from(self).encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        Ok(proto::SequencedSample::decode(bytes)?.into())
    }
}

/// A sample as it travels and is stored: its protobuf bytes, validated, with
/// the two fields storage indexes by. The aggregator keeps the agent's bytes
/// as they came instead of decoding and encoding them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSample {
    pub seq: u64,
    pub collected_at_unix_ms: u64,
    pub bytes: Vec<u8>,
}

impl EncodedSample {
    pub fn new(sample: SequencedSample) -> Self {
        Self {
            seq: sample.seq,
            collected_at_unix_ms: sample.sample.collected_at_unix_ms,
            bytes: sample.encode(),
        }
    }

    /// Validates `bytes` as a `SequencedSample` and takes its header. A
    /// sample must say when it was collected: storage and retention go by it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, FrameError> {
        let decoded = proto::SequencedSample::decode(bytes.as_slice())?;
        let collected_at_unix_ms = decoded
            .sample
            .map(|s| s.collected_at_unix_ms)
            .filter(|ms| *ms > 0)
            .ok_or(FrameError::Invalid("a sample without its collection time"))?;
        Ok(Self {
            seq: decoded.seq,
            collected_at_unix_ms,
            bytes,
        })
    }

    pub fn decode(&self) -> Result<SequencedSample, FrameError> {
        SequencedSample::decode(&self.bytes)
    }
}

/// Field 6 (`sample`) of `Frame`, wire type 2 (length-delimited).
const SAMPLE_TAG: u8 = (6 << 3) | 2;

/// Why bytes on the stream were refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Malformed(#[from] prost::DecodeError),
    #[error("frame carries no message this version knows")]
    UnknownMessage,
    #[error("{0} is not a message this side accepts")]
    Unexpected(&'static str),
    #[error("invalid message: {0}")]
    Invalid(&'static str),
    #[error("stream ended inside a frame ({0} bytes buffered)")]
    Truncated(usize),
}

/// Appends one framed message to `out`.
pub fn encode_frame(body: Body, out: &mut Vec<u8>) {
    let frame = proto::Frame { body: Some(body) };
    let len = frame.encoded_len();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    frame
        .encode(out)
        .expect("a Vec grows to fit, so encoding cannot run out of space");
}

/// Frames spooled `SequencedSample` bytes without decoding them.
pub fn encode_sample_frame(encoded_sample: &[u8], out: &mut Vec<u8>) {
    let body_len = 1 + prost::length_delimiter_len(encoded_sample.len()) + encoded_sample.len();
    out.reserve(4 + body_len);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.push(SAMPLE_TAG);
    prost::encode_length_delimiter(encoded_sample.len(), out)
        .expect("a Vec grows to fit, so encoding cannot run out of space");
    out.extend_from_slice(encoded_sample);
}

impl AgentMessage {
    pub fn encode(self, out: &mut Vec<u8>) {
        let body = match self {
            AgentMessage::Sample(s) => return encode_sample_frame(&s.bytes, out),
            AgentMessage::Hello(h) => Body::Hello(h.into()),
            AgentMessage::EnrollRequest(e) => Body::EnrollRequest(proto::EnrollRequest {
                token: e.token,
                csr_der: e.csr_der,
                machine_id: e.machine_id,
                hostname: e.hostname,
                agent_version: e.agent_version,
                product_uuid: e.product_uuid,
                board_serial: e.board_serial,
            }),
            AgentMessage::Inventory(i) => Body::Inventory((*i).into()),
        };
        encode_frame(body, out)
    }

    fn from_body(body: Body) -> Result<Self, FrameError> {
        Ok(match body {
            Body::Hello(h) => AgentMessage::Hello(h.into()),
            Body::EnrollRequest(e) => AgentMessage::EnrollRequest(EnrollRequest {
                token: e.token,
                csr_der: e.csr_der,
                machine_id: e.machine_id,
                hostname: e.hostname,
                agent_version: e.agent_version,
                product_uuid: e.product_uuid,
                board_serial: e.board_serial,
            }),
            Body::Inventory(i) => AgentMessage::Inventory(Box::new(i.into())),
            Body::Sample(s) => AgentMessage::Sample(EncodedSample::from_bytes(s.encode_to_vec())?),
            Body::Welcome(_) => return Err(FrameError::Unexpected("Welcome")),
            Body::Enrolled(_) => return Err(FrameError::Unexpected("Enrolled")),
            Body::Ack(_) => return Err(FrameError::Unexpected("Ack")),
            Body::Configure(_) => return Err(FrameError::Unexpected("Configure")),
            Body::Wait(_) => return Err(FrameError::Unexpected("Wait")),
        })
    }
}

impl AggregatorMessage {
    pub fn encode(self, out: &mut Vec<u8>) {
        let body = match self {
            AggregatorMessage::Welcome(w) => Body::Welcome(proto::Welcome {
                version: w.version,
                host_id: w.host_id,
                host_identifier: w.host_identifier,
                sample_interval_ms: w.sample_interval.map_or(0, duration_ms),
                stored_through_seq: w.stored_through_seq,
            }),
            AggregatorMessage::Enrolled(e) => Body::Enrolled(proto::Enrolled {
                host_id: e.host_id,
                host_identifier: e.host_identifier,
                certificate_der: e.certificate_der,
                ca_certificate_der: e.ca_certificate_der,
            }),
            AggregatorMessage::Ack { through_seq } => Body::Ack(proto::Ack { through_seq }),
            AggregatorMessage::Configure { sample_interval } => Body::Configure(proto::Configure {
                sample_interval_ms: Some(duration_ms(sample_interval)),
            }),
            AggregatorMessage::Wait {
                retry_after,
                reason,
            } => Body::Wait(proto::Wait {
                retry_after_ms: duration_ms(retry_after),
                reason,
            }),
        };
        encode_frame(body, out)
    }

    fn from_body(body: Body) -> Result<Self, FrameError> {
        Ok(match body {
            Body::Welcome(w) => AggregatorMessage::Welcome(Welcome {
                version: w.version,
                host_id: w.host_id,
                host_identifier: w.host_identifier,
                sample_interval: (w.sample_interval_ms > 0)
                    .then(|| Duration::from_millis(w.sample_interval_ms)),
                stored_through_seq: w.stored_through_seq,
            }),
            Body::Enrolled(e) => AggregatorMessage::Enrolled(Enrolled {
                host_id: e.host_id,
                host_identifier: e.host_identifier,
                certificate_der: e.certificate_der,
                ca_certificate_der: e.ca_certificate_der,
            }),
            Body::Ack(a) => AggregatorMessage::Ack {
                through_seq: a.through_seq,
            },
            Body::Configure(c) => match c.sample_interval_ms {
                Some(ms) => AggregatorMessage::Configure {
                    sample_interval: Duration::from_millis(ms),
                },
                None => return Err(FrameError::UnknownMessage),
            },
            Body::Wait(w) => AggregatorMessage::Wait {
                retry_after: Duration::from_millis(w.retry_after_ms),
                reason: w.reason,
            },
            Body::Hello(_) => return Err(FrameError::Unexpected("Hello")),
            Body::EnrollRequest(_) => return Err(FrameError::Unexpected("EnrollRequest")),
            Body::Inventory(_) => return Err(FrameError::Unexpected("InventoryUpdate")),
            Body::Sample(_) => return Err(FrameError::Unexpected("SequencedSample")),
        })
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A message this side sends: it frames itself onto `out`.
pub trait Outbound {
    fn encode(self, out: &mut Vec<u8>);
}

impl Outbound for AgentMessage {
    fn encode(self, out: &mut Vec<u8>) {
        AgentMessage::encode(self, out)
    }
}

impl Outbound for AggregatorMessage {
    fn encode(self, out: &mut Vec<u8>) {
        AggregatorMessage::encode(self, out)
    }
}

/// Which side's messages a decoder expects.
pub trait Inbound: Sized {
    /// One frame's body (without the length prefix).
    fn from_frame(body: &[u8]) -> Result<Self, FrameError>;
}

impl Inbound for AgentMessage {
    fn from_frame(body: &[u8]) -> Result<Self, FrameError> {
        // The hot path: a frame that is exactly one sample keeps its bytes.
        if let [SAMPLE_TAG, rest @ ..] = body {
            let mut cursor = rest;
            if let Ok(len) = prost::decode_length_delimiter(&mut cursor)
                && len == cursor.len()
            {
                return Ok(AgentMessage::Sample(EncodedSample::from_bytes(
                    cursor.to_vec(),
                )?));
            }
        }
        let frame = proto::Frame::decode(body)?;
        Self::from_body(frame.body.ok_or(FrameError::UnknownMessage)?)
    }
}

impl Inbound for AggregatorMessage {
    fn from_frame(body: &[u8]) -> Result<Self, FrameError> {
        let frame = proto::Frame::decode(body)?;
        Self::from_body(frame.body.ok_or(FrameError::UnknownMessage)?)
    }
}

/// Splits a byte stream into messages. Does no IO.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    pub fn new(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_len,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// How many more bytes the next frame needs, so a reader can stop at a
    /// frame boundary; 0 when a whole frame is buffered.
    pub fn wanted(&self) -> Result<usize, FrameError> {
        match self.buf.get(..4) {
            None => Ok(4 - self.buf.len()),
            Some(prefix) => {
                let len = self.frame_len(prefix)?;
                Ok((4 + len).saturating_sub(self.buf.len()))
            }
        }
    }

    fn frame_len(&self, prefix: &[u8]) -> Result<usize, FrameError> {
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max_len {
            return Err(FrameError::TooLong {
                len,
                max: self.max_len,
            });
        }
        Ok(len)
    }

    /// The next whole message, `None` if more bytes are needed.
    pub fn decode<M: Inbound>(&mut self) -> Result<Option<M>, FrameError> {
        let Some(prefix) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = self.frame_len(prefix)?;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let message = M::from_frame(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        message.map(Some)
    }

    /// Call at end of stream: an incomplete frame is an error.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}

impl From<Hello> for proto::Hello {
    fn from(h: Hello) -> Self {
        Self {
            min_version: h.min_version,
            max_version: h.max_version,
            agent_version: h.agent_version,
            first_pending_seq: h.first_pending_seq,
            next_seq: h.next_seq,
            dropped_samples: h.dropped_samples,
        }
    }
}

impl From<proto::Hello> for Hello {
    fn from(h: proto::Hello) -> Self {
        Self {
            min_version: h.min_version,
            max_version: h.max_version,
            agent_version: h.agent_version,
            first_pending_seq: h.first_pending_seq,
            next_seq: h.next_seq,
            dropped_samples: h.dropped_samples,
        }
    }
}

impl From<proto::InventoryUpdate> for InventoryUpdate {
    fn from(i: proto::InventoryUpdate) -> Self {
        Self {
            inventory: i.inventory.unwrap_or_default().into(),
            unsupported: i.unsupported.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<InventoryUpdate> for proto::InventoryUpdate {
    fn from(u: InventoryUpdate) -> Self {
        Self {
            inventory: Some(u.inventory.into()),
            unsupported: u.unsupported.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SequencedSample> for proto::SequencedSample {
    fn from(s: SequencedSample) -> Self {
        Self {
            seq: s.seq,
            sample: Some(s.sample.into()),
            problems: s.problems.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<proto::SequencedSample> for SequencedSample {
    fn from(s: proto::SequencedSample) -> Self {
        Self {
            seq: s.seq,
            sample: s.sample.unwrap_or_default().into(),
            problems: s.problems.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample(seq: u64) -> SequencedSample {
        let mut s = SequencedSample {
            seq,
            ..Default::default()
        };
        s.sample.collected_at_unix_ms = 1_700_000_000_000 + seq;
        s.sample.memory.total_bytes = Some(64 << 30);
        s
    }

    #[test]
    fn spooled_bytes_frame_like_a_message() {
        // Framed without decoding, as the agent does from its spool.
        let mut via_bytes = Vec::new();
        encode_sample_frame(&sample(7).encode(), &mut via_bytes);
        // Framed as a generated message, as any other implementation would.
        let mut via_proto = Vec::new();
        encode_frame(Body::Sample(sample(7).into()), &mut via_proto);
        assert_eq!(via_proto, via_bytes);

        let mut decoder = FrameDecoder::default();
        decoder.push(&via_bytes);
        let Some(AgentMessage::Sample(got)) = decoder.decode().unwrap() else {
            panic!("a sample");
        };
        assert_eq!(got.seq, 7);
        assert_eq!(got.collected_at_unix_ms, 1_700_000_000_007);
        assert_eq!(got.decode().unwrap(), sample(7));
        decoder.finish().unwrap();
    }

    #[test]
    fn what_the_host_lacks_travels_with_its_inventory() {
        use crate::model::ProblemKind;
        let problems = vec![
            Problem::new("nvidia", ProblemKind::Unsupported, "no NVML"),
            Problem::new("host", ProblemKind::Failed, "EIO"),
            Problem::new("slurm", ProblemKind::TimedOut, "hung"),
        ];
        let (update, rest) = InventoryUpdate::split(HostInventory::default(), problems.clone());
        let mut reordered = problems;
        reordered.reverse();
        assert_eq!(
            InventoryUpdate::split(HostInventory::default(), reordered).0,
            update,
            "the same facts in another order are the same update"
        );
        assert_eq!(update.unsupported.len(), 1);
        assert_eq!(update.unsupported[0].collector, "nvidia");
        assert_eq!(
            rest.iter().map(|p| p.kind).collect::<Vec<_>>(),
            vec![ProblemKind::Failed, ProblemKind::TimedOut]
        );
    }

    #[test]
    fn oversize_length_is_refused_before_the_body() {
        let mut decoder = FrameDecoder::default();
        decoder.push(&((MAX_FRAME_LEN as u32) + 1).to_be_bytes());
        let err = decoder.decode::<AgentMessage>().unwrap_err();
        assert!(matches!(err, FrameError::TooLong { .. }), "{err}");
        assert!(decoder.wanted().is_err());
    }

    #[test]
    fn a_sample_with_broken_bytes_is_malformed() {
        let mut bytes = Vec::new();
        encode_sample_frame(&[0x08, 0xff], &mut bytes);
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes);
        let err = decoder.decode::<AgentMessage>().unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }

    #[test]
    fn a_sample_without_its_time_is_invalid() {
        let mut bytes = Vec::new();
        encode_sample_frame(&SequencedSample::default().encode(), &mut bytes);
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes);
        let err = decoder.decode::<AgentMessage>().unwrap_err();
        assert!(matches!(err, FrameError::Invalid(_)), "{err}");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut decoder = FrameDecoder::default();
        decoder.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        let err = decoder.decode::<AgentMessage>().unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }

    #[test]
    fn an_empty_frame_is_an_unknown_message() {
        let mut decoder = FrameDecoder::default();
        decoder.push(&[0, 0, 0, 0]);
        let err = decoder.decode::<AgentMessage>().unwrap_err();
        assert!(matches!(err, FrameError::UnknownMessage), "{err}");
    }

    #[test]
    fn a_message_for_the_other_side_is_unexpected() {
        let mut bytes = Vec::new();
        AggregatorMessage::Ack { through_seq: 3 }.encode(&mut bytes);
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes);
        let err = decoder.decode::<AgentMessage>().unwrap_err();
        assert!(matches!(err, FrameError::Unexpected("Ack")), "{err}");
    }

    #[test]
    fn truncated_stream_is_reported() {
        let mut bytes = Vec::new();
        AggregatorMessage::Ack { through_seq: 3 }.encode(&mut bytes);
        let mut decoder = FrameDecoder::default();
        decoder.push(&bytes[..bytes.len() - 1]);
        assert_eq!(decoder.decode::<AggregatorMessage>().unwrap(), None);
        assert_eq!(decoder.wanted().unwrap(), 1);
        assert!(matches!(decoder.finish(), Err(FrameError::Truncated(_))));
    }

    proptest! {
        /// Any split of a stream of frames decodes to the same messages.
        #[test]
        fn decoding_is_independent_of_chunking(
            seqs in proptest::collection::vec(any::<u64>(), 1..20),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut bytes = Vec::new();
            for &seq in &seqs {
                AggregatorMessage::Ack { through_seq: seq }.encode(&mut bytes);
            }
            let mut decoder = FrameDecoder::default();
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            for cut in cuts.iter().cycle() {
                if rest.is_empty() { break; }
                let (head, tail) = rest.split_at((*cut).min(rest.len()));
                decoder.push(head);
                rest = tail;
                while let Some(AggregatorMessage::Ack { through_seq }) = decoder.decode().unwrap() {
                    got.push(through_seq);
                }
            }
            prop_assert_eq!(got, seqs);
            prop_assert!(decoder.finish().is_ok());
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = FrameDecoder::new(1024);
            decoder.push(&bytes);
            while let Ok(Some(_)) = decoder.decode::<AgentMessage>() {}
        }
    }
}
