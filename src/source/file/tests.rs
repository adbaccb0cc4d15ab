use std::fs;
use std::time::Duration;

use super::*;

fn service(name: &str, port: u16) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: {port}\n")
}

fn names(set: &InputSet) -> Vec<String> {
    set.objects
        .iter()
        .map(|o| o.object.object_ref().name)
        .collect()
}

fn port_of(set: &InputSet, name: &str) -> Option<i64> {
    set.objects.iter().find_map(|o| match &*o.object {
        crate::source::KubeObject::Service(s) if s.metadata.name.as_deref() == Some(name) => {
            s.spec.ports[0].port
        }
        _ => None,
    })
}

#[test]
fn load_dir_reads_recursively_in_path_order_and_skips_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("b/c")).unwrap();
    fs::create_dir_all(root.join("..data")).unwrap();
    fs::write(root.join("b/c/z.yml"), service("z", 1)).unwrap();
    fs::write(root.join("a.yaml"), service("a", 1)).unwrap();
    fs::write(
        root.join("b/m.JSON"),
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"m"}}"#,
    )
    .unwrap();
    fs::write(root.join("b/notes.txt"), "ignored").unwrap();
    fs::write(root.join(".hidden.yaml"), service("hidden", 1)).unwrap();
    fs::write(root.join("..data/inner.yaml"), service("inner", 1)).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("..data/inner.yaml"), root.join("linked.yaml")).unwrap();
    let set = load_dir(root).unwrap();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    assert_eq!(names(&set), ["a", "z", "m", "inner"]);
}

#[test]
fn load_dir_fails_for_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let error = load_dir(&dir.path().join("nope")).unwrap_err();
    // The OS error is the chained source, not part of the message (it would print twice).
    assert!(!error.to_string().contains("os error"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    assert!(error_chain(&error).contains("os error 2"));
}

/// After the first load a change is taken on the second poll that sees it unchanged.
fn settle(state: &mut DirState) {
    assert!(!state.refresh().unwrap(), "taken before holding still");
    assert!(state.refresh().unwrap(), "not taken after holding still");
}

#[test]
fn changed_file_is_taken_once_it_holds_still() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    let whole = format!("{}---\n{}", service("a", 80), service("b", 80));
    fs::write(&file, &whole).unwrap();
    let mut state = DirState::new(dir.path().to_path_buf());
    // The first load is immediate.
    assert!(state.refresh().unwrap());
    assert_eq!(names(&state.input_set()), ["a", "b"]);

    // Caught half-written at a document boundary: it parses, but nothing is dropped.
    fs::write(&file, format!("{}---\n", service("a", 81))).unwrap();
    assert!(!state.refresh().unwrap());
    assert_eq!(names(&state.input_set()), ["a", "b"]);
    assert_eq!(port_of(&state.input_set(), "a"), Some(80));

    // Completed before the next poll: that content must hold still in turn.
    fs::write(
        &file,
        format!("{}---\n{}", service("a", 81), service("b", 80)),
    )
    .unwrap();
    settle(&mut state);
    assert_eq!(names(&state.input_set()), ["a", "b"]);
    assert_eq!(port_of(&state.input_set(), "a"), Some(81));

    // A change reverted before it held still was never taken, and needs nothing.
    fs::write(&file, service("a", 99)).unwrap();
    assert!(!state.refresh().unwrap());
    fs::write(
        &file,
        format!("{}---\n{}", service("a", 81), service("b", 80)),
    )
    .unwrap();
    assert!(!state.refresh().unwrap());
    assert!(!state.refresh().unwrap());
    assert!(state.pending.is_empty());

    // New files wait too; deleted files go at once.
    fs::write(dir.path().join("t.yaml"), service("c", 80)).unwrap();
    settle(&mut state);
    assert_eq!(names(&state.input_set()), ["a", "b", "c"]);
    fs::remove_file(dir.path().join("t.yaml")).unwrap();
    assert!(state.refresh().unwrap());
    assert_eq!(names(&state.input_set()), ["a", "b"]);
}

