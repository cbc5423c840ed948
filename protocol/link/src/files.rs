//! Files only their owner may read: keys, certificates, tokens.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

/// Writes `contents` to `path`, readable by its owner only (0600),
/// atomically: through a temporary file beside it, synced, then renamed,
/// so a crash leaves the old file or the new one, never half of one.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let with_path = |at: &Path| {
        let at = at.to_owned();
        move |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", at.display()))
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(with_path(&tmp))?;
    file.write_all(contents).map_err(with_path(&tmp))?;
    file.sync_all().map_err(with_path(&tmp))?;
    fs::rename(&tmp, path).map_err(with_path(path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("secret.tmp").exists());
    }

    #[test]
    fn a_failure_names_the_file() {
        let err = write_private(Path::new("/nonexistent-dir/secret"), b"x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/secret.tmp"),
            "{err}"
        );
    }
}
