//! Templates on PostgreSQL: registering them (so any process can create tasks of them),
//! what this process may claim (the revisions it registered itself), the compiled
//! definitions of every revision it met (read back from the database when another
//! process registered them), and which revision a task request resolves to.
//!
//! Resolutions are remembered for a second (and forgotten at once when any process
//! registers a new current revision: `tasker_templates_changed`), so creating a task is
//! one round trip.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use super::database::Database;
use super::sql;
use crate::config::InputSchemaMode;
use crate::store::StoreError;
use crate::template::{TemplateError, WorkflowTemplate};

/// How long a resolution is trusted without a notification.
const RESOLUTION_TTL: Duration = Duration::from_secs(1);

/// A template with a `max_in_flight` cap, as this process claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedTemplate {
    pub template_id: i64,
    pub cap: u32,
    /// The revisions of it this process registered.
    pub revisions: Vec<i64>,
}

/// What this process claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimable {
    /// Revisions without a cap.
    pub uncapped: Vec<i64>,
    pub capped: Vec<CappedTemplate>,
}

impl Claimable {
    fn add(&mut self, template_id: i64, revision_id: i64, cap: Option<u32>) {
        match cap {
            None => {
                if !self.uncapped.contains(&revision_id) {
                    self.uncapped.push(revision_id);
                }
            }
            Some(cap) => match self.capped.iter_mut().find(|c| c.template_id == template_id) {
                Some(capped) => {
                    capped.cap = cap;
                    if !capped.revisions.contains(&revision_id) {
                        capped.revisions.push(revision_id);
                    }
                }
                None => self.capped.push(CappedTemplate { template_id, cap, revisions: vec![revision_id] }),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.uncapped.is_empty() && self.capped.is_empty()
    }
}

type ResolutionKey = (String, String, Option<String>);

/// See the module documentation.
#[derive(Debug)]
pub struct TemplateBook {
    revisions: RwLock<HashMap<i64, Arc<WorkflowTemplate>>>,
    claimable: RwLock<Claimable>,
    resolved: Mutex<HashMap<ResolutionKey, (Instant, i64)>>,
    /// Applied to definitions read back from the database.
    input_schema_mode: InputSchemaMode,
}

impl TemplateBook {
    pub fn new(input_schema_mode: InputSchemaMode) -> Self {
        Self {
            revisions: RwLock::new(HashMap::new()),
            claimable: RwLock::new(Claimable::default()),
            resolved: Mutex::new(HashMap::new()),
            input_schema_mode,
        }
    }

    pub fn claimable(&self) -> Claimable {
        self.claimable.read().clone()
    }

    /// A revision this process already knows.
    pub fn known(&self, revision_id: i64) -> Option<Arc<WorkflowTemplate>> {
        self.revisions.read().get(&revision_id).cloned()
    }

    /// Forgets every resolution (a template changed somewhere, or notifications may have
    /// been missed).
    pub fn forget_resolutions(&self) {
        self.resolved.lock().clear();
    }

    /// Stores the templates and makes them claimable here.
    pub async fn register(&self, db: &Database, templates: Vec<Arc<WorkflowTemplate>>) -> Result<(), StoreError> {
        let client = db.client().await?;
        let statement =
            client.prepare_cached(sql::REGISTER_TEMPLATE).await.map_err(|e| db.failed("registering a template", &e))?;
        for template in templates {
            let stored = stored_definition(&template);
            let definition = serde_json::to_value(&stored).map_err(|e| {
                StoreError::Internal(format!("template {} could not be serialised: {e}", describe(&template)))
            })?;
            let names: Vec<&str> = template.steps.iter().map(|s| s.name.as_str()).collect();
            let (mut edge_child, mut edge_parent) = (Vec::new(), Vec::new());
            let (mut read_step, mut read_index) = (Vec::new(), Vec::new());
            for (index, parents) in template.dependencies.iter().enumerate() {
                for &parent in parents {
                    edge_child.push(index as i32);
                    edge_parent.push(parent as i32);
                }
                let ancestors = template.ancestors.get(index).map(Vec::as_slice).unwrap_or_default();
                for &read in parents.iter().chain(ancestors) {
                    read_step.push(index as i32);
                    read_index.push(read as i32);
                }
            }
            let key = &template.version_key;
            let pre = key.pre.as_str();
            let cap = template.max_in_flight.map(|c| c.min(i32::MAX as u32) as i32);
            let row = client
                .query_one(
                    &statement,
                    &[
                        &template.namespace,
                        &template.name,
                        &template.version,
                        &(key.major.min(i64::MAX as u64) as i64),
                        &(key.minor.min(i64::MAX as u64) as i64),
                        &(key.patch.min(i64::MAX as u64) as i64),
                        &pre,
                        &cap,
                        &definition,
                        &names,
                        &edge_child,
                        &edge_parent,
                        &read_step,
                        &read_index,
                    ],
                )
                .await
                .map_err(|e| db.failed("registering a template", &e))?;
            let (template_id, revision_id): (i64, i64) = (row.get(0), row.get(1));
            self.revisions.write().insert(revision_id, Arc::clone(&template));
            self.claimable.write().add(template_id, revision_id, template.max_in_flight);
        }
        self.forget_resolutions();
        Ok(())
    }

    /// The compiled template of a revision, read from the database the first time.
    pub async fn revision(&self, db: &Database, revision_id: i64) -> Result<Arc<WorkflowTemplate>, StoreError> {
        if let Some(known) = self.known(revision_id) {
            return Ok(known);
        }
        let client = db.client().await?;
        let statement =
            client.prepare_cached(sql::REVISION_DEFINITION).await.map_err(|e| db.failed("reading a template", &e))?;
        let row = client
            .query_opt(&statement, &[&revision_id])
            .await
            .map_err(|e| db.failed("reading a template", &e))?
            .ok_or_else(|| StoreError::Internal(format!("template revision {revision_id} is not in the database")))?;
        self.remember(revision_id, row.get(0))
    }

    /// Every template's current revision, ordered by namespace, name and version.
    pub async fn current(&self, db: &Database) -> Result<Vec<Arc<WorkflowTemplate>>, StoreError> {
        let client = db.client().await?;
        let statement =
            client.prepare_cached(sql::CURRENT_TEMPLATES).await.map_err(|e| db.failed("listing templates", &e))?;
        let rows = client.query(&statement, &[]).await.map_err(|e| db.failed("listing templates", &e))?;
        let mut templates = Vec::with_capacity(rows.len());
        for row in rows {
            let revision_id: i64 = row.get(0);
            let template = match self.known(revision_id) {
                Some(known) => known,
                None => self.remember(revision_id, row.get(1))?,
            };
            templates.push(template);
        }
        templates.sort_by(|a, b| {
            (a.namespace.as_str(), a.name.as_str(), &a.version_key).cmp(&(
                b.namespace.as_str(),
                b.name.as_str(),
                &b.version_key,
            ))
        });
        Ok(templates)
    }

    /// The revision a task of `namespace/name` (at `version`, or the highest release)
    /// is created with, and its template.
    pub async fn resolve(
        &self,
        db: &Database,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(i64, Arc<WorkflowTemplate>), StoreError> {
        let version = match version {
            None => None,
            Some(requested) => Some(self.canonical_version(db, namespace, name, requested).await?),
        };
        let key: ResolutionKey = (namespace.to_owned(), name.to_owned(), version.clone());
        let remembered = self.resolved.lock().get(&key).copied();
        if let Some((at, revision_id)) = remembered {
            if at.elapsed() < RESOLUTION_TTL {
                return Ok((revision_id, self.revision(db, revision_id).await?));
            }
        }
        let client = db.client().await?;
        let statement =
            client.prepare_cached(sql::RESOLVE_TEMPLATE).await.map_err(|e| db.failed("resolving a template", &e))?;
        let row = client
            .query_one(&statement, &[&namespace, &name, &version])
            .await
            .map_err(|e| template_error(db, &e, namespace, name, version.as_deref()))?;
        let revision_id: i64 = row.get(1);
        self.resolved.lock().insert(key, (Instant::now(), revision_id));
        Ok((revision_id, self.revision(db, revision_id).await?))
    }

    /// `requested` as semver prints it; an error naming the versions that exist when it
    /// is not a semantic version.
    async fn canonical_version(
        &self,
        db: &Database,
        namespace: &str,
        name: &str,
        requested: &str,
    ) -> Result<String, StoreError> {
        match semver::Version::parse(requested) {
            Ok(version) => Ok(version.to_string()),
            Err(err) => {
                let client = db.client().await?;
                let statement = client
                    .prepare_cached(sql::TEMPLATE_VERSIONS)
                    .await
                    .map_err(|e| db.failed("listing template versions", &e))?;
                let rows = client
                    .query(&statement, &[&namespace, &name])
                    .await
                    .map_err(|e| db.failed("listing template versions", &e))?;
                Err(StoreError::Template(TemplateError::InvalidRequestedVersion {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    version: requested.to_owned(),
                    reason: err.to_string(),
                    available: rows.iter().map(|r| r.get(0)).collect(),
                }))
            }
        }
    }

    fn remember(&self, revision_id: i64, definition: Value) -> Result<Arc<WorkflowTemplate>, StoreError> {
        let mut template: WorkflowTemplate = serde_json::from_value(definition).map_err(|e| {
            StoreError::Internal(format!(
                "template revision {revision_id} in the database cannot be read by this tasker_core: {e}"
            ))
        })?;
        template.input_schema_mode = self.input_schema_mode;
        let template = Arc::new(template);
        Ok(Arc::clone(self.revisions.write().entry(revision_id).or_insert(template)))
    }
}

/// The form a template is stored in: without what belongs to the process that loaded it
/// (its file path and `input_schema` mode), so every process loading the same
/// definition shares one revision.
fn stored_definition(template: &WorkflowTemplate) -> WorkflowTemplate {
    let mut stored = template.clone();
    stored.source = None;
    stored.input_schema_mode = InputSchemaMode::default();
    stored
}

pub fn describe(template: &WorkflowTemplate) -> String {
    format!("{}/{} {}", template.namespace, template.name, template.version)
}

/// The template errors `tasker.resolve_template` raises (TK001-TK004, with what exists in
/// DETAIL) as the same errors the embedded store gives.
fn template_error(
    db: &Database,
    err: &tokio_postgres::Error,
    namespace: &str,
    name: &str,
    version: Option<&str>,
) -> StoreError {
    let Some(db_error) = err.as_db_error() else { return db.failed("resolving a template", err).into() };
    let known: Vec<String> =
        db_error.detail().unwrap_or_default().split(", ").filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let (namespace, name) = (namespace.to_owned(), name.to_owned());
    let error = match db_error.code().code() {
        "TK001" => TemplateError::UnknownNamespace { namespace, name, known_namespaces: known },
        "TK002" => TemplateError::UnknownTemplate { namespace, name, known },
        "TK003" => TemplateError::UnknownVersion {
            namespace,
            name,
            version: version.unwrap_or_default().to_owned(),
            available: known,
        },
        "TK004" => TemplateError::OnlyPrereleases { namespace, name, available: known },
        _ => return db.failed("resolving a template", err).into(),
    };
    StoreError::Template(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimable_revisions_are_kept_once_and_caps_group_by_template() {
        let mut claimable = Claimable::default();
        claimable.add(1, 10, None);
        claimable.add(1, 10, None);
        claimable.add(2, 20, Some(3));
        claimable.add(2, 21, Some(4));
        assert_eq!(claimable.uncapped, [10]);
        assert_eq!(claimable.capped, [CappedTemplate { template_id: 2, cap: 4, revisions: vec![20, 21] }]);
    }
}
