//! Directories and files only the host's own user may read or write: the
//! compiled-code caches of both runtimes.

use std::fs;
use std::path::Path;

/// Creates `dir` (and its missing parents) owner-only (0700), or makes an
/// existing `dir` owner-only. Fails when it cannot be made owner-only (it
/// belongs to another user, or it is not a directory): nothing the host
/// writes or loads there could then be trusted.
#[cfg(unix)]
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // Not through a symlink: the directory itself.
    let metadata = fs::symlink_metadata(dir)?;
    if !metadata.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a directory (a symbolic link?)",
        ));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        // Only its owner may change its mode: success proves it is ours.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("others may use it (mode {mode:o}) and it cannot be made 0700: {e}"),
            )
        })?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents.
#[cfg(not(unix))]
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// Writes `body` to `path` owner-only (0600), atomically: written aside in
/// the same directory, then renamed over `path`.
#[cfg(any(feature = "extism", test))]
pub(crate) fn write_private_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(body)?;
    file.as_file().sync_all()?;
    file.persist(path).map(drop).map_err(|e| e.error)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_directories_are_owner_only_whatever_was_there() {
        let root = tempfile::tempdir().unwrap();
        // New, with new parents.
        let new = root.path().join("a/b");
        private_dir(&new).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&new)), (0o700, 0o700));
        // Existing and open to others (an older host's default umask).
        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        // A symbolic link to a directory is not the directory.
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(private_dir(&link).is_err());
        // Files are written owner-only.
        let file = new.join("f");
        write_private_file(&file, b"x").unwrap();
        assert_eq!(
            (mode(&file), fs::read(&file).unwrap()),
            (0o600, b"x".to_vec())
        );
    }
}
