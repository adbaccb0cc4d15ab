//! The file source: a directory of Kubernetes-format YAML/JSON, read recursively (see
//! `walk` for which files) and watched by polling.
//!
//! Each file is parsed on its own and its result kept. A file is re-read when its size or
//! modification time changes, or while its modification time is recent (a rewrite within the
//! clock's resolution would otherwise go unseen); its content hash decides whether it really
//! changed. The first load takes every file as found. After that, a changed or new file is
//! taken only once two consecutive polls saw the same stamp and hash, i.e. it held still for
//! one poll interval: a file written in place (`kubectl get -o yaml > f.yaml`, an editor
//! saving over it) may be caught cut at a document boundary, parse cleanly, and would
//! otherwise drop the objects of its missing half until the next poll. A writer that stalls
//! mid-file for longer than a poll interval can still be caught; replacing files atomically
//! (write a temporary file, then rename it over the target) avoids that. A deleted file
//! removes its objects at once: a rename-over never makes the path disappear.
//!
//! When a file parses with problems, the objects it still yields replace their old versions,
//! and objects of its last good state that it no longer yields are kept (they may sit in the
//! broken part), so a bad edit never drops config that was valid. Temporary names starting
//! with `.` or without a `.yaml`/`.yml`/`.json` ending are never read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{debug, warn};

use super::parse::{parse_file, Parsed};
use super::walk::{list_files, Stamp};
use super::{InputSet, SourceObject};
use crate::problem::{Origin, Problem};

/// The message leaves out the cause: it is chained as `source`, and reporters that print
/// the chain (anyhow, the poll log below) would otherwise show it twice.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading directory {path}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Files modified this recently are re-read on every poll (and compared by hash).
const RECENT: Duration = Duration::from_secs(2);

/// Reads every `*.yaml`, `*.yml` and `*.json` below `dir` once.
pub fn load_dir(dir: &Path) -> Result<InputSet, SourceError> {
    let mut state = DirState::new(dir.to_path_buf());
    state.refresh()?;
    Ok(state.input_set())
}

/// One file as last read.
#[derive(Debug)]
struct FileState {
    stamp: Stamp,
    hash: u64,
    /// The objects this file contributes (see the module docs for broken files).
    objects: Vec<SourceObject>,
    problems: Vec<Problem>,
}

/// Per-file parse results of a directory, refreshed in place.
#[derive(Debug)]
struct DirState {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// Set after the first successful refresh; from then on changes must hold still.
    loaded: bool,
    /// Files whose content differs from what was taken, with the stamp and hash the last poll
    /// saw; taken when the next poll sees the same.
    pending: BTreeMap<PathBuf, (Stamp, u64)>,
}

impl DirState {
    fn new(dir: PathBuf) -> DirState {
        DirState {
            dir,
            files: BTreeMap::new(),
            loaded: false,
            pending: BTreeMap::new(),
        }
    }

    /// Re-reads what changed on disk; returns whether any file's result changed.
    fn refresh(&mut self) -> Result<bool, SourceError> {
        let listed = list_files(&self.dir)?;
        let now = SystemTime::now();
        let present: BTreeSet<&PathBuf> = listed.iter().map(|(p, _)| p).collect();
        let before = self.files.len();
        self.files.retain(|path, _| present.contains(path));
        self.pending.retain(|path, _| present.contains(path));
        let mut changed = self.files.len() != before;
        for (path, stamp) in &listed {
            let recent = stamp
                .modified
                .and_then(|m| now.duration_since(m).ok())
                .is_none_or(|age| age < RECENT);
            if self
                .files
                .get(path)
                .is_some_and(|f| f.stamp == *stamp && !recent)
                && !self.pending.contains_key(path)
            {
                continue;
            }
            let read = read_file(path);
            if let Some(file) = self.files.get_mut(path) {
                if file.hash == read.hash {
                    // Unchanged, or back to what was taken before a pending change settled.
                    file.stamp = *stamp;
                    self.pending.remove(path);
                    continue;
                }
            }
            let seen = (*stamp, read.hash);
            if self.loaded && self.pending.get(path) != Some(&seen) {
                debug!(file = %path.display(), "input file changing; waiting for it to hold still");
                self.pending.insert(path.clone(), seen);
                continue;
            }
            self.pending.remove(path);
            let hash = read.hash;
            let parsed = read.parse(path);
            let previous = self.files.remove(path).map(|f| f.objects);
            debug!(file = %path.display(), added = previous.is_none(), "input file taken");
            let file = FileState {
                stamp: *stamp,
                hash,
                objects: merge(previous.unwrap_or_default(), &parsed),
                problems: parsed.problems,
            };
            self.files.insert(path.clone(), file);
            changed = true;
        }
        self.loaded = true;
        Ok(changed)
    }

