//! Writes the files of a ConfigMap, Secret, downward API or projected volume the way the
//! kubelet's `AtomicWriter` does, so a container never sees half an update: the files live in a
//! timestamped directory `..<time>`, `..data` is a symlink to it, and each visible top-level
//! name is a symlink into `..data`. An update writes a new timestamped directory and renames a
//! fresh symlink over `..data` (atomic), then removes the old directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

const DATA_LINK: &str = "..data";
const DATA_LINK_TMP: &str = "..data_tmp";

/// One file of the volume: its content and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The files of a volume by relative path (`key` or `dir/key`).
pub type Payload = BTreeMap<String, FileContent>;

/// Checks a relative path as upstream's `validatePath`: not absolute, no `..` element, not
/// starting with `..`.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return Err(format!("invalid path: must be relative path: {path}"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) || path.starts_with("..") {
        return Err(format!("invalid path: must not contain '..': {path}"));
    }
    Ok(())
}

/// The payload currently visible in `dir`, if the layout exists.
fn current(dir: &Path) -> Option<Payload> {
    let data = dir.join(DATA_LINK);
    std::fs::symlink_metadata(&data).ok()?;
    let mut out = Payload::new();
    fn walk(base: &Path, rel: &str, out: &mut Payload) -> io::Result<()> {
        for entry in std::fs::read_dir(base.join(rel))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_name = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(base, &rel_name, out)?;
            } else {
                out.insert(
                    rel_name.clone(),
                    FileContent {
                        data: std::fs::read(base.join(&rel_name))?,
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            }
        }
        Ok(())
    }
    walk(&data, "", &mut out).ok()?;
    Some(out)
}

fn top_level(payload: &Payload) -> BTreeSet<String> {
    payload
        .keys()
        .filter_map(|p| p.split('/').next().map(str::to_string))
        .collect()
}

/// Makes `dir` show exactly `payload`; returns whether anything changed.
pub fn write(dir: &Path, payload: &Payload) -> io::Result<bool> {
    for path in payload.keys() {
        validate_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    std::fs::create_dir_all(dir)?;
    let old = current(dir);
    if old.as_ref() == Some(payload) {
        return Ok(false);
    }
    let old_target = std::fs::read_link(dir.join(DATA_LINK)).ok();
    let now = k8s_openapi::jiff::Timestamp::now();
    let stamp = format!(
        "..{}.{:09}",
        now.strftime("%Y_%m_%d_%H_%M_%S"),
        now.subsec_nanosecond()
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir_all(&fresh)?;
    for (path, file) in payload {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &file.data)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))?;
    }
    let tmp = dir.join(DATA_LINK_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA_LINK))?;
    let wanted = top_level(payload);
    for name in &wanted {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_LINK).join(name), &link)?;
        }
    }
    if let Some(old) = &old {
        for gone in top_level(old).difference(&wanted) {
            let _ = std::fs::remove_file(dir.join(gone));
        }
    }
    if let Some(target) = old_target
        && target != Path::new(&stamp)
    {
        let _ = std::fs::remove_dir_all(dir.join(target));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(s: &str, mode: u32) -> FileContent {
        FileContent {
            data: s.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn updates_swap_the_data_link_and_drop_removed_keys() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("rkube-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Payload::from([
            ("a".to_string(), file("1", 0o644)),
            ("sub/b".to_string(), file("2", 0o400)),
        ]);
        assert!(write(&dir, &first)?);
        assert!(!write(&dir, &first)?);
        assert_eq!(std::fs::read_to_string(dir.join("sub/b"))?, "2");
        let mode = std::fs::metadata(dir.join("sub/b"))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let second = Payload::from([("a".to_string(), file("changed", 0o644))]);
        assert!(write(&dir, &second)?);
        assert_eq!(std::fs::read_to_string(dir.join("a"))?, "changed");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        let stamped = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .count();
        assert_eq!(stamped, 1);
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn paths_escaping_the_volume_are_refused() {
        assert!(validate_path("../etc/passwd").is_err());
        assert!(validate_path("/abs").is_err());
        assert!(validate_path("..data").is_err());
        assert!(validate_path("ok/file").is_ok());
    }
}
