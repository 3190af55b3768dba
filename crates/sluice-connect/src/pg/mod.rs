//! A small PostgreSQL client written for change data capture: the simple query protocol (for
//! catalog queries and snapshot cursors) and logical replication with `pgoutput`. Nothing
//! here knows about Kafka.

mod conn;
pub(crate) mod pgoutput;
mod replication;
mod tls;
mod wire;

use std::fmt;
use std::time::Duration;

pub(crate) use conn::PgConnection;
pub(crate) use replication::{pg_micros_to_unix_micros, ReplicationMessage, ReplicationStream};
pub(crate) use tls::{PgTls, SslMode};
pub(crate) use wire::ServerError;

/// Where and as whom to connect.
#[derive(Clone)]
pub(crate) struct PgConfig {
    /// Host name or address.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// User (needs the REPLICATION attribute, or to own the tables for a publication).
    pub(crate) user: String,
    /// Password, when the server asks for one.
    pub(crate) password: Option<String>,
    /// Database.
    pub(crate) dbname: String,
    /// `application_name`, shown in `pg_stat_replication`.
    pub(crate) application_name: String,
    /// Limit for connecting and logging in.
    pub(crate) connect_timeout: Duration,
    /// TLS (`database.sslmode` and its files).
    pub(crate) tls: PgTls,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("dbname", &self.dbname)
            .field("tls", &self.tls)
            .finish()
    }
}

impl PgConfig {
    fn password(&self) -> Result<&str, PgError> {
        self.password.as_deref().ok_or_else(|| {
            PgError::Auth(format!(
                "PostgreSQL asks for a password for user {} and none is configured (database.password)",
                self.user
            ))
        })
    }
}

/// What can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(String),
    /// TLS was required and could not be set up, or the server's certificate was refused.
    #[error("TLS: {0}")]
    Tls(String),
    /// Logging in failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server reported an error.
    #[error("PostgreSQL: {0}")]
    Server(ServerError),
    /// The server sent something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A WAL position (log sequence number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl std::str::FromStr for Lsn {
    type Err = PgError;

    fn from_str(s: &str) -> Result<Self, PgError> {
        let bad = || PgError::Protocol(format!("{s:?} is not an LSN"));
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let hi = u64::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| bad())?;
        if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
            return Err(bad());
        }
        Ok(Lsn(hi << 32 | lo))
    }
}

/// Quotes an identifier for SQL (`"a""b"`).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL (`'it''s'`).
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trips() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("16".parse::<Lsn>().is_err());
        assert!("1FFFFFFFF/0".parse::<Lsn>().is_err());
    }

    #[test]
    fn quotes() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
