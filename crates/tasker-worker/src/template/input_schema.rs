//! A template's `input_schema`: a JSON Schema every task context must match.
//!
//! The schema is compiled once, when the template is checked (an invalid schema is a
//! template error), and applied at `create_task`. A context that does not match is
//! rejected with every violation, each naming the path inside the context (a JSON
//! pointer, `/` for the whole context) and the rule (schema keyword) it breaks.
//!
//! Serialized as the schema itself; deserializing compiles it again.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Most violations listed in one error (the rest are counted).
const MAX_LISTED: usize = 10;

/// A compiled `input_schema`.
#[derive(Clone)]
pub struct InputSchema {
    schema: Value,
    validator: Arc<jsonschema::Validator>,
}

impl InputSchema {
    /// Compiles `schema`; the error says why it is not a usable JSON Schema.
    pub fn compile(schema: Value) -> Result<Self, String> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err("a JSON Schema must be a mapping (or true/false)".to_owned());
        }
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        Ok(Self { schema, validator: Arc::new(validator) })
    }

    /// The schema as written.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Every violation of the schema by `context`, or `Ok` when it matches.
    pub fn check(&self, context: &Value) -> Result<(), ContextError> {
        if self.validator.is_valid(context) {
            return Ok(());
        }
        let mut violations = Vec::new();
        let mut total = 0;
        for error in self.validator.iter_errors(context) {
            total += 1;
            if violations.len() < MAX_LISTED {
                let path = error.instance_path().to_string();
                violations.push(Violation {
                    path: if path.is_empty() { "/".to_owned() } else { path },
                    rule: error.kind().keyword().to_owned(),
                    message: error.to_string(),
                });
            }
        }
        Err(ContextError { violations, total })
    }
}

impl fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputSchema").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl PartialEq for InputSchema {
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema
    }
}

impl Serialize for InputSchema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.schema.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for InputSchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let schema = Value::deserialize(deserializer)?;
        InputSchema::compile(schema).map_err(serde::de::Error::custom)
    }
}

/// One way a context breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the context (`/customer/email`), `/` for the context itself.
    pub path: String,
    /// The schema keyword broken (`required`, `type`, `minimum`, ...).
    pub rule: String,
    /// The validator's description.
    pub message: String,
}

/// A task context that does not match its template's `input_schema`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(violations, *total))]
pub struct ContextError {
    /// The first violations (at most ten).
    pub violations: Vec<Violation>,
    /// How many violations there are in all.
    pub total: usize,
}

fn describe(violations: &[Violation], total: usize) -> String {
    let listed: Vec<String> =
        violations.iter().map(|v| format!("at {} (rule `{}`): {}", v.path, v.rule, v.message)).collect();
    let more = total.saturating_sub(violations.len());
    let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
    format!("context does not match the template's input_schema: {}{tail}", listed.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> InputSchema {
        InputSchema::compile(json!({
            "type": "object",
            "required": ["even_number"],
            "properties": {
                "even_number": {"type": "integer", "minimum": 2, "maximum": 100},
                "customer": {"type": "object", "properties": {"email": {"type": "string"}}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_matching_context_passes() {
        assert_eq!(schema().check(&json!({"even_number": 6, "extra": true})), Ok(()));
    }

    #[test]
    fn violations_name_the_path_and_the_rule() {
        let err = schema().check(&json!({"even_number": 1, "customer": {"email": 5}})).unwrap_err();
        let found: Vec<(&str, &str)> = err.violations.iter().map(|v| (v.path.as_str(), v.rule.as_str())).collect();
        assert!(found.contains(&("/even_number", "minimum")), "{found:?}");
        assert!(found.contains(&("/customer/email", "type")), "{found:?}");
        assert_eq!(err.total, 2);
        let text = err.to_string();
        assert!(text.contains("at /even_number (rule `minimum`)"), "{text}");
    }

    #[test]
    fn a_missing_required_key_is_reported_at_the_root() {
        let err = schema().check(&json!({})).unwrap_err();
        assert_eq!(err.violations[0].path, "/");
        assert_eq!(err.violations[0].rule, "required");
        assert!(err.violations[0].message.contains("even_number"), "{:?}", err.violations);
    }

    #[test]
    fn an_invalid_schema_is_refused_and_a_non_mapping_too() {
        assert!(InputSchema::compile(json!({"type": "no-such-type"})).is_err());
        assert!(InputSchema::compile(json!([1, 2])).is_err());
    }

    #[test]
    fn serializes_as_the_schema_and_compiles_again_when_read() {
        let text = serde_json::to_string(&schema()).unwrap();
        let back: InputSchema = serde_json::from_str(&text).unwrap();
        assert_eq!(back, schema());
        assert!(back.check(&json!({"even_number": 101})).is_err());
    }
}
