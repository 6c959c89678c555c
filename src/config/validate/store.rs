//! Validating `[store]`: `url` is a history file's path or a
//! `postgres://` URL (which of them, and whether the URL can be read, is
//! decided where the history is opened); a password in it comes from
//! `${NAME}`, never written in the file.

use super::context::Ctx;
use crate::config::StoreUrl;
use crate::config::raw::{RawStore, S};

/// `[store]` as written; `None` (with an error) when it cannot be used.
pub(super) fn store(cx: &mut Ctx<'_>, s: &S<RawStore>) -> Option<StoreUrl> {
    let Some(url) = &s.get_ref().url else {
        cx.error(
            s.span(),
            "[store] has no `url`",
            Some(
                "add url = \"/var/lib/rollguard/history.db\" or \
                 url = \"postgres://rollguard@db.example.com/rollguard\", or remove [store] \
                 to keep the history in the default file"
                    .into(),
            ),
        );
        return None;
    };
    if password_written(url.get_ref()) {
        cx.error(
            url.span(),
            "[store] url has a password written in the file",
            Some(
                "write it as ${NAME} with NAME exported \
                 (postgres://rollguard:${ROLLGUARD_DB_PASSWORD}@db/rollguard), or leave it \
                 out and set PGPASSWORD or use ~/.pgpass"
                    .into(),
            ),
        );
        return None;
    }
    let text = cx.string(url);
    if text.trim().is_empty() {
        cx.error(
            url.span(),
            "[store] url is empty",
            Some("give a history file's path or a postgres:// URL, or remove [store]".into()),
        );
        return None;
    }
    let (line, col) = cx.pos(url.span().start);
    Some(StoreUrl::new(text, cx.file.clone(), line, col))
}

/// Whether the URL `raw` (as written, before `${NAME}` is expanded) holds
/// a password that is not one `${NAME}`: after the user (`user:PASSWORD@`)
/// or as `?password=`.
fn password_written(raw: &str) -> bool {
    let Some((_, rest)) = raw.split_once("://") else {
        return false;
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let in_user = authority
        .rsplit_once('@')
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, p)| p);
    let in_query = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("password="));
    [in_user, in_query]
        .into_iter()
        .flatten()
        .any(|p| !p.is_empty() && !one_variable(p))
}

/// `${NAME}` and nothing else.
fn one_variable(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::password_written;

    #[test]
    fn a_password_may_only_come_from_a_variable() {
        for written in [
            "postgres://rg:hunter2@db/rg",
            "postgres://rg:${A}x@db/rg",
            "postgres://rg@db/rg?sslmode=require&password=hunter2",
        ] {
            assert!(password_written(written), "{written}");
        }
        for fine in [
            "/var/lib/rollguard/history.db",
            "postgres://rg@db:5432/rg",
            "postgres://rg:${RG_PASSWORD}@db/rg",
            "postgres://rg@db/rg?password=${RG_PASSWORD}",
            "${ROLLGUARD_URL}",
        ] {
            assert!(!password_written(fine), "{fine}");
        }
    }
}
