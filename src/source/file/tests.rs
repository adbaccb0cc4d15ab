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
    set.objects.iter().find_map(|o| match &o.object {
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
    assert!(load_dir(&dir.path().join("nope")).is_err());
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
    assert!(state.refresh().unwrap());
    let set = state.input_set();
    assert_eq!(names(&set), ["a", "b"]);
    assert_eq!(port_of(&set, "a"), Some(81));
    assert_eq!(port_of(&set, "b"), Some(80));
    assert_eq!(set.problems.len(), 1);

    // Fixed: the file's content is what counts again.
    fs::write(&file, service("a", 82)).unwrap();
    assert!(state.refresh().unwrap());
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
