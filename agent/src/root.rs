//! The host's file tree, seen through an injectable root.
//!
//! Every collector reads `/proc`, `/sys`, `/etc` and `/dev` through a
//! [`HostRoot`], so tests point it at a fixture tree and the agent in a
//! container points it at the host's tree mounted elsewhere (`--host-root`).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    base: PathBuf,
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::live()
    }
}

impl HostRoot {
    /// The machine the agent runs on.
    pub fn live() -> Self {
        Self {
            base: PathBuf::from("/"),
        }
    }

    pub fn at(base: impl Into<PathBuf>) -> Self {
        Self { base: base.into() }
    }

    /// True when this root is the running system itself, so that facts only
    /// the kernel can give (interface addresses, uname) describe the same host.
    pub fn is_live(&self) -> bool {
        self.base == Path::new("/")
    }

    /// Maps an absolute host path (`/proc/stat`) into this root.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let host_path = host_path.as_ref();
        self.base
            .join(host_path.strip_prefix("/").unwrap_or(host_path))
    }

    pub fn read(&self, host_path: impl AsRef<Path>) -> io::Result<String> {
        fs::read_to_string(self.path(host_path))
    }

    /// A one-line sysfs attribute: trimmed, `None` when missing, unreadable or empty.
    pub fn attribute(&self, host_path: impl AsRef<Path>) -> Option<String> {
        let text = self.read(host_path).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// A numeric sysfs attribute.
    pub fn number<T: std::str::FromStr>(&self, host_path: impl AsRef<Path>) -> Option<T> {
        self.attribute(host_path)?.parse().ok()
    }

    /// Entry names of a directory, sorted so output order is stable.
    pub fn entries(&self, host_path: impl AsRef<Path>) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.path(host_path))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        Ok(names)
    }
}

/// Orders `cpu2` before `cpu10`, as a person reads them.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head, tail.parse().ok())
    }
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_host_paths_under_the_root() {
        let root = HostRoot::at("/fixtures/h1");
        assert_eq!(
            root.path("/proc/stat"),
            PathBuf::from("/fixtures/h1/proc/stat")
        );
        assert!(!root.is_live());
        assert!(HostRoot::live().is_live());
    }

    #[test]
    fn orders_names_naturally() {
        let mut v = vec!["cpu10", "cpu2", "cpu1", "eth0", "card"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["card", "cpu1", "cpu2", "cpu10", "eth0"]);
    }
}
