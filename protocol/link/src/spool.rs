//! The on-disk spool: every sample stays here until the aggregator says it
//! is stored, so an aggregator restart, a cut link or an agent crash loses
//! nothing that was acknowledged and nothing that was not.
//!
//! # Format
//!
//! ```text
//! DIR/
//!   00000000000000000042.seg   segments, named by the first sequence number they hold
//!   00000000000000001337.seg
//!   meta                       "acked=N\ndropped=M\nnext=K\n", replaced atomically
//! ```
//!
//! A segment is a run of records, each
//! `u32 LE length | u32 LE crc32(seq ‖ payload) | u64 LE seq | payload`,
//! with strictly increasing sequence numbers. A new segment starts when the
//! current one passes [`SEGMENT_BYTES`]. Appends are plain `write`s: a killed
//! process loses nothing (the page cache survives it); segments are fsynced
//! when they are sealed. On open, a torn last record (a crash mid-write)
//! fails its length or CRC check and is cut off.
//!
//! The spool is bounded ([`Spool::open`]'s `max_bytes`): when a new segment
//! would pass it, the oldest segment goes, and every unacknowledged record in
//! it is counted in `dropped`, which the agent reports to the aggregator.

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read, Seek, SeekFrom, Write},
    ops::RangeInclusive,
    path::{Path, PathBuf},
};

/// Where a segment is sealed and a new one begun.
pub const SEGMENT_BYTES: u64 = 1 << 20;
const HEADER: usize = 16;
/// A record larger than this is corruption, not a sample.
const MAX_RECORD: u32 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool meta file {0} is damaged")]
    Meta(PathBuf),
    #[error("sample {seq} is not newer than the spool's last ({last})")]
    OutOfOrder { seq: u64, last: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    first_seq: u64,
    last_seq: u64,
    bytes: u64,
}

/// Where the last read stopped, so sending in order never rescans.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    first_seq: u64,
    offset: u64,
    next_seq: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    active: Option<File>,
    acked: Option<u64>,
    dropped: u64,
    next_seq: u64,
    cursor: Option<Cursor>,
}

