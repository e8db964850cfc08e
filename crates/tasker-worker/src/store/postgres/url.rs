//! The database URL: parsing it into a client configuration, and the redacted form that
//! every log line and error shows (the password never leaves this module).
//!
//! Both libpq forms are accepted, as `tokio-postgres` reads them:
//! `postgresql://user:secret@host:5432/db?connect_timeout=5` and
//! `host=/tmp/pg user=app password=secret dbname=db`. A unix socket directory goes in
//! `host` (`postgresql://app@/db?host=/tmp/pg`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::PgStoreError;

/// How long a connection attempt may take when the URL does not say (`connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What sessions of this store call themselves in `pg_stat_activity` unless the URL says.
pub const APPLICATION_NAME: &str = "tasker_core";

/// A parsed database URL: the client configuration and the text to show people.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
    /// The URL as given with the password replaced by `***`; what errors and logs print.
    redacted: String,
}

impl DatabaseUrl {
    /// Parses `url`; an error names the URL without its password and says what is wrong.
    pub fn parse(url: &str) -> Result<Self, PgStoreError> {
        let redacted = redact(url);
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(PgStoreError::InvalidUrl { url: redacted, reason: "the URL is empty".to_owned() });
        }
        if trimmed.contains("://") && !(trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")) {
            let scheme = trimmed.split("://").next().unwrap_or_default();
            return Err(PgStoreError::InvalidUrl {
                url: redacted,
                reason: format!("unsupported scheme {scheme:?} (expected postgresql:// or postgres://)"),
            });
        }
        if let Some(mode) = requested_ssl_mode(trimmed).filter(|m| TLS_MODES.contains(&m.to_ascii_lowercase().as_str()))
        {
            return Err(PgStoreError::InvalidUrl {
                url: redacted,
                reason: format!(
                    "sslmode={mode} asks for TLS, which this build of tasker_core does not support; connect over a \
                     unix socket or a trusted network (sslmode=disable or prefer), or through a TLS-terminating proxy"
                ),
            });
        }
        let mut config = tokio_postgres::Config::from_str(trimmed).map_err(|err| PgStoreError::InvalidUrl {
            reason: scrub(&err.to_string(), password_of(url).as_deref()),
            url: redacted.clone(),
        })?;
        if config.get_hosts().is_empty() {
            return Err(PgStoreError::InvalidUrl {
                url: redacted,
                reason: "no host: give one (postgresql://host/db) or a unix socket directory (?host=/path)".to_owned(),
            });
        }
        if config.get_user().is_none() {
            // libpq's default: the operating system user.
            if let Some(user) = std::env::var_os("USER").and_then(|u| u.into_string().ok()) {
                config.user(user);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        Ok(Self { config, redacted })
    }

    /// The client configuration (password included; never print it).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The database name (or the user name, libpq's default).
    pub fn database(&self) -> Option<&str> {
        self.config.get_dbname().or_else(|| self.config.get_user())
    }

    /// Removes this URL's password from a message that might echo it.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let password = self.config.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
        scrub(message, password.as_deref())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.redacted).finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// `sslmode` values that require TLS (refused: this build has no TLS connector).
const TLS_MODES: [&str; 3] = ["require", "verify-ca", "verify-full"];

/// The `sslmode` a URL asks for (query parameter of the URL form, key of the key/value form).
fn requested_ssl_mode(url: &str) -> Option<String> {
    if url.contains("://") {
        let query = url.split_once('?')?.1;
        let query = query.split('#').next().unwrap_or_default();
        return query.split('&').find_map(|pair| {
            pair.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("sslmode")).map(|(_, v)| v.to_owned())
        });
    }
    let mut words = url.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let Some((key, value)) = word.split_once('=') else { continue };
        if key.eq_ignore_ascii_case("sslmode") {
            let value = if value.is_empty() { words.next().unwrap_or_default() } else { value };
            return Some(value.trim_matches('\'').to_owned());
        }
    }
    None
}

/// `url` with any password replaced by `***`: the userinfo password of the URL form,
/// a `password=` query parameter, and a `password=` key of the key/value form.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return redact_key_value(url) };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..authority_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_len..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let query = &tail[q + 1..];
            let (query, fragment) = match query.find('#') {
                Some(h) => (&query[..h], &query[h..]),
                None => (query, ""),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    out
}

