//! Listing the input files of a directory tree.
//!
//! Rules: files ending in `.yaml`, `.yml` or `.json` (any case), at any depth, in sorted path
//! order. Names starting with `.` are skipped, files and directories alike: editors' swap
//! files, `.git`, and the `..data`/`..2024_...` directories of a Kubernetes ConfigMap volume,
//! whose visible entries are symlinks into `..data` (so each file is still read exactly once,
//! through its visible name). Symlinks are followed; a directory reached twice (a symlink loop)
//! is read once. Dangling symlinks are ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::file::SourceError;

/// What the poller compares to notice a changed file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub modified: Option<SystemTime>,
    pub size: u64,
}

fn is_input(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Every input file below `dir` with its stamp, sorted by path.
pub fn list_files(dir: &Path) -> Result<Vec<(PathBuf, Stamp)>, SourceError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    walk(dir, &mut seen, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(
    dir: &Path,
    seen: &mut BTreeSet<PathBuf>,
    out: &mut Vec<(PathBuf, Stamp)>,
) -> Result<(), SourceError> {
    let read_error = |source| SourceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let canonical = dir.canonicalize().map_err(read_error)?;
    if !seen.insert(canonical) {
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        entries.push(entry.map_err(read_error)?.path());
    }
    entries.sort();
    for path in entries {
        if is_hidden(&path) {
            continue;
        }
        // `metadata` follows symlinks; a dangling one (or a file deleted meanwhile) is skipped.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, seen, out)?;
        } else if meta.is_file() && is_input(&path) {
            let stamp = Stamp {
                modified: meta.modified().ok(),
                size: meta.len(),
            };
            out.push((path, stamp));
        }
    }
    Ok(())
}
