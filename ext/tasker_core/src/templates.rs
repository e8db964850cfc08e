//! `TaskerCore::FFI.templates`: every template the store knows as a Hash (namespace,
//! name, version, description, metadata, system_dependencies, domain_events,
//! input_schema, steps with their effective policies, ...), ordered by namespace, name,
//! version.

use magnus::{Error, RArray, Ruby};

use crate::convert;
use crate::errors::{self, guard};
use crate::ffi::store_call;
use crate::system;

/// `templates()`.
pub fn templates(ruby: &Ruby) -> Result<RArray, Error> {
    guard(ruby, "templates", || {
        let system = system::current().map_err(|why| errors::not_running(ruby, why.message()))?;
        let templates =
            store_call(ruby, &system, "templates", system.templates())?.map_err(|e| errors::store(ruby, &e))?;
        let out = ruby.ary_new_capa(templates.len());
        for template in templates {
            out.push(convert::json_to_ruby(&template.summary())?)?;
        }
        Ok(out)
    })
}
