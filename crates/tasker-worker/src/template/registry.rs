//! The template registry: compiled templates by namespace, name and version.
//!
//! This module owns loading templates from files and directories (through
//! [`parse_yaml`] and [`compile`]) and finding them again. A directory loads all or
//! nothing: one bad file and none of its templates are registered. Without a version,
//! [`TemplateRegistry::find`] answers the highest version by semantic-version precedence.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::validate::{compile_for, parse_yaml, template_id};
use super::{TemplateError, WorkflowTemplate};
use crate::config::RetryDefaults;

type Versions = BTreeMap<semver::Version, Arc<WorkflowTemplate>>;

/// Compiled templates, indexed by namespace, then name, then version.
#[derive(Debug, Default)]
pub struct TemplateRegistry {
    templates: BTreeMap<String, BTreeMap<String, Versions>>,
}

impl TemplateRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every `*.yml` / `*.yaml` under `dir` (recursively, sorted by path; names
    /// starting with `.` are skipped) and returns how many templates it registered.
    ///
    /// All-or-nothing: on any error nothing is registered and the error names the file.
    /// Two files defining the same namespace/name/version is an error naming both.
    pub fn load_dir(&mut self, dir: &Path, defaults: &RetryDefaults) -> Result<usize, TemplateError> {
        self.load_dir_for(dir, defaults, None)
    }

    /// [`load_dir`](Self::load_dir), applying each template's `environments.<environment>`
    /// overrides.
    pub fn load_dir_for(
        &mut self,
        dir: &Path,
        defaults: &RetryDefaults,
        environment: Option<&str>,
    ) -> Result<usize, TemplateError> {
        let files = template_files(dir)?;
        let mut loaded: Vec<WorkflowTemplate> = Vec::with_capacity(files.len());
        let mut seen: HashMap<(String, String, semver::Version), PathBuf> = HashMap::new();
        for path in files {
            let template = read_template(&path, defaults, environment)?;
            let key = (template.namespace.clone(), template.name.clone(), template.version_key.clone());
            if let Some(first) = seen.get(&key) {
                return Err(TemplateError::DuplicateTemplate {
                    template: describe(&template),
                    first: first.clone(),
                    second: path,
                });
            }
            seen.insert(key, path);
            loaded.push(template);
        }
        let count = loaded.len();
        for template in loaded {
            self.register(template);
        }
        Ok(count)
    }

    /// Reads, checks and registers one template file.
    pub fn load_file(&mut self, path: &Path, defaults: &RetryDefaults) -> Result<Arc<WorkflowTemplate>, TemplateError> {
        let template = read_template(path, defaults, None)?;
        Ok(self.register(template))
    }

    /// Adds a template, or replaces the one with the same namespace, name and version.
    pub fn register(&mut self, template: WorkflowTemplate) -> Arc<WorkflowTemplate> {
        self.register_shared(Arc::new(template))
    }

    /// `register` for a template already shared.
    pub fn register_shared(&mut self, template: Arc<WorkflowTemplate>) -> Arc<WorkflowTemplate> {
        let previous = self
            .templates
            .entry(template.namespace.clone())
            .or_default()
            .entry(template.name.clone())
            .or_default()
            .insert(template.version_key.clone(), Arc::clone(&template));
        if let Some(previous) = previous {
            if previous.source != template.source {
                tracing::warn!(
                    template = %describe(&template),
                    previous_source = ?previous.source,
                    source = ?template.source,
                    "task template replaced by one from another source"
                );
            }
        }
        template
    }

    /// Finds a template; `version: None` answers the highest semantic version that is not
    /// a prerelease (a prerelease runs only when its version is named).
    ///
    /// Errors say what is known instead: the namespaces when the namespace is unknown, the
    /// template names of the namespace when the name is unknown, the versions when the
    /// version is unknown or not a semantic version.
    pub fn find(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<WorkflowTemplate>, TemplateError> {
        let Some(names) = self.templates.get(namespace) else {
            return Err(TemplateError::UnknownNamespace {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                known_namespaces: self.templates.keys().cloned().collect(),
            });
        };
        let Some(versions) = names.get(name) else {
            return Err(TemplateError::UnknownTemplate {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                known: names.keys().cloned().collect(),
            });
        };
        let available = || versions.keys().map(ToString::to_string).collect::<Vec<_>>();
        let found = match version {
            None => {
                let stable = versions.iter().rev().find(|(version, _)| version.pre.is_empty());
                let Some((_, template)) = stable else {
                    return Err(TemplateError::OnlyPrereleases {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                        available: available(),
                    });
                };
                Some(template)
            }
            Some(requested) => {
                let key = semver::Version::parse(requested).map_err(|err| TemplateError::InvalidRequestedVersion {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    version: requested.to_owned(),
                    reason: err.to_string(),
                    available: available(),
                })?;
                versions.get(&key)
            }
        };
        found.cloned().ok_or_else(|| TemplateError::UnknownVersion {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            version: version.unwrap_or_default().to_owned(),
            available: available(),
        })
    }

    /// How many templates (counting each version) are registered.
    pub fn len(&self) -> usize {
        self.templates.values().flat_map(BTreeMap::values).map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every template, ordered by namespace, name, then version.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<WorkflowTemplate>> {
        self.templates.values().flat_map(BTreeMap::values).flat_map(BTreeMap::values)
    }
}

fn describe(template: &WorkflowTemplate) -> String {
    template_id(Some(&template.namespace), Some(&template.name), Some(&template.version))
}

fn read_template(
    path: &Path,
    defaults: &RetryDefaults,
    environment: Option<&str>,
) -> Result<WorkflowTemplate, TemplateError> {
    let text = fs::read_to_string(path).map_err(|source| TemplateError::Io { path: path.to_path_buf(), source })?;
    let template = parse_yaml(&text, Some(path))?;
    compile_for(template, defaults, Some(path.to_path_buf()), environment)
}

/// The template files under `dir`, recursively, sorted by path. Follows symbolic links,
/// visiting each real directory once; skips names starting with `.` (editor lock and
/// backup files).
fn template_files(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| TemplateError::Io { path, source }
    };
    match fs::metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(TemplateError::DirectoryNotFound { path: dir.to_path_buf() })
        }
        Err(err) => return Err(io_error(dir)(err)),
        Ok(meta) if !meta.is_dir() => return Err(TemplateError::NotADirectory { path: dir.to_path_buf() }),
        Ok(_) => {}
    }

    let mut files = Vec::new();
    let mut visited: HashSet<PathBuf> = HashSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let real = fs::canonicalize(&current).map_err(io_error(&current))?;
        if !visited.insert(real) {
            continue;
        }
        for entry in fs::read_dir(&current).map_err(io_error(&current))? {
            let entry = entry.map_err(io_error(&current))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                // A dangling symbolic link is not a template; anything else is an error.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(io_error(&path)(err)),
            };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() && is_template_file(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_template_file(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_files_are_yaml_by_extension_in_any_case() {
        assert!(is_template_file(Path::new("a/b.yaml")));
        assert!(is_template_file(Path::new("a/b.YML")));
        assert!(!is_template_file(Path::new("a/b.yaml.bak")));
        assert!(!is_template_file(Path::new("a/yaml")));
    }

    #[test]
    fn template_files_recurse_sort_and_skip_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("z/nested")).unwrap();
        fs::create_dir_all(root.join(".hidden")).unwrap();
        for file in ["b.yaml", "a.yml", "z/nested/c.yaml", "notes.txt", ".#lock.yaml", ".hidden/d.yaml"] {
            fs::write(root.join(file), "x").unwrap();
        }
        let files = template_files(root).unwrap();
        let relative: Vec<_> = files.iter().map(|p| p.strip_prefix(root).unwrap().to_path_buf()).collect();
        assert_eq!(relative, vec![PathBuf::from("a.yml"), PathBuf::from("b.yaml"), PathBuf::from("z/nested/c.yaml")]);
    }

    #[cfg(unix)]
    #[test]
    fn template_files_survive_a_symlink_loop() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a.yaml"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
        let files = template_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
    }
}
