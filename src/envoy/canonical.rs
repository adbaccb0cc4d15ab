//! Canonical (deterministic) protobuf bytes for the resources meshd serves.
//!
//! prost encodes a map field in the iteration order of its `HashMap`, which is random per
//! map instance and per process. Resource versions are hashes of the encoded bytes, so the
//! same resource must encode to the same bytes on every replica and after every restart.
//! This module rewrites encoded bytes into protobuf's deterministic order: the entries of
//! every map field sorted by key, in nested messages, in map values and inside
//! `google.protobuf.Any` values (resolved by type URL). Everything else stays as prost wrote
//! it; sorting only permutes whole entries, so lengths never change and the rewrite happens
//! in place.
//!
//! The walk only descends where a map can be: a table built once from the descriptor pool
//! (`descriptors::pool`) says, per message type, which fields lead to a map (an `Any`
//! counts as a possible map). Bytes that are already canonical are not copied.

mod table;

use std::ops::Range;

use bytes::Bytes;

use table::{table, FieldWalk, KeyKind, Table};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CanonicalError {
    #[error("unknown message type {0} (add its proto to build.rs ROOTS)")]
    UnknownType(String),
    #[error("malformed {type_name} at byte {offset}: {reason}")]
    Malformed {
        type_name: String,
        offset: usize,
        reason: &'static str,
    },
}

/// Sorts the map entries of `buf`, encoded bytes of message `type_name` (a full name such as
/// `envoy.config.cluster.v3.Cluster`, or a type URL), in place.
pub fn canonicalize(type_name: &str, buf: &mut [u8]) -> Result<(), CanonicalError> {
    let fixups = plan(type_name, buf)?;
    apply(buf, &fixups);
    Ok(())
}

/// `bytes` in canonical form: the same `Bytes` (no copy) when already canonical, else a
/// sorted copy.
pub fn canonical(type_name: &str, bytes: Bytes) -> Result<Bytes, CanonicalError> {
    let fixups = plan(type_name, &bytes)?;
    if fixups.is_empty() {
        return Ok(bytes);
    }
    let mut owned = bytes.to_vec();
    apply(&mut owned, &fixups);
    Ok(owned.into())
}

/// Encodes `message` (of type `type_name`) in canonical form.
pub fn encode(type_name: &str, message: &impl prost::Message) -> Vec<u8> {
    let mut buf = message.encode_to_vec();
    canonicalize_or_report(type_name, &mut buf);
    buf
}

/// `canonicalize` for callers that cannot fail: the bytes come from prost, so an error means
/// a message type missing from the descriptor set. That is a bug in meshd, not in its input:
/// debug builds (every test) panic, release builds log it and serve the bytes as encoded
/// (valid, merely not guaranteed stable across processes).
pub fn canonicalize_or_report(type_name: &str, buf: &mut [u8]) {
    if let Err(e) = canonicalize(type_name, buf) {
        report(type_name, &e);
    }
}

/// `canonical` for bytes from elsewhere (`Resource::from_encoded`): to the xDS layer a
/// resource's content is opaque, so bytes that do not parse as `type_name` are kept as they
/// are, with a warning; that is never a panic.
pub fn canonical_or_keep(type_name: &str, bytes: Bytes) -> Bytes {
    canonical(type_name, bytes.clone()).unwrap_or_else(|e| {
        tracing::warn!(%type_name, error = %e, "resource bytes kept as given, not canonical");
        bytes
    })
}

fn report(type_name: &str, e: &CanonicalError) {
    debug_assert!(false, "canonical encoding of {type_name}: {e}");
    tracing::error!(%type_name, error = %e, "resource bytes left in prost's map order");
}

/// A rewrite of `span`: its new content is the concatenation of `pieces` (ranges of the
/// buffer inside `span`, in their new order).
#[derive(Debug)]
struct Fixup {
    span: Range<usize>,
    pieces: Vec<Range<usize>>,
}

/// Fixups in the order they must be applied: inner messages before the ones holding them,
/// so moving an entry moves its already sorted content.
fn plan(type_name: &str, buf: &[u8]) -> Result<Vec<Fixup>, CanonicalError> {
    let table = table();
    let name = type_name.rsplit('/').next().unwrap_or(type_name);
    let index = table.lookup(name)?;
    let mut walk = Walk {
        table,
        buf,
        fixups: Vec::new(),
        entries: Vec::new(),
    };
    walk.message(index, 0..buf.len())?;
    Ok(walk.fixups)
}

fn apply(buf: &mut [u8], fixups: &[Fixup]) {
    let mut scratch = Vec::new();
    for fixup in fixups {
        scratch.clear();
        for piece in &fixup.pieces {
            scratch.extend_from_slice(&buf[piece.clone()]);
        }
        buf[fixup.span.clone()].copy_from_slice(&scratch);
    }
}

