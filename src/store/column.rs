//! Reading a column of the rollout tables: leniently (JSON, lists of
//! strings), or as one of a type's stored names (a state, an outcome, a
//! verb), where a name this version does not know is an
//! [`UnknownValue`] naming the table, the column and the value.

use serde_json::Value;

use super::db::{DbError, Row, UnknownValue, ValueRef};
use super::queries::text;

/// A column holding one of a type's stored names (a state, an outcome, a
/// verb): parsed, or an [`UnknownValue`] naming `table`, `column` and the
/// value (`NULL` reads as the empty name).
pub(super) fn named<T>(
    row: &Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, DbError> {
    let s = text(row.get_ref(idx)?);
    parse(&s).ok_or_else(|| {
        DbError::Unknown(UnknownValue {
            table,
            column,
            value: s,
        })
    })
}

/// [`named`] where `NULL` is `None`.
pub(super) fn opt_named<T>(
    row: &Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, DbError> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => named(row, idx, table, column, parse).map(Some),
    }
}

// Lenient value readers are shared with `queries`; JSON ones are here.

/// A JSON column: `NULL` → `None`; text that does not parse → a JSON
/// string holding it; a number stored as a number → that number.
pub(super) fn opt_json(v: ValueRef<'_>) -> Option<Value> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(Value::from(i)),
        ValueRef::Real(f) => {
            Some(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
        }
        ValueRef::Text(_) | ValueRef::Blob(_) => {
            let s = text(v);
            Some(serde_json::from_str(&s).unwrap_or(Value::String(s)))
        }
    }
}

/// A JSON list of strings, leniently: non-string elements become their
/// JSON text, a lone non-null value becomes a one-element list, anything
/// else an empty list.
pub(super) fn string_list(v: Option<Value>) -> Vec<String> {
    let as_string = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match v {
        Some(Value::Array(items)) => items.into_iter().map(as_string).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![as_string(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queries::real;
    use crate::store::{Store, StoreError};
    use serde_json::json;

    #[test]
    fn string_lists_are_lenient() {
        assert_eq!(string_list(Some(json!(["a", "b"]))), ["a", "b"]);
        assert_eq!(string_list(Some(json!(["a", 1, null]))), ["a", "1", "null"]);
        assert_eq!(string_list(Some(json!("solo"))), ["solo"]);
        assert_eq!(string_list(Some(json!({"k": 1}))), [r#"{"k":1}"#]);
        assert!(string_list(Some(Value::Null)).is_empty());
        assert!(string_list(None).is_empty());
    }

    #[test]
    fn json_columns_are_lenient() {
        assert_eq!(opt_json(ValueRef::Null), None);
        assert_eq!(
            opt_json(ValueRef::Text(br#"{"a":1}"#)),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            opt_json(ValueRef::Text(b"not json")),
            Some(json!("not json"))
        );
        assert_eq!(opt_json(ValueRef::Integer(3)), Some(json!(3)));
        assert_eq!(opt_json(ValueRef::Real(f64::NAN)), Some(Value::Null));
        assert_eq!(real(ValueRef::Text(b" 12.5 ")), Some(12.5));
    }

    #[test]
    fn an_unknown_stored_name_is_a_store_error_naming_where_it_is() {
        let store = Store::empty(std::path::Path::new("/h.db")).unwrap();
        store
            .db
            .execute_batch(
                "INSERT INTO deployments (id, app, to_version, strategy, state, actor, \
                   started_at_ms, plan, warnings) \
                 VALUES (1, 'web', '2', 'rolling', 'teleporting', 'bob', 1, '{}', '[]');",
            )
            .unwrap();
        let e = store.deployment(1).unwrap_err();
        assert!(matches!(e, StoreError::Unknown { .. }), "{e:?}");
        let said = crate::error::UserError::from(e);
        assert_eq!(said.code, crate::error::Code::Store);
        assert!(
            said.message
                .contains(r#"deployments.state holds "teleporting""#),
            "{}",
            said.message
        );
    }
}
