//! `[ledger]` in tally.toml: where the ledger lives. Without `url`, the embedded SQLite file
//! at `[paths] state` (the default, unchanged). With `url = "postgres://user@host/db"`, a
//! PostgreSQL server that several watchers share; its password never sits in tally.toml: it
//! comes from `TALLY_LEDGER_PASSWORD` or from the file `password_file` names (resolved by
//! `settings`, the one place that reads the environment).

use serde::Deserialize;
use std::path::PathBuf;

/// The `[ledger]` section of tally.toml.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSettings {
    /// `postgres://user@host[:port]/database[?sslmode=…]`; none: the SQLite file.
    pub url: Option<String>,
    /// A file holding the server password (its first line), readable by tally only.
    pub password_file: Option<PathBuf>,
    /// PEM file of the authority that signed the server's certificate: the certificate and
    /// the host name are then checked (without it, TLS when the server offers it, unchecked).
    pub ca_file: Option<PathBuf>,
    /// How long a watcher's claim on a file it is taking holds (seconds): another watcher
    /// sharing the server takes the file over only after that. Longer than any intake (the
    /// reader child's time limit and the move).
    pub claim_secs: f64,
    /// The password, from the environment or `password_file` (never from tally.toml).
    #[serde(skip)]
    pub password: Option<String>,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            url: None,
            password_file: None,
            ca_file: None,
            claim_secs: 600.0,
            password: None,
        }
    }
}

impl std::fmt::Debug for LedgerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerSettings")
            .field("url", &self.url)
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("claim_secs", &self.claim_secs)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

impl LedgerSettings {
    /// Every unusable value, with its key under `[ledger]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.claim_secs.is_finite() && (1.0..=86_400.0).contains(&self.claim_secs)) {
            out.push((
                "claim_secs",
                format!(
                    "must be a number of seconds from 1 to 86400, found {}",
                    self.claim_secs
                ),
            ));
        }
        if let Some(url) = &self.url {
            let Some((scheme, rest)) = url.split_once("://") else {
                out.push((
                    "url",
                    format!("{url:?} is not a URL such as postgres://tally@db.example.cn/tally"),
                ));
                return out;
            };
            if scheme != "postgres" && scheme != "postgresql" {
                out.push((
                    "url",
                    format!(
                        "only PostgreSQL servers are supported (postgres://…), found {scheme}://"
                    ),
                ));
            } else if rest
                .split_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
            {
                out.push((
                    "url",
                    "must not hold the password: set TALLY_LEDGER_PASSWORD or password_file instead"
                        .into(),
                ));
            } else if url.parse::<postgres::Config>().is_err() {
                out.push(("url", format!("{url:?} is not a PostgreSQL connection URL")));
            }
        } else if self.password_file.is_some() {
            out.push(("password_file", "is only used with url".into()));
        } else if self.ca_file.is_some() {
            out.push(("ca_file", "is only used with url".into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> LedgerSettings {
        LedgerSettings {
            url: Some(url.into()),
            ..LedgerSettings::default()
        }
    }

    #[test]
    fn urls_are_checked_and_hold_no_password() {
        assert!(
            with_url("postgres://tally@127.0.0.1:5432/tally")
                .problems()
                .is_empty()
        );
        assert!(
            with_url("postgresql://tally@db/tally?sslmode=disable")
                .problems()
                .is_empty()
        );
        assert!(
            with_url("postgres://tally:secret@db/tally").problems()[0]
                .1
                .contains("TALLY_LEDGER_PASSWORD")
        );
        assert!(
            with_url("mysql://tally@db/tally").problems()[0]
                .1
                .contains("PostgreSQL")
        );
        assert!(with_url("tally.db").problems()[0].1.contains("not a URL"));
        let stray = LedgerSettings {
            password_file: Some("pw".into()),
            ..LedgerSettings::default()
        };
        assert_eq!(stray.problems()[0].0, "password_file");
    }
}