/// A map key, ordered as protobuf's deterministic serialization orders keys: numbers by
/// value, strings by their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Signed(i64),
    Unsigned(u64),
    Bytes(&'a [u8]),
}

/// One entry of a map field, as met while walking its message.
struct Entry<'a> {
    field: u32,
    /// Tag, length and entry bytes.
    whole: Range<usize>,
    key: Key<'a>,
}

struct Walk<'a> {
    table: &'a Table,
    buf: &'a [u8],
    fixups: Vec<Fixup>,
    /// A stack shared by the nested calls: each message pushes its map entries above those of
    /// the messages holding it and truncates back when done (no allocation per message).
    entries: Vec<Entry<'a>>,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// One field as read from the wire.
struct Field {
    number: u32,
    wire_type: u8,
    /// Tag through end of value.
    whole: Range<usize>,
    /// The value: the payload for LEN, the varint or fixed bytes otherwise.
    value: Range<usize>,
}

impl<'a> Walk<'a> {
    fn message(&mut self, index: usize, range: Range<usize>) -> Result<(), CanonicalError> {
        let table = self.table;
        let info = &table.messages[index];
        if info.any {
            return self.any(index, range);
        }
        if info.fields.is_empty() {
            return Ok(());
        }
        let first_entry = self.entries.len();
        let mut at = range.start;
        while at < range.end {
            let field = self.field(index, at, range.end)?;
            at = field.whole.end;
            let Ok(i) = info.fields.binary_search_by_key(&field.number, |(n, _)| *n) else {
                continue;
            };
            if field.wire_type != LEN {
                return Err(self.malformed(index, field.whole.start, "expected a length"));
            }
            match info.fields[i].1 {
                FieldWalk::Message(m) => self.message(m, field.value)?,
                FieldWalk::Map { key, value } => {
                    let key = self.entry(index, key, value, field.value)?;
                    self.entries.push(Entry {
                        field: field.number,
                        whole: field.whole,
                        key,
                    });
                }
            }
        }
        if !self.in_order(first_entry) {
            self.sort(index, range, first_entry)?;
        }
        self.entries.truncate(first_entry);
        Ok(())
    }

    /// Whether the map entries of this message (from `first`) are already canonical: each
    /// map's entries one run of adjacent fields, sorted by key.
    fn in_order(&self, first: usize) -> bool {
        let entries = &self.entries[first..];
        (1..entries.len()).all(|i| {
            let (previous, entry) = (&entries[i - 1], &entries[i]);
            if previous.field == entry.field {
                previous.whole.end == entry.whole.start && previous.key <= entry.key
            } else {
                !entries[..i].iter().any(|e| e.field == entry.field)
            }
        })
    }

