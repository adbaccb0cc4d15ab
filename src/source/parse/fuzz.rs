//! A bounded fuzz test of the file parser (`parse_file`, as the file source calls it): the
//! YAML and JSON inputs under testdata/ are mutated at random (bytes and YAML/JSON tokens
//! inserted, deleted or replaced, lines spliced in from other inputs, cut short) and
//! parsed. The parser must never panic, must finish (within a generous bound, so a hang
//! fails instead of stalling CI), and every problem it reports must name the file and a
//! line within the text (and a column, where given, within that line).
//!
//! CI runs `CASES` cases from a fixed seed; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` search
//! longer or elsewhere (see README). Failures are saved under `proptest-regressions/` and
//! replayed first: commit that file with the fix.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{parse_file, Parsed};

const CASES: u32 = 256;
const SEED: u64 = 0x7061_7273_6572_6675;
/// Far above what any input here needs (milliseconds): only a hang gets near it.
const HANG: Duration = Duration::from_secs(20);

/// The proptest configuration CI runs (see `testing::fixed_proptest_config`).
fn config() -> Config {
    crate::testing::fixed_proptest_config(CASES, SEED)
}

/// The seed inputs: every YAML and JSON file under testdata/ except the expected outputs.
fn seeds() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("testdata is readable") {
            let path = entry.expect("testdata entry").path();
            if path.is_dir() {
                if path != root.join("golden") {
                    dirs.push(path);
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            ) {
                let text = std::fs::read_to_string(&path).expect("seed input is text");
                out.push((path, text));
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 10,
        "seed inputs under testdata/: {}",
        out.len()
    );
    out
}

/// Pieces that mean something to YAML or JSON, to insert or replace with.
const TOKENS: &[&str] = &[
    "---\n",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "|\n",
    ">-\n",
    "\t",
    "\n",
    "  ",
    "\\u0000",
    "\u{feff}",
    "é",
    "~",
    "null",
    "0x1F",
    "1e999",
    "-",
    "?",
    "%YAML 1.2\n",
    "<<: *a\n",
    "kind: List\nitems:\n",
    "kind: ",
    "apiVersion: v1\n",
    "metadata:\n  name: x\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert {
        at: usize,
        token: usize,
    },
    Replace {
        at: usize,
        len: usize,
        token: usize,
    },
    Delete {
        at: usize,
        len: usize,
    },
    /// A line of another input, inserted.
    Splice {
        at: usize,
        seed: usize,
        line: usize,
    },
    Truncate {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        3 => (at, any::<usize>()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        2 => (at, 1usize..16, any::<usize>())
            .prop_map(|(at, len, token)| Mutation::Replace { at, len, token }),
        2 => (at, 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        2 => (at, any::<usize>(), any::<usize>())
            .prop_map(|(at, seed, line)| Mutation::Splice { at, seed, line }),
        1 => at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut i = at % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, m: &Mutation, seeds: &[(PathBuf, String)]) {
    match *m {
        Mutation::Insert { at, token } => {
            let i = boundary(text, at);
            text.insert_str(i, TOKENS[token % TOKENS.len()]);
        }
        Mutation::Replace { at, len, token } => {
            let i = boundary(text, at);
            let j = boundary(text, i + len).max(i);
            text.replace_range(i..j, TOKENS[token % TOKENS.len()]);
        }
        Mutation::Delete { at, len } => {
            let i = boundary(text, at);
            let j = boundary(text, i + len).max(i);
            text.replace_range(i..j, "");
        }
        Mutation::Splice { at, seed, line } => {
            let other = &seeds[seed % seeds.len()].1;
            let lines: Vec<&str> = other.split_inclusive('\n').collect();
            if let Some(l) = lines.get(line % lines.len().max(1)) {
                let i = boundary(text, at);
                text.insert_str(i, l);
            }
        }
        Mutation::Truncate { at } => {
            let i = boundary(text, at);
            text.truncate(i);
        }
    }
}

/// Parses in a thread, so that a hang fails the case instead of stalling the run.
fn parse_bounded(path: &Path, text: &str) -> Result<Parsed, TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let (path, text) = (path.to_path_buf(), text.to_string());
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(|| parse_file(&path, &text)));
    });
    match rx.recv_timeout(HANG) {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(_)) => Err(TestCaseError::fail("the parser panicked")),
        Err(_) => Err(TestCaseError::fail(format!(
            "the parser did not finish within {HANG:?}"
        ))),
    }
}

fn check(path: &Path, text: &str, parsed: &Parsed) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    for p in &parsed.problems {
        prop_assert_eq!(&p.origin.file, path, "problem names another file: {}", p);
        prop_assert!(!p.reason.is_empty(), "problem without a reason: {p:?}");
        let shown = p.to_string();
        let file = path.display().to_string();
        prop_assert!(shown.starts_with(&file), "shown without its file: {shown}");
        let Some(line) = p.origin.line else {
            return Err(TestCaseError::fail(format!("problem without a line: {p}")));
        };
        prop_assert!(
            line >= 1 && line <= lines.len(),
            "line {line} outside the text's {} lines: {p}",
            lines.len()
        );
        if let Some(column) = p.origin.column {
            // JSON errors count columns in bytes (serde_json), YAML ones in characters:
            // the byte length bounds both.
            let width = lines[line - 1].len();
            prop_assert!(
                column >= 1 && column <= width + 1,
                "column {column} outside line {line} ({width} bytes): {p}"
            );
        }
    }
    for o in &parsed.objects {
        prop_assert_eq!(&o.origin.file, path, "object from another file");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_inputs_never_panic_hang_or_lose_positions(
        seed in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..8),
        as_json in any::<bool>(),
    ) {
        let seeds = seeds();
        let (path, original) = &seeds[seed % seeds.len()];
        let mut text = original.clone();
        for m in &mutations {
            apply(&mut text, m, &seeds);
        }
        // The same text read as the other format too: the format is chosen by extension.
        let path = if as_json { path.with_extension("json") } else { path.clone() };
        let parsed = parse_bounded(&path, &text)?;
        check(&path, &text, &parsed)?;
    }
}

#[test]
fn every_seed_input_parses_within_the_rules() {
    for (path, text) in seeds() {
        let parsed = parse_file(&path, &text);
        check(&path, &text, &parsed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
