//! The descriptor table of the canonical walk: per message type of the pool, the fields
//! that can lead to a map (directly, through nested messages, or through an `Any`), so the
//! walk skips everything else unread.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};

use super::CanonicalError;
use crate::envoy::descriptors::pool;

const ANY: &str = "google.protobuf.Any";

/// What the walk needs to know of a field that can lead to a map.
#[derive(Debug, Clone, Copy)]
pub(super) enum FieldWalk {
    /// A message field (singular or repeated) whose type can hold a map.
    Message(usize),
    /// A map field; `value` is the value's message type when that can hold a map itself.
    Map { key: KeyKind, value: Option<usize> },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum KeyKind {
    Signed,
    ZigZag,
    Unsigned,
    Fixed32,
    Fixed64,
    SFixed32,
    SFixed64,
    Bytes,
}

#[derive(Debug, Default)]
pub(super) struct MessageInfo {
    pub(super) name: String,
    /// The message is `google.protobuf.Any`.
    pub(super) any: bool,
    /// Fields to descend into, sorted by number; all other fields are skipped unread.
    pub(super) fields: Vec<(u32, FieldWalk)>,
}

pub(super) struct Table {
    pub(super) messages: Vec<MessageInfo>,
    by_name: HashMap<String, usize>,
}

pub(super) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::build(pool()))
}

impl Table {
    fn build(pool: &DescriptorPool) -> Table {
        let descriptors: Vec<MessageDescriptor> = pool.all_messages().collect();
        let by_name: HashMap<String, usize> = descriptors
            .iter()
            .enumerate()
            .map(|(i, d)| (d.full_name().to_string(), i))
            .collect();
        // Every message-typed field and map field, before knowing which lead to maps.
        let mut candidates: Vec<Vec<(u32, FieldWalk)>> = Vec::with_capacity(descriptors.len());
        for d in &descriptors {
            let mut fields = Vec::new();
            for f in d.fields() {
                let Kind::Message(m) = f.kind() else { continue };
                if f.is_map() {
                    let value = match m.map_entry_value_field().kind() {
                        Kind::Message(v) => Some(by_name[v.full_name()]),
                        _ => None,
                    };
                    let key = key_kind(&m.map_entry_key_field().kind());
                    fields.push((f.number(), FieldWalk::Map { key, value }));
                } else {
                    fields.push((f.number(), FieldWalk::Message(by_name[m.full_name()])));
                }
            }
            fields.sort_by_key(|(n, _)| *n);
            candidates.push(fields);
        }
        // Which messages can hold a map, transitively (a fixed point: messages nest
        // recursively, e.g. Struct -> Value -> Struct).
        let mut holds_map: Vec<bool> = descriptors
            .iter()
            .zip(&candidates)
            .map(|(d, fields)| {
                d.full_name() == ANY
                    || fields
                        .iter()
                        .any(|(_, f)| matches!(f, FieldWalk::Map { .. }))
            })
            .collect();
        loop {
            let mut changed = false;
            for (i, fields) in candidates.iter().enumerate() {
                if !holds_map[i]
                    && fields
                        .iter()
                        .any(|(_, f)| matches!(f, FieldWalk::Message(m) if holds_map[*m]))
                {
                    holds_map[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let messages = descriptors
            .iter()
            .zip(candidates)
            .map(|(d, fields)| MessageInfo {
                name: d.full_name().to_string(),
                any: d.full_name() == ANY,
                fields: fields
                    .into_iter()
                    .filter_map(|(n, f)| match f {
                        FieldWalk::Message(m) => holds_map[m].then_some((n, f)),
                        FieldWalk::Map { key, value } => Some((
                            n,
                            FieldWalk::Map {
                                key,
                                value: value.filter(|v| holds_map[*v]),
                            },
                        )),
                    })
                    .collect(),
            })
            .collect();
        Table { messages, by_name }
    }

    pub(super) fn lookup(&self, name: &str) -> Result<usize, CanonicalError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| CanonicalError::UnknownType(name.to_string()))
    }
}

fn key_kind(kind: &Kind) -> KeyKind {
    match kind {
        Kind::Int32 | Kind::Int64 => KeyKind::Signed,
        Kind::Sint32 | Kind::Sint64 => KeyKind::ZigZag,
        Kind::Fixed32 => KeyKind::Fixed32,
        Kind::Fixed64 => KeyKind::Fixed64,
        Kind::Sfixed32 => KeyKind::SFixed32,
        Kind::Sfixed64 => KeyKind::SFixed64,
        Kind::String | Kind::Bytes => KeyKind::Bytes,
        // uint32, uint64, bool (protobuf allows no other key types).
        _ => KeyKind::Unsigned,
    }
}