#[test]
fn broken_file_keeps_last_good_objects_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    fs::write(
        &file,
        format!("{}---\n{}", service("a", 80), service("b", 80)),
    )
    .unwrap();
    let mut state = DirState::new(dir.path().to_path_buf());
    assert!(state.refresh().unwrap());
    assert_eq!(names(&state.input_set()), ["a", "b"]);

    // `a` changes validly, `b` breaks: the new `a` and the last good `b` are served.
    fs::write(&file, format!("{}---\nkind: [\n", service("a", 81))).unwrap();
    settle(&mut state);
    let set = state.input_set();
    assert_eq!(names(&set), ["a", "b"]);
    assert_eq!(port_of(&set, "a"), Some(81));
    assert_eq!(port_of(&set, "b"), Some(80));
    assert_eq!(set.problems.len(), 1);

    // Fixed: the file's content is what counts again.
    fs::write(&file, service("a", 82)).unwrap();
    settle(&mut state);
    let set = state.input_set();
    assert_eq!(names(&set), ["a"]);
    assert!(set.problems.is_empty());

    // Unchanged content: nothing to publish.
    assert!(!state.refresh().unwrap());
    fs::remove_file(&file).unwrap();
    assert!(state.refresh().unwrap());
    assert!(state.input_set().objects.is_empty());
}

async fn next(rx: &mut watch::Receiver<Option<Arc<InputSet>>>) -> Arc<InputSet> {
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("no update within 5s")
        .expect("source stopped");
    rx.borrow_and_update().clone().expect("published None")
}

#[tokio::test]
async fn file_source_publishes_changes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.yaml"), service("a", 80)).unwrap();
    let mut rx = FileSource::start(dir.path().to_path_buf(), Duration::from_millis(20));
    let set = next(&mut rx).await;
    assert_eq!(names(&set), ["a"]);

    fs::write(dir.path().join("b.yaml"), service("b", 80)).unwrap();
    assert_eq!(names(&*next(&mut rx).await), ["a", "b"]);

    fs::write(dir.path().join("a.yaml"), service("a", 90)).unwrap();
    let set = next(&mut rx).await;
    assert_eq!(port_of(&set, "a"), Some(90));

    // Broken: the problem is published, the last good `a` stays.
    fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: Service\n  x: [\n",
    )
    .unwrap();
    let set = next(&mut rx).await;
    assert_eq!(port_of(&set, "a"), Some(90));
    assert_eq!(set.problems.len(), 1);

    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let set = next(&mut rx).await;
    assert_eq!(names(&set), ["b"]);
    assert!(set.problems.is_empty());
}

// Paused time: the poller's sleeps and the test's are virtual, and time does not advance
// while a poll runs on the blocking pool, so the test knows how many polls saw each state.
#[tokio::test(start_paused = true)]
async fn file_source_does_not_publish_a_half_written_file() {
    let poll = Duration::from_millis(500);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    fs::write(
        &file,
        format!("{}---\n{}", service("a", 80), service("b", 80)),
    )
    .unwrap();
    let mut rx = FileSource::start(dir.path().to_path_buf(), poll);
    assert_eq!(names(&*next(&mut rx).await), ["a", "b"]);

    // The poller now sleeps one interval; half the file is on disk for the next poll.
    fs::write(&file, format!("{}---\n", service("a", 81))).unwrap();
    tokio::time::sleep(poll / 2).await;
    tokio::time::sleep(poll).await;
    assert!(
        !rx.has_changed().unwrap(),
        "half-written file was published"
    );
    assert_eq!(names(rx.borrow().as_ref().unwrap()), ["a", "b"]);

    // Completed: published once it held still for a poll, with nothing lost meanwhile.
    fs::write(
        &file,
        format!("{}---\n{}", service("a", 81), service("b", 80)),
    )
    .unwrap();
    let set = next(&mut rx).await;
    assert_eq!(names(&set), ["a", "b"]);
    assert_eq!(port_of(&set, "a"), Some(81));
}

#[tokio::test]
async fn file_source_publishes_an_empty_directory_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = FileSource::start(dir.path().to_path_buf(), Duration::from_millis(10));
    let set = next(&mut rx).await;
    assert!(set.objects.is_empty());
    // Nothing changes: no further publication.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.changed())
            .await
            .is_err()
    );
}
