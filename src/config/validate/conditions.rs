//! Validating a probe's `conditions`: each parsed by the condition
//! language, reading only the placeholders its probe has; an error points
//! at the character.

use super::context::Ctx;
use crate::condition::Condition;
use crate::config::raw::S;

/// A probe's `conditions`, each parsed, reading only the placeholders
/// named in `reads`; errors point at the character.
pub(super) fn conditions(
    cx: &mut Ctx<'_>,
    list: &Option<S<Vec<S<String>>>>,
    reads: &[&str],
) -> Vec<Condition> {
    let Some(list) = list else {
        return Vec::new();
    };
    let example = if reads.contains(&"[VALUE]") {
        "conditions look like [VALUE] < 0.05, [VALUE] >= 1"
    } else {
        "conditions look like [STATUS] == 200, [BODY].status == \"ok\", [RESPONSE_TIME] < 500"
    };
    list.get_ref()
        .iter()
        .filter_map(|c| {
            let v = cx.expand(c);
            let cond = match Condition::parse(&v.text) {
                Ok(cond) => cond,
                Err(e) => {
                    cx.error_in(
                        c,
                        &v,
                        e.column.saturating_sub(1),
                        format!("condition does not parse: {}", e.message),
                        Some(example.into()),
                    );
                    return None;
                }
            };
            if let Some(p) = cond
                .placeholders()
                .into_iter()
                .find(|p| !reads.contains(&p.name()))
            {
                let at = v.text.find(p.name()).unwrap_or(0);
                let at = v.text[..at].chars().count();
                cx.error_in(
                    c,
                    &v,
                    at,
                    format!(
                        "this probe has no {}; it reads {}",
                        p.name(),
                        reads.join(", ")
                    ),
                    Some(example.into()),
                );
                return None;
            }
            Some(cond)
        })
        .collect()
}