/// The key/value form: `password=secret` or `password='se cret'` becomes `password=***`.
fn redact_key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_password_key(rest) {
        out.push_str(&rest[..pos]);
        let after_key = &rest[pos..];
        let eq = after_key.find('=').map(|e| e + 1).unwrap_or(after_key.len());
        out.push_str(&after_key[..eq]);
        out.push_str("***");
        let value = after_key[eq..].trim_start();
        let skipped = after_key[eq..].len() - value.len();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            (1 + end + 1).min(value.len())
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        rest = &after_key[eq + skipped + value_len..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` key (followed by optional spaces and `=`) starts, at a word boundary.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let start = from + found;
        let boundary = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let after = lower[start + "password".len()..].trim_start();
        if boundary && after.starts_with('=') {
            return Some(start);
        }
        from = start + "password".len();
    }
    None
}

/// The password written in `url`, if any (to scrub it from messages of the parser).
fn password_of(url: &str) -> Option<String> {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            if let Some((_, password)) = authority[..at].split_once(':') {
                return Some(password.to_owned());
            }
        }
        let query = rest.split_once('?').map(|(_, q)| q).unwrap_or_default();
        return query.split('&').find_map(|pair| {
            pair.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("password")).map(|(_, v)| v.to_owned())
        });
    }
    let pos = find_password_key(url)?;
    let value = url[pos..].split_once('=')?.1.trim_start();
    let value = value
        .strip_prefix('\'')
        .map(|v| v.split('\'').next().unwrap_or(v))
        .unwrap_or_else(|| value.split_whitespace().next().unwrap_or_default());
    Some(value.to_owned())
}

fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if p.len() >= 2 => message.replace(p, "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_userinfo_password() {
        assert_eq!(
            redact("postgresql://app:s3cr%40t@db.example:5432/tasks"),
            "postgresql://app:***@db.example:5432/tasks"
        );
        assert_eq!(redact("postgres://app@db/tasks"), "postgres://app@db/tasks");
        assert_eq!(redact("postgresql://db/tasks"), "postgresql://db/tasks");
        // An '@' inside the password: the last one ends the userinfo.
        assert_eq!(redact("postgresql://app:p@ss@db/tasks"), "postgresql://app:***@db/tasks");
    }

    #[test]
    fn redacts_a_password_query_parameter() {
        assert_eq!(
            redact("postgresql:///tasks?host=/tmp/pg&password=hunter2&sslmode=disable"),
            "postgresql:///tasks?host=/tmp/pg&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgresql://u:a@h/d?PASSWORD=b"), "postgresql://u:***@h/d?PASSWORD=***");
    }

    #[test]
    fn redacts_the_key_value_form() {
        assert_eq!(redact("host=/tmp password=hunter2 dbname=x"), "host=/tmp password=*** dbname=x");
        assert_eq!(redact("password = 'a b\\' c' user=u"), "password =*** user=u");
        assert_eq!(redact("user=u password=pw"), "user=u password=***");
        // Not a password key: a word ending in "password".
        assert_eq!(redact("user=oldpassword dbname=x"), "user=oldpassword dbname=x");
    }

    #[test]
    fn parse_errors_name_the_url_without_its_password() {
        let err = DatabaseUrl::parse("postgresql://app:hunter2@db:notaport/tasks").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("postgresql://app:***@db:notaport/tasks"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let err = DatabaseUrl::parse("mysql://app:hunter2@db/tasks").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme \"mysql\"") && !err.contains("hunter2"), "{err}");

        let err = DatabaseUrl::parse("   ").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");

        let err = DatabaseUrl::parse("postgresql:///tasks").unwrap_err().to_string();
        assert!(err.contains("no host"), "{err}");
    }

    #[test]
    fn a_url_asking_for_tls_is_refused_by_name() {
        for url in [
            "postgresql://app:hunter2@db/tasks?sslmode=require",
            "postgresql://app:hunter2@db/tasks?connect_timeout=2&sslmode=verify-full",
            "host=db user=app password=hunter2 sslmode=verify-ca",
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains("TLS") && err.contains("does not support"), "{err}");
            assert!(err.contains(&redact(url)) && !err.contains("hunter2"), "{err}");
        }
        assert!(DatabaseUrl::parse("postgresql://app@db/tasks?sslmode=disable").is_ok());
        assert!(DatabaseUrl::parse("postgresql://app@db/tasks?sslmode=prefer").is_ok());
    }

    #[test]
    fn parse_fills_in_timeout_and_application_name() {
        let url = DatabaseUrl::parse("postgresql://app:pw@/tasks?host=/tmp/pg").unwrap();
        assert_eq!(url.config().get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(url.config().get_application_name(), Some(APPLICATION_NAME));
        assert_eq!(url.database(), Some("tasks"));
        assert_eq!(url.redacted(), "postgresql://app:***@/tasks?host=/tmp/pg");
        assert_eq!(format!("{url:?}"), "DatabaseUrl(\"postgresql://app:***@/tasks?host=/tmp/pg\")");

        let url =
            DatabaseUrl::parse("postgresql://app@/tasks?host=/tmp/pg&connect_timeout=2&application_name=web").unwrap();
        assert_eq!(url.config().get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(url.config().get_application_name(), Some("web"));
    }

    #[test]
    fn scrub_removes_the_password_from_messages() {
        let url = DatabaseUrl::parse("postgresql://app:hunter2@localhost/tasks").unwrap();
        assert_eq!(url.scrub("failed for hunter2 at x"), "failed for *** at x");
    }
}
