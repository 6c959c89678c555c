//! A secret of the config (a receiver's token or password, a Prometheus
//! server's credentials): written as one `${NAME}` and read from the
//! environment, never in the file; its value kept to be masked.

use super::context::Ctx;
use crate::config::raw::S;

/// A secret `key` of receiver `name`, which must be written as one
/// `${NAME}` (e.g. `${example}`): its value is added to `hidden`.
pub(super) fn from_environment(
    cx: &mut Ctx<'_>,
    s: &S<String>,
    key: &str,
    example: &str,
    name: &str,
    hidden: &mut Vec<(String, String)>,
) -> String {
    let raw = s.get_ref().trim();
    let one_variable = raw
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !one_variable {
        cx.error(
            s.span(),
            format!("{key} is written in the file"),
            Some(format!(
                "a {key} comes from the environment: {key} = \"${{{example}}}\", with {example} \
                 exported"
            )),
        );
        return String::new();
    }
    let v = cx.string(s);
    if v.trim().is_empty() {
        cx.err(s.span(), format!("{key} is empty"));
    }
    hidden.push((format!("{name}.{key}"), v.clone()));
    v
}