impl Spool {
    /// Opens the spool in `dir`, creating it, and recovers from a crash.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut names: Vec<(u64, PathBuf)> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let seq = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse()
                    .ok()?;
                Some((seq, path))
            })
            .collect();
        names.sort();
        let mut segments = VecDeque::new();
        for (_, path) in names {
            match scan(&path)? {
                Some(segment) => segments.push_back(segment),
                None => fs::remove_file(&path).map_err(io_err(&path))?,
            }
        }
        let meta = read_meta(&dir.join("meta"))?;
        let last = segments.back().map(|s| s.last_seq);
        let next_seq = [meta.next, last.map(|l| l + 1), meta.acked.map(|a| a + 1)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
        let mut spool = Self {
            dir: dir.to_owned(),
            max_bytes: max_bytes.max(SEGMENT_BYTES * 2),
            segments,
            active: None,
            acked: meta.acked,
            dropped: meta.dropped,
            next_seq,
            cursor: None,
        };
        if let Some(acked) = spool.acked {
            spool.remove_acked_segments(acked)?;
        }
        Ok(spool)
    }

    /// The sequence number the next sample must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Numbers new samples from `next` on (after the aggregator said older
    /// numbers are taken); ignored if it would go backwards.
    pub fn renumber(&mut self, next: u64) -> Result<(), SpoolError> {
        if next > self.next_seq {
            self.next_seq = next;
            self.write_meta()?;
        }
        Ok(())
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Sequence numbers not yet acknowledged: from the oldest to the newest
    /// held (some in between may have been dropped by the bound).
    pub fn pending(&self) -> Option<RangeInclusive<u64>> {
        let first = self.segments.front()?.first_seq;
        let last = self.segments.back()?.last_seq;
        let start = match self.acked {
            Some(acked) => first.max(acked + 1),
            None => first,
        };
        (start <= last).then_some(start..=last)
    }

    /// Appends one sample; `seq` must be at least [`Spool::next_seq`].
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), SpoolError> {
        if seq < self.next_seq {
            return Err(SpoolError::OutOfOrder {
                seq,
                last: self.next_seq.saturating_sub(1),
            });
        }
        let record_len = (HEADER + payload.len()) as u64;
        let rotate = match self.segments.back() {
            None => true,
            Some(s) => s.bytes + record_len > SEGMENT_BYTES && s.bytes > 0,
        };
        if rotate {
            self.seal_active()?;
            while self.bytes() + record_len > self.max_bytes && !self.segments.is_empty() {
                self.drop_oldest()?;
            }
            let path = self.dir.join(format!("{seq:020}.seg"));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            self.active = Some(file);
            self.segments.push_back(Segment {
                path,
                first_seq: seq,
                last_seq: seq,
                bytes: 0,
            });
        }
        let segment = self
            .segments
            .back_mut()
            .expect("a segment was just ensured");
        let file = match &mut self.active {
            Some(file) => file,
            None => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&segment.path)
                    .map_err(io_err(&segment.path))?;
                self.active.insert(file)
            }
        };
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc(seq, payload).to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        file.write_all(&record).map_err(io_err(&segment.path))?;
        segment.last_seq = seq;
        segment.bytes += record_len;
        self.next_seq = seq + 1;
        Ok(())
    }

    /// The first held record with a sequence number of at least `from`.
    pub fn read(&mut self, from: u64) -> Result<Option<(u64, Vec<u8>)>, SpoolError> {
        let Some(index) = self.segments.iter().position(|s| s.last_seq >= from) else {
            return Ok(None);
        };
        let segment = &self.segments[index];
        let mut offset = match self.cursor {
            Some(c) if c.first_seq == segment.first_seq && c.next_seq <= from => c.offset,
            _ => 0,
        };
        let mut file = File::open(&segment.path).map_err(io_err(&segment.path))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(io_err(&segment.path))?;
        let mut reader = BufReader::new(file);
        while let Some((seq, payload, len)) =
            read_record(&mut reader).map_err(io_err(&segment.path))?
        {
            offset += len;
            if seq >= from {
                self.cursor = Some(Cursor {
                    first_seq: segment.first_seq,
                    offset,
                    next_seq: seq + 1,
                });
                return Ok(Some((seq, payload)));
            }
        }
        Ok(None)
    }

    /// The aggregator stored everything up to `through`: let it go.
    pub fn release(&mut self, through: u64) -> Result<(), SpoolError> {
        if self.acked.is_some_and(|a| a >= through) {
            return Ok(());
        }
        self.acked = Some(through);
        self.write_meta()?;
        self.remove_acked_segments(through)
    }

    fn remove_acked_segments(&mut self, through: u64) -> Result<(), SpoolError> {
        // The active segment stays while it is being appended to.
        while self.segments.len() > 1
            && self.segments.front().is_some_and(|s| s.last_seq <= through)
        {
            let segment = self.segments.pop_front().expect("checked");
            fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
        }
        Ok(())
    }

    fn drop_oldest(&mut self) -> Result<(), SpoolError> {
        let Some(segment) = self.segments.pop_front() else {
            return Ok(());
        };
        if self.segments.is_empty() {
            self.active = None;
        }
        let unacked = count_unacked(&segment.path, self.acked)?;
        fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
        if unacked > 0 {
            self.dropped += unacked;
            tracing::warn!(
                dropped = unacked,
                total_dropped = self.dropped,
                "spool full: dropped the oldest unacknowledged samples"
            );
            self.write_meta()?;
        }
        Ok(())
    }

    fn seal_active(&mut self) -> Result<(), SpoolError> {
        if let (Some(file), Some(segment)) = (self.active.take(), self.segments.back()) {
            file.sync_data().map_err(io_err(&segment.path))?;
        }
        Ok(())
    }

    fn write_meta(&self) -> Result<(), SpoolError> {
        let path = self.dir.join("meta");
        let tmp = self.dir.join("meta.tmp");
        let mut text = String::new();
        if let Some(acked) = self.acked {
            text.push_str(&format!("acked={acked}\n"));
        }
        text.push_str(&format!(
            "dropped={}\nnext={}\n",
            self.dropped, self.next_seq
        ));
        fs::write(&tmp, text).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    /// Makes every appended record durable against power loss, not just a
    /// process crash (called on shutdown).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if let (Some(file), Some(segment)) = (&self.active, self.segments.back()) {
            file.sync_data().map_err(io_err(&segment.path))?;
        }
        Ok(())
    }
}

