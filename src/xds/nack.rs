//! Which resources a rejection (NACK) names. Envoy's `error_detail` has no structured list
//! of the resources it refused, only a message; its cluster and listener managers apply
//! the valid resources of a response and write each refused one as `NAME: REASON` in it
//! ("Error adding/updating cluster(s) outbound|80||a.default.svc.cluster.local: ..."). A
//! name counts as named when it stands in the message as a whole word, so that route
//! `80` is not found inside `0.0.0.0_8080`.

/// The longest rejection message kept, logged and matched against names: Envoy itself
/// truncates `error_detail` to 4096 bytes, so anything longer did not come from Envoy, and
/// keeping it would let one client make meshd store, log and scan megabytes per request.
pub(crate) const MAX_MESSAGE: usize = 4096;

/// A rejection message cut to `MAX_MESSAGE` bytes (at a character boundary), marked when cut.
pub(crate) fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" [truncated by meshd]");
    }
    message
}

/// The names among `names` that `message` mentions.
pub(crate) fn named<'a>(message: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| mentions(message, name))
        .collect()
}

/// Whether `name` occurs in `message` between word boundaries. Names hold letters, digits
/// and `. _ - | ~ : / *`; a boundary is anything else, or `:` after the name (Envoy's
/// separator before the reason).
fn mentions(message: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let name_char = |c: char| c.is_alphanumeric() || "._-|~:/*".contains(c);
    message.match_indices(name).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + name.len()..].chars().next();
        before.is_none_or(|c| !name_char(c)) && after.is_none_or(|c| c == ':' || !name_char(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let short = "bad cluster".to_string();
        assert_eq!(bounded(short.clone()), short);
        let long = "é".repeat(MAX_MESSAGE);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_MESSAGE + " [truncated by meshd]".len());
        assert!(cut.ends_with(" [truncated by meshd]"));
    }

    #[test]
    fn names_in_envoys_messages_are_found() {
        let message = "Error adding/updating cluster(s) outbound|80||b.default.svc.cluster.local: \
                       LbPolicy is invalid, outbound|81||c: bad";
        let names = [
            "outbound|80||a.default.svc.cluster.local",
            "outbound|80||b.default.svc.cluster.local",
            "outbound|81||c",
            "outbound|8||c",
        ];
        assert_eq!(
            named(message, names),
            ["outbound|80||b.default.svc.cluster.local", "outbound|81||c"]
        );
    }

    #[test]
    fn a_name_inside_a_longer_name_is_not_named() {
        let message = "Error adding/updating listener(s) 0.0.0.0_8080: duplicate filter chain";
        assert!(named(message, ["80", "8080", "0.0.0.0_80"]).is_empty());
        assert_eq!(named(message, ["0.0.0.0_8080"]), ["0.0.0.0_8080"]);
        assert_eq!(named("route 80 is bad", ["80"]), ["80"]);
        assert!(named("anything", [""]).is_empty());
    }
}
