//! The values of a remote config document, read with `basic-toml`.
//!
//! Not the `toml` crate: its parser brings `winnow`, whose `impl AsRef<Bytes> for [u8]`
//! (and `AsRef<BStr>`) take part in type inference in every crate that links the runtime,
//! so a plain `slice.as_ref().hash(state)`, which std alone resolves, stopped compiling
//! in ureq 3 (found by tests/apps). `basic-toml` depends on serde only; this is the
//! small value tree its serde `Deserializer` is read into (ARCHITECTURE.md, invariants;
//! `tests/dependency_graph.rs` keeps the graph so).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One TOML value; keys of a table are sorted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Array(Vec<Value>),
    Table(BTreeMap<String, Value>),
}

impl Value {
    /// What the value is, for error messages.
    pub(crate) fn type_str(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Boolean(_) => "boolean",
            Value::Array(_) => "array",
            Value::Table(_) => "table",
        }
    }
}

/// Parses a whole document; the error is one line and names the line and column.
pub(crate) fn parse_document(text: &str) -> Result<BTreeMap<String, Value>, String> {
    match basic_toml::from_str::<Value>(text) {
        Ok(Value::Table(t)) => Ok(t),
        Ok(other) => Err(format!(
            "expected a document of keys, found {}",
            other.type_str()
        )),
        Err(e) => Err(e.to_string().lines().collect::<Vec<_>>().join(" ")),
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Integer)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut table = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            table.insert(k, v);
        }
        Ok(Value::Table(table))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_and_nested_tables() {
        let doc = parse_document(
            "s = 'lit'\nb = \"e\\u00e9\"\ni = -3\nf = 0.25\nt = true\na = [1, \"x\", [2]]\n\
             [rules.\"axum\"]\ncapture_headers = [\"x-id\"]\n",
        )
        .unwrap();
        assert_eq!(doc["s"], Value::String("lit".into()));
        assert_eq!(doc["b"], Value::String("eé".into()));
        assert_eq!(doc["i"], Value::Integer(-3));
        assert_eq!(doc["f"], Value::Float(0.25));
        assert_eq!(doc["t"], Value::Boolean(true));
        assert_eq!(doc["a"].type_str(), "array");
        let Value::Table(rules) = &doc["rules"] else {
            panic!("{doc:?}")
        };
        let Value::Table(axum) = &rules["axum"] else {
            panic!("{rules:?}")
        };
        assert_eq!(
            axum["capture_headers"],
            Value::Array(vec![Value::String("x-id".into())])
        );
        assert!(parse_document("").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_say_where_on_one_line() {
        for bad in [
            "a = ",
            "a = [1,",
            "[x\n",
            "a = 1\na = 2",
            "= 3",
            "a = 18446744073709551616",
        ] {
            let e = parse_document(bad).unwrap_err();
            assert!(e.contains("line"), "{bad:?}: {e}");
            assert!(!e.contains('\n'), "{bad:?}: {e}");
        }
    }
}