fn crc(seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// One record, or `None` at the end (or at a torn tail).
fn read_record(reader: &mut impl Read) -> io::Result<Option<(u64, Vec<u8>, u64)>> {
    let mut header = [0u8; HEADER];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let sum = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if len > MAX_RECORD {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    match reader.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if crc(seq, &payload) != sum {
        return Ok(None);
    }
    Ok(Some((seq, payload, (HEADER as u64) + u64::from(len))))
}

/// Reads a segment's bounds, cutting off a torn tail. `None` if it holds nothing.
fn scan(path: &Path) -> Result<Option<Segment>, SpoolError> {
    let file = File::open(path).map_err(io_err(path))?;
    let total = file.metadata().map_err(io_err(path))?.len();
    let mut reader = BufReader::new(file);
    let (mut first, mut last, mut good) = (None, None, 0u64);
    while let Some((seq, _, len)) = read_record(&mut reader).map_err(io_err(path))? {
        if last.is_some_and(|l| seq <= l) {
            break;
        }
        first.get_or_insert(seq);
        last = Some(seq);
        good += len;
    }
    if good < total {
        tracing::warn!(path = %path.display(), kept = good, total, "cutting a torn spool tail");
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(good))
            .map_err(io_err(path))?;
    }
    Ok(match (first, last) {
        (Some(first_seq), Some(last_seq)) => Some(Segment {
            path: path.to_owned(),
            first_seq,
            last_seq,
            bytes: good,
        }),
        _ => None,
    })
}

fn count_unacked(path: &Path, acked: Option<u64>) -> Result<u64, SpoolError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut n = 0;
    while let Some((seq, _, _)) = read_record(&mut reader).map_err(io_err(path))? {
        if acked.is_none_or(|a| seq > a) {
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, Default)]
struct Meta {
    acked: Option<u64>,
    dropped: u64,
    next: Option<u64>,
}

fn read_meta(path: &Path) -> Result<Meta, SpoolError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Meta::default()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut meta = Meta::default();
    for line in text.lines() {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| SpoolError::Meta(path.to_owned()))?;
        let value: u64 = value
            .parse()
            .map_err(|_| SpoolError::Meta(path.to_owned()))?;
        match key {
            "acked" => meta.acked = Some(value),
            "dropped" => meta.dropped = value,
            "next" => meta.next = Some(value),
            _ => return Err(SpoolError::Meta(path.to_owned())),
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn payload(seq: u64, size: usize) -> Vec<u8> {
        (0..size).map(|i| (seq as usize + i) as u8).collect()
    }

    #[test]
    fn survives_reopen_and_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 64 << 20).unwrap();
        for seq in 0..10 {
            spool.append(seq, &payload(seq, 100)).unwrap();
        }
        spool.release(3).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(spool.pending(), Some(4..=9));
        assert_eq!(spool.next_seq(), 10);
        let mut seq = 4;
        while let Some((got, bytes)) = spool.read(seq).unwrap() {
            assert_eq!(got, seq);
            assert_eq!(bytes, payload(seq, 100));
            seq += 1;
        }
        assert_eq!(seq, 10);
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 64 << 20).unwrap();
        for seq in 0..3 {
            spool.append(seq, &payload(seq, 50)).unwrap();
        }
        let path = spool.segments[0].path.clone();
        drop(spool);
        // A crash in the middle of the last write.
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        let mut spool = Spool::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(spool.pending(), Some(0..=1));
        assert_eq!(spool.next_seq(), 2);
        spool.append(2, &payload(2, 50)).unwrap();
        assert_eq!(spool.read(2).unwrap().unwrap().0, 2);
    }

    #[test]
    fn the_bound_drops_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 2 * SEGMENT_BYTES).unwrap();
        let big = 100 << 10;
        for seq in 0..60 {
            spool.append(seq, &payload(seq, big)).unwrap();
        }
        assert!(spool.bytes() <= 2 * SEGMENT_BYTES);
        let pending = spool.pending().unwrap();
        assert_eq!(*pending.end(), 59);
        assert_eq!(spool.dropped(), *pending.start());
        drop(spool);
        let spool = Spool::open(dir.path(), 2 * SEGMENT_BYTES).unwrap();
        assert_eq!(
            spool.dropped(),
            *pending.start(),
            "the count survives a restart"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Release(u64),
        Read(u64),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1usize..40_000).prop_map(Op::Append),
            2 => (0u64..200).prop_map(Op::Release),
            3 => (0u64..200).prop_map(Op::Read),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The spool against a map: what it holds, in order, across reopens,
        /// and every record missing is either released or counted as dropped.
        #[test]
        fn behaves_like_a_bounded_map(ops in proptest::collection::vec(op(), 1..120)) {
            let dir = tempfile::tempdir().unwrap();
            let max = 2 * SEGMENT_BYTES;
            let mut spool = Spool::open(dir.path(), max).unwrap();
            let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            let mut acked: Option<u64> = None;
            for op in ops {
                match op {
                    Op::Append(size) => {
                        let seq = spool.next_seq();
                        let bytes = payload(seq, size);
                        spool.append(seq, &bytes).unwrap();
                        model.insert(seq, bytes);
                    }
                    Op::Release(through) => {
                        spool.release(through).unwrap();
                        acked = acked.max(Some(through));
                        model.retain(|s, _| *s > through);
                    }
                    Op::Read(from) => {
                        if let Some((seq, bytes)) = spool.read(from).unwrap() {
                            prop_assert!(seq >= from);
                            // Held records match the model where the model has them.
                            if let Some(expected) = model.get(&seq) {
                                prop_assert_eq!(&bytes, expected);
                            }
                        }
                    }
                    Op::Reopen => {
                        drop(spool);
                        spool = Spool::open(dir.path(), max).unwrap();
                    }
                }
                prop_assert!(spool.bytes() <= max + 40_000 + HEADER as u64);
                // Dropped records leave the model too.
                match spool.pending() {
                    Some(range) => model.retain(|s, _| *s >= *range.start()),
                    None => model.clear(),
                }
            }
            // Everything still pending reads back exactly, in order.
            let mut from = 0;
            let mut seen = Vec::new();
            while let Some((seq, bytes)) = spool.read(from).unwrap() {
                if acked.is_none_or(|a| seq > a) {
                    seen.push((seq, bytes));
                }
                from = seq + 1;
            }
            let expected: Vec<_> = model.into_iter().collect();
            prop_assert_eq!(seen, expected);
        }
    }
}
