//! Replaced containers, kept: a start or restore never destroys the
//! container it replaces but renames it `{name}--rg-{unix_ms}`, so a
//! rollback can run the very same container again; the newest `keep` of
//! them are kept and older ones removed.

use super::Docker;
use crate::driver::{DriverError, Slot};
use crate::exec::Executor;

/// Suffix between a container name and the time it was replaced.
const KEPT_MARK: &str = "--rg-";

impl Docker {
    /// Renames the container `id` (now called `name`) to a fresh
    /// `{name}--rg-{unix_ms}`.
    pub(super) async fn keep_away(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        name: &str,
        id: &str,
    ) -> Result<(), DriverError> {
        let kept = self.kept(exec, slot, name).await?;
        let newest = kept.iter().map(|k| k.1).max().unwrap_or(0);
        let stamp = crate::model::now_ms().max(newest.saturating_add(1));
        let new_name = format!("{name}{KEPT_MARK}{stamp}");
        self.docker_ok(exec, slot, "docker rename", &["rename", id, &new_name])
            .await
            .map(|_| ())
    }

    /// Kept containers of `name`: (id, stamp), any order.
    async fn kept(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        name: &str,
    ) -> Result<Vec<(String, i64)>, DriverError> {
        let filter = format!("name=^/?{}{KEPT_MARK}", regex_escape(name));
        let out = self
            .docker_ok(
                exec,
                slot,
                "docker ps",
                &[
                    "ps",
                    "-a",
                    "--no-trunc",
                    "--filter",
                    &filter,
                    "--format",
                    "{{.ID}} {{.Names}}",
                ],
            )
            .await?;
        Ok(parse_kept(&out, name))
    }

    /// Removes kept containers of `name` beyond the newest `keep`. Failures
    /// are logged, never fatal: the deploy itself is done.
    pub(super) async fn prune(&self, exec: &Executor, slot: Slot<'_>, name: &str) {
        let mut kept = match self.kept(exec, slot, name).await {
            Ok(k) => k,
            Err(e) => {
                let e = self.secrets.mask(&e.to_string());
                tracing::warn!("{}: cannot list kept containers: {e}", slot.label());
                return;
            }
        };
        kept.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (id, stamp) in kept.iter().skip(self.spec.keep as usize) {
            if let Err(e) = self.docker_ok(exec, slot, "docker rm", &["rm", id]).await {
                let e = self.secrets.mask(&e.to_string());
                tracing::warn!(
                    "{}: cannot remove kept container {name}{KEPT_MARK}{stamp}: {e}",
                    slot.label()
                );
            }
        }
    }
}

/// Escapes regex metacharacters for docker's `name=` filter.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lines `ID NAME[,NAME…]` from `docker ps`: the kept containers of `name`
/// as (id, stamp).
fn parse_kept(out: &str, name: &str) -> Vec<(String, i64)> {
    let prefix = format!("{name}{KEPT_MARK}");
    out.lines()
        .filter_map(|line| {
            let (id, names) = line.trim().split_once(' ')?;
            names.split(',').find_map(|n| {
                let stamp = n.trim().trim_start_matches('/').strip_prefix(&prefix)?;
                if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((id.to_string(), stamp.parse().ok()?))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_names_are_parsed_strictly() {
        let out = "aaa web-a--rg-1700000000000\nbbb web-a--rg-x1\nccc web-a-alt--rg-5\n\
                   ddd web-a--rg-17,other\n garbage\n\neee web-a--rg-\n";
        assert_eq!(
            parse_kept(out, "web-a"),
            vec![("aaa".into(), 1_700_000_000_000), ("ddd".into(), 17)]
        );
        assert_eq!(regex_escape("a.b-c"), "a\\.b-c");
    }
}