    fn input_set(&self) -> InputSet {
        let mut set = InputSet::default();
        for file in self.files.values() {
            set.objects.extend(file.objects.iter().cloned());
            set.problems.extend(file.problems.iter().cloned());
        }
        set
    }
}

/// A file's content as read: its hash, and its text or why there is none.
struct FileRead {
    hash: u64,
    text: Result<String, String>,
}

fn read_file(path: &Path) -> FileRead {
    match std::fs::read(path) {
        Ok(bytes) => FileRead {
            hash: xxhash_rust::xxh3::xxh3_64(&bytes),
            text: String::from_utf8(bytes)
                .map_err(|e| format!("not utf-8 text: {}", e.utf8_error())),
        },
        // A hash no content has, so the next successful read counts as a change.
        Err(e) => FileRead {
            hash: 0,
            text: Err(format!("cannot read file: {e}")),
        },
    }
}

impl FileRead {
    /// Parses the text; an unreadable file is a problem with no objects.
    fn parse(self, path: &Path) -> Parsed {
        match self.text {
            Ok(text) => parse_file(path, &text),
            Err(reason) => Parsed {
                objects: Vec::new(),
                problems: vec![Problem {
                    origin: Origin {
                        file: path.to_path_buf(),
                        ..Origin::default()
                    },
                    object: None,
                    field: None,
                    reason,
                }],
            },
        }
    }
}

/// A file's objects after a new parse: all new objects, plus, when the parse had problems,
/// the previous objects the new parse no longer yields.
fn merge(previous: Vec<SourceObject>, parsed: &Parsed) -> Vec<SourceObject> {
    let mut objects = parsed.objects.clone();
    if !parsed.problems.is_empty() {
        let key = |o: &SourceObject| {
            let r = o.object.object_ref();
            (r.kind, r.namespace, r.name)
        };
        let fresh: BTreeSet<_> = objects.iter().map(key).collect();
        objects.extend(previous.into_iter().filter(|o| !fresh.contains(&key(o))));
        objects.sort_by(|a, b| a.origin.cmp(&b.origin));
    }
    objects
}

/// Watches a directory; the receiver holds `None` until the first full load.
pub struct FileSource;

impl FileSource {
    /// Starts polling `dir` every `poll_interval` on the current tokio runtime. A new
    /// `InputSet` is published only when it differs from the last one. The task ends when
    /// every receiver is dropped.
    pub fn start(dir: PathBuf, poll_interval: Duration) -> watch::Receiver<Option<Arc<InputSet>>> {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let mut state = DirState::new(dir);
            // Logged once per distinct error, not on every poll.
            let mut last_error: Option<String> = None;
            loop {
                let polled = tokio::task::spawn_blocking(move || {
                    let result = state.refresh();
                    (state, result)
                })
                .await;
                let result;
                (state, result) = match polled {
                    Ok(done) => done,
                    Err(error) => {
                        warn!(%error, "file source poll failed; stopping");
                        return;
                    }
                };
                match result {
                    Ok(changed) => {
                        last_error = None;
                        if changed || tx.borrow().is_none() {
                            publish(&tx, state.input_set());
                        }
                    }
                    // Keep serving what was loaded; the directory may come back.
                    Err(error) => {
                        let text = error_chain(&error);
                        if last_error.as_ref() != Some(&text) {
                            warn!(error = %text, "cannot read the config directory; keeping the last input");
                            last_error = Some(text);
                        }
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(poll_interval).await;
            }
        });
        rx
    }
}

/// An error with its causes, `outer: inner: ...`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn publish(tx: &watch::Sender<Option<Arc<InputSet>>>, set: InputSet) {
    tx.send_if_modified(|current| {
        if current.as_deref() == Some(&set) {
            return false;
        }
        debug!(
            objects = set.objects.len(),
            problems = set.problems.len(),
            "input changed"
        );
        *current = Some(Arc::new(set));
        true
    });
}

#[cfg(test)]
mod tests;
