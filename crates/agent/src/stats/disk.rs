//! Filesystem capacity (statvfs) and the space a directory tree takes (`du -x`), as the kubelet
//! measures node filesystems, container logs and pod volumes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::types::{FsStats, Time};

/// Size and inodes of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    pub capacity_bytes: u64,
    pub available_bytes: u64,
    /// Blocks in use (capacity − free, including reserved blocks).
    pub used_bytes: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// Size and inodes of the filesystem holding `path`, or its nearest existing ancestor (a
/// directory the agent has not created yet will be made on that filesystem).
pub fn capacity(path: &Path) -> Option<Capacity> {
    let s = path.ancestors().find_map(|p| rustix::fs::statvfs(p).ok())?;
    let block = s.f_frsize;
    Some(Capacity {
        capacity_bytes: s.f_blocks.saturating_mul(block),
        available_bytes: s.f_bavail.saturating_mul(block),
        used_bytes: s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(block),
        inodes: s.f_files,
        inodes_free: s.f_ffree,
    })
}

/// Bytes allocated to, and inodes of, everything under `path` on its own filesystem (the
/// kubelet runs `du -x` and `find -xdev` for the same numbers). Symlinks are not followed.
pub fn usage(path: &Path) -> Option<(u64, u64)> {
    let root = std::fs::symlink_metadata(path).ok()?;
    let device = root.dev();
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if meta.dev() != device {
            continue;
        }
        bytes = bytes.saturating_add(meta.blocks().saturating_mul(512));
        inodes += 1;
        if !meta.is_dir() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        pending.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    Some((bytes, inodes))
}

/// FsStats of a directory tree on a filesystem: its own use with the filesystem's capacity.
pub fn tree_stats(path: &Path, time: Time) -> Option<FsStats> {
    let (used, inodes_used) = usage(path)?;
    let fs = capacity(path).unwrap_or_default();
    Some(FsStats {
        time,
        available_bytes: Some(fs.available_bytes),
        capacity_bytes: Some(fs.capacity_bytes),
        used_bytes: Some(used),
        inodes_free: Some(fs.inodes_free),
        inodes: Some(fs.inodes),
        inodes_used: Some(inodes_used),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_every_file_and_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub/a"), vec![b'x'; 10_000])?;
        std::fs::write(dir.path().join("b"), b"y")?;
        std::os::unix::fs::symlink("/etc", dir.path().join("link"))?;
        let (bytes, inodes) = usage(dir.path()).ok_or_else(|| anyhow::anyhow!("no usage"))?;
        // Root, sub, a, b and the link itself; the link's target is not walked.
        assert_eq!(inodes, 5);
        assert!(bytes >= 10_000, "{bytes}");
        let fs = capacity(dir.path()).ok_or_else(|| anyhow::anyhow!("no capacity"))?;
        assert!(fs.capacity_bytes > 0 && fs.capacity_bytes >= fs.available_bytes);
        assert!(usage(&dir.path().join("missing")).is_none());
        let below = capacity(&dir.path().join("missing/deeper")).map(|c| c.inodes);
        assert_eq!(below, Some(fs.inodes));
        assert_eq!(
            capacity(&dir.path().join("missing/deeper")).map(|c| c.inodes),
            Some(fs.inodes)
        );
        Ok(())
    }
}
