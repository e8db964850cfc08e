//! The options Hash of `bootstrap_worker` and `connect`: which keys exist, their types,
//! and the `BootstrapRequest` they make. Unknown keys and wrong types raise errors naming
//! the key. What the options mean (precedence, the concurrency rule) is the core's.

use std::path::PathBuf;

use magnus::{prelude::*, Error, Integer, RString, Ruby, Value};

use tasker_worker::{BootstrapRequest, DISPATCH_KEYS};

use crate::errors::{argument, class_name, type_error};

const PATH_KEYS: [&str; 3] = ["template_path", "config_root", "environment"];
const OTHER_KEYS: [&str; 2] = ["concurrency", "database_url"];

/// Which function the options are for (named in errors; `connect` takes no worker keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsFor {
    Bootstrap,
    Connect,
}

impl OptionsFor {
    fn name(self) -> &'static str {
        match self {
            OptionsFor::Bootstrap => "bootstrap_worker",
            OptionsFor::Connect => "connect",
        }
    }

    fn known(self) -> Vec<&'static str> {
        match self {
            OptionsFor::Bootstrap => PATH_KEYS.iter().chain(&DISPATCH_KEYS).chain(&OTHER_KEYS).copied().collect(),
            OptionsFor::Connect => PATH_KEYS.iter().copied().chain(["database_url"]).collect(),
        }
    }
}

/// Parses an options Hash (or nil) into a request.
pub fn parse(ruby: &Ruby, value: Option<Value>, what: OptionsFor) -> Result<BootstrapRequest, Error> {
    let mut request = BootstrapRequest::default();
    let Some(value) = value.filter(|v| !v.is_nil()) else { return Ok(request) };
    let fname = what.name();
    let known = what.known();
    for (name, value) in crate::convert::option_entries(ruby, value, &format!("{fname} options"))? {
        if !known.contains(&name.as_str()) {
            return Err(argument(ruby, format!("unknown {fname} option :{name} (known: {})", known.join(", "))));
        }
        match name.as_str() {
            "concurrency" => {
                let n = integer_option(ruby, fname, &name, value)?;
                if !(1..=10_000).contains(&n) {
                    return Err(argument(ruby, format!("{fname} option :concurrency must be 1..=10000, got {n}")));
                }
                request.concurrency = Some(n as usize);
            }
            "template_path" => request.template_path = Some(PathBuf::from(path_option(ruby, fname, &name, value)?)),
            "config_root" => request.config_root = Some(PathBuf::from(path_option(ruby, fname, &name, value)?)),
            "environment" => request.environment = Some(name_option(ruby, fname, &name, value)?),
            "database_url" => request.database_url = Some(name_option(ruby, fname, &name, value)?),
            dispatch => {
                request.dispatch_overrides.push((dispatch.to_string(), integer_option(ruby, fname, &name, value)?))
            }
        }
    }
    Ok(request)
}

fn integer_option(ruby: &Ruby, fname: &str, name: &str, value: Value) -> Result<i64, Error> {
    let Some(integer) = Integer::from_value(value) else {
        return Err(type_error(ruby, format!("{fname} option :{name} must be an Integer, got {}", class_name(value))));
    };
    integer.to_i64().map_err(|_| {
        argument(ruby, format!("{fname} option :{name} is out of range: {} does not fit in 64 bits", value.inspect()))
    })
}

/// A String or a Symbol (`environment: :production`).
fn name_option(ruby: &Ruby, fname: &str, name: &str, value: Value) -> Result<String, Error> {
    let text =
        crate::convert::string_or_symbol(ruby, value, &format!("{fname} option :{name} must be a String or Symbol"))?;
    if text.trim().is_empty() {
        return Err(argument(ruby, format!("{fname} option :{name} must not be empty")));
    }
    Ok(text)
}

/// A String, or anything answering `to_path` (Pathname).
fn path_option(ruby: &Ruby, fname: &str, name: &str, value: Value) -> Result<String, Error> {
    if let Some(s) = RString::from_value(value) {
        return s.to_string();
    }
    if value.respond_to("to_path", false)? {
        let path: RString = value.funcall("to_path", ())?;
        return path.to_string();
    }
    Err(type_error(ruby, format!("{fname} option :{name} must be a String or Pathname, got {}", class_name(value))))
}