    /// Adds the fixup that rewrites `range` with each map's entries sorted by key (stable,
    /// so the last of duplicate keys still wins) and placed where its first entry was.
    fn sort(
        &mut self,
        index: usize,
        range: Range<usize>,
        first: usize,
    ) -> Result<(), CanonicalError> {
        let mut pieces = Vec::new();
        let mut done: Vec<u32> = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let field = self.field(index, at, range.end)?;
            at = field.whole.end;
            let mut entries = self.entries[first..]
                .iter()
                .filter(|e| e.field == field.number)
                .peekable();
            if entries.peek().is_none() {
                pieces.push(field.whole);
                continue;
            }
            if done.contains(&field.number) {
                continue;
            }
            done.push(field.number);
            let mut sorted: Vec<&Entry> = entries.collect();
            sorted.sort_by_key(|e| e.key);
            pieces.extend(sorted.into_iter().map(|e| e.whole.clone()));
        }
        self.fixups.push(Fixup {
            span: range,
            pieces,
        });
        Ok(())
    }

    /// Reads a map entry: returns its key and walks its value when that can hold maps.
    fn entry(
        &mut self,
        map_owner: usize,
        key_kind: KeyKind,
        value_type: Option<usize>,
        range: Range<usize>,
    ) -> Result<Key<'a>, CanonicalError> {
        let mut key = match key_kind {
            KeyKind::Bytes => Key::Bytes(&[]),
            KeyKind::Signed | KeyKind::ZigZag | KeyKind::SFixed32 | KeyKind::SFixed64 => {
                Key::Signed(0)
            }
            _ => Key::Unsigned(0),
        };
        let mut value = None;
        let mut at = range.start;
        while at < range.end {
            let field = self.field(map_owner, at, range.end)?;
            at = field.whole.end;
            match field.number {
                1 => key = self.key(map_owner, key_kind, &field)?,
                2 if field.wire_type == LEN => value = Some(field.value),
                _ => {}
            }
        }
        if let (Some(value_type), Some(value)) = (value_type, value) {
            self.message(value_type, value)?;
        }
        Ok(key)
    }

    fn key(&self, owner: usize, kind: KeyKind, field: &Field) -> Result<Key<'a>, CanonicalError> {
        let bytes = &self.buf[field.value.clone()];
        let expected = match kind {
            KeyKind::Bytes => LEN,
            KeyKind::Fixed32 | KeyKind::SFixed32 => FIXED32,
            KeyKind::Fixed64 | KeyKind::SFixed64 => FIXED64,
            _ => VARINT,
        };
        if field.wire_type != expected {
            return Err(self.malformed(owner, field.whole.start, "map key of the wrong wire type"));
        }
        let fixed = |n: usize| {
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(bytes);
            u64::from_le_bytes(le)
        };
        Ok(match kind {
            KeyKind::Bytes => Key::Bytes(&self.buf[field.value.clone()]),
            KeyKind::Unsigned => Key::Unsigned(read_varint(bytes).map(|(v, _)| v).unwrap_or(0)),
            KeyKind::Signed => Key::Signed(read_varint(bytes).map(|(v, _)| v as i64).unwrap_or(0)),
            KeyKind::ZigZag => {
                let v = read_varint(bytes).map(|(v, _)| v).unwrap_or(0);
                Key::Signed((v >> 1) as i64 ^ -((v & 1) as i64))
            }
            KeyKind::Fixed32 => Key::Unsigned(fixed(4)),
            KeyKind::Fixed64 => Key::Unsigned(fixed(8)),
            KeyKind::SFixed32 => Key::Signed(fixed(4) as u32 as i32 as i64),
            KeyKind::SFixed64 => Key::Signed(fixed(8) as i64),
        })
    }

    /// An `Any`: walks its value as the message its type URL names.
    fn any(&mut self, index: usize, range: Range<usize>) -> Result<(), CanonicalError> {
        let mut type_url = None;
        let mut value = None;
        let mut at = range.start;
        while at < range.end {
            let field = self.field(index, at, range.end)?;
            at = field.whole.end;
            match (field.number, field.wire_type) {
                (1, LEN) => type_url = Some(field.value),
                (2, LEN) => value = Some(field.value),
                _ => {}
            }
        }
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let url = type_url.map(|r| &self.buf[r]).unwrap_or_default();
        let url = std::str::from_utf8(url)
            .map_err(|_| self.malformed(index, range.start, "type URL is not UTF-8"))?;
        let name = url.rsplit('/').next().unwrap_or(url);
        let inner = self.table.lookup(name)?;
        self.message(inner, value)
    }

    /// Reads the field starting at `at` (ending by `end`) of a message of type `index`.
    fn field(&self, index: usize, at: usize, end: usize) -> Result<Field, CanonicalError> {
        let bytes = &self.buf[at..end];
        let (tag, n) =
            read_varint(bytes).ok_or_else(|| self.malformed(index, at, "truncated tag"))?;
        let number = u32::try_from(tag >> 3)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.malformed(index, at, "bad field number"))?;
        let wire_type = (tag & 7) as u8;
        let rest = &bytes[n..];
        let start = at + n;
        let value = match wire_type {
            VARINT => {
                let (_, len) = read_varint(rest)
                    .ok_or_else(|| self.malformed(index, start, "truncated varint"))?;
                start..start + len
            }
            FIXED64 | FIXED32 => {
                let len = if wire_type == FIXED64 { 8 } else { 4 };
                if rest.len() < len {
                    return Err(self.malformed(index, start, "truncated fixed-width value"));
                }
                start..start + len
            }
            LEN => {
                let (len, m) = read_varint(rest)
                    .ok_or_else(|| self.malformed(index, start, "truncated length"))?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= rest.len() - m)
                    .ok_or_else(|| self.malformed(index, start, "length past the end"))?;
                start + m..start + m + len
            }
            START_GROUP => {
                // Groups are not used by any message meshd emits; skip to the matching end.
                let mut cursor = start;
                let mut depth = 1;
                while depth > 0 {
                    let inner = self.field(index, cursor, end)?;
                    cursor = inner.whole.end;
                    match inner.wire_type {
                        START_GROUP => depth += 1,
                        END_GROUP => depth -= 1,
                        _ => {}
                    }
                }
                start..cursor
            }
            END_GROUP => start..start,
            _ => return Err(self.malformed(index, at, "unknown wire type")),
        };
        Ok(Field {
            number,
            wire_type,
            whole: at..value.end,
            value,
        })
    }

    fn malformed(&self, index: usize, offset: usize, reason: &'static str) -> CanonicalError {
        CanonicalError::Malformed {
            type_name: self.table.messages[index].name.clone(),
            offset,
            reason,
        }
    }
}

/// A base-128 varint at the start of `bytes`: its value and length.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
pub(crate) mod tests;
