//! The PostgreSQL source's settings, named as Debezium's PostgreSQL connector names them so
//! existing connector configs work unchanged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use super::types::DecimalMode;
use crate::pg::{PgConfig, PgTls, SslMode};
use crate::plugin::{ConfigDef, ConfigType, Problems};
use crate::runtime::PipelineConfig;

/// When to snapshot the tables before streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapshotMode {
    /// When no offset is stored (first start, or a snapshot that did not finish).
    Initial,
    /// Never; stream from the slot only (`no_data` is the same).
    Never,
    /// Snapshot when no offset is stored, then stop without streaming.
    InitialOnly,
    /// When no offset is stored or the slot the offset belongs to is gone.
    WhenNeeded,
    /// At every start.
    Always,
}

/// What happens to each operation kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) create: bool,
    pub(crate) update: bool,
    pub(crate) delete: bool,
    pub(crate) truncate: bool,
}

/// How the publication is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublicationMode {
    /// `CREATE PUBLICATION … FOR ALL TABLES` when missing.
    AllTables,
    /// `CREATE PUBLICATION … FOR TABLE` the captured tables, kept in step with the filters.
    Filtered,
    /// Pre-created by the DBA; never touched.
    Disabled,
}

/// The parsed settings.
#[derive(Debug, Clone)]
pub(crate) struct PostgresSourceConfig {
    pub(crate) pg: PgConfig,
    pub(crate) prefix: String,
    pub(crate) slot: String,
    pub(crate) publication: String,
    pub(crate) publication_mode: PublicationMode,
    pub(crate) snapshot: SnapshotMode,
    pub(crate) table_include: Vec<Regex>,
    pub(crate) table_exclude: Vec<Regex>,
    pub(crate) schema_include: Vec<Regex>,
    pub(crate) schema_exclude: Vec<Regex>,
    pub(crate) decimals: DecimalMode,
    pub(crate) tombstones: bool,
    pub(crate) skipped: Skipped,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) heartbeat_prefix: String,
    pub(crate) pipeline: PipelineConfig,
    pub(crate) fetch_size: u32,
    pub(crate) status_interval: Duration,
    pub(crate) topic_partitions: Option<i32>,
    pub(crate) topic_replication: Option<i16>,
}

/// The settings the connector accepts, for validation and `config/validate`.
pub(crate) fn definitions() -> Vec<ConfigDef> {
    use ConfigType::*;
    let d = ConfigDef::new;
    let mut defs = vec![
        d(
            "database.hostname",
            String,
            None,
            "Host of the PostgreSQL server",
        )
        .required(),
        d(
            "database.port",
            Int,
            Some("5432"),
            "Port of the PostgreSQL server",
        ),
        d(
            "database.user",
            String,
            None,
            "User with the REPLICATION attribute",
        )
        .required(),
        d("database.password", Password, None, "Its password"),
        d("database.dbname", String, None, "Database to capture").required(),
        d(
            "database.sslmode",
            String,
            Some("prefer"),
            "disable, prefer (TLS when offered), require (TLS; verified only with database.sslrootcert), verify-ca, verify-full (also the host name)",
        ),
        d(
            "database.sslrootcert",
            String,
            None,
            "PEM file of the CA certificates the server's certificate must chain to",
        ),
        d(
            "database.sslcert",
            String,
            None,
            "PEM file of a client certificate (with database.sslkey)",
        ),
        d(
            "database.sslkey",
            String,
            None,
            "PEM file of the client certificate's unencrypted private key",
        ),
        d(
            "topic.prefix",
            String,
            None,
            "Prefix of every topic name (`<prefix>.<schema>.<table>`) and the source's name",
        )
        .required(),
        d(
            "plugin.name",
            String,
            Some("pgoutput"),
            "Logical decoding plugin; only pgoutput",
        ),
        d("slot.name", String, Some("debezium"), "Replication slot"),
        d(
            "publication.name",
            String,
            Some("dbz_publication"),
            "Publication",
        ),
        d(
            "publication.autocreate.mode",
            String,
            Some("all_tables"),
            "all_tables, filtered or disabled",
        ),
        d(
            "snapshot.mode",
            String,
            Some("initial"),
            "initial, never (no_data), initial_only, when_needed or always",
        ),
        d(
            "table.include.list",
            List,
            None,
            "Regular expressions of `schema.table` to capture",
        ),
        d(
            "table.exclude.list",
            List,
            None,
            "Regular expressions of `schema.table` not to capture",
        ),
        d(
            "schema.include.list",
            List,
            None,
            "Regular expressions of schemas to capture",
        ),
        d(
            "schema.exclude.list",
            List,
            None,
            "Regular expressions of schemas not to capture",
        ),
        d(
            "decimal.handling.mode",
            String,
            Some("precise"),
            "precise, double or string",
        ),
        d(
            "tombstones.on.delete",
            Boolean,
            Some("true"),
            "Write a tombstone after each delete event",
        ),
        d(
            "skipped.operations",
            List,
            Some("none"),
            "Operations not to emit: c, u, d, t, or none",
        ),
        d(
            "heartbeat.interval.ms",
            Int,
            Some("0"),
            "Heartbeat records every so often (0: off)",
        ),
        d(
            "heartbeat.topics.prefix",
            String,
            Some("__debezium-heartbeat"),
            "Prefix of the heartbeat topic",
        ),
        d(
            "snapshot.fetch.size",
            Int,
            Some("10240"),
            "Rows read per round trip during the snapshot",
        ),
        d(
            "status.update.interval.ms",
            Int,
            Some("10000"),
            "How often the slot's confirmed position is reported",
        ),
        d(
            "topic.creation.default.partitions",
            Int,
            Some("1"),
            "Partitions of topics the connector creates",
        ),
        d(
            "topic.creation.default.replication.factor",
            Int,
            Some("-1"),
            "Replication factor of topics the connector creates (-1: the broker's default)",
        ),
        d(
            "tasks.max",
            Int,
            Some("1"),
            "PostgreSQL capture runs as one task",
        ),
    ];
    defs.extend(PipelineConfig::definitions());
    defs
}

/// The `database.ssl*` settings, as libpq and Debezium name them.
fn parse_tls(get: &dyn Fn(&str) -> String, problems: &mut Problems) -> PgTls {
    let file = |k: &str| Some(PathBuf::from(get(k))).filter(|p| !p.as_os_str().is_empty());
    let mode_name = get("database.sslmode");
    let mode = SslMode::NAMES
        .iter()
        .find(|(name, _)| *name == mode_name.trim())
        .map(|(_, mode)| *mode)
        .unwrap_or_else(|| {
            problems.add(
                "database.sslmode",
                format!("{mode_name:?} is not disable, prefer, require, verify-ca or verify-full (allow is not supported)"),
            );
            SslMode::Disable
        });
    let root_cert = file("database.sslrootcert");
    if root_cert.is_none() && matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        problems.add(
            "database.sslrootcert",
            format!("database.sslmode={mode_name} needs this: set it to a PEM file of the CA certificates the server's certificate chains to (or use sslmode=require)"),
        );
    }
    let client_cert = match (file("database.sslcert"), file("database.sslkey")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (cert, _) => {
            let missing = if cert.is_some() {
                "database.sslkey"
            } else {
                "database.sslcert"
            };
            problems.add(
                missing,
                "a client certificate needs both database.sslcert and database.sslkey".into(),
            );
            None
        }
    };
    if !get("database.sslpassword").is_empty() {
        problems.add(
            "database.sslpassword",
            "encrypted private keys are not supported: give database.sslkey unencrypted".into(),
        );
    }
    PgTls {
        mode,
        root_cert,
        client_cert,
    }
}

impl PostgresSourceConfig {
    /// Parses `props`, collecting every problem (for validation) rather than stopping at the
    /// first.
    pub(crate) fn parse(props: &BTreeMap<String, String>, problems: &mut Problems) -> Option<Self> {
        let defs = definitions();
        problems.check_definitions(&defs, props);
        let get = |k: &str| -> String {
            props
                .get(k)
                .cloned()
                .or_else(|| {
                    defs.iter()
                        .find(|d| d.name == k)
                        .and_then(|d| d.default.map(str::to_owned))
                })
                .unwrap_or_default()
        };
        let int = |k: &str, problems: &mut Problems| -> i64 {
            get(k).trim().parse().unwrap_or_else(|_| {
                problems.add(k, format!("{:?} is not an integer", get(k)));
                0
            })
        };
        let port = int("database.port", problems);
        let fetch_size = int("snapshot.fetch.size", problems);
        let heartbeat_ms = int("heartbeat.interval.ms", problems);
        let status_ms = int("status.update.interval.ms", problems);
        let partitions = int("topic.creation.default.partitions", problems);
        let replication = int("topic.creation.default.replication.factor", problems);
        let boolean = |k: &str, problems: &mut Problems| match get(k).trim() {
            "true" => true,
            "false" => false,
            other => {
                problems.add(k, format!("{other:?} is not true or false"));
                false
            }
        };
        let tombstones = boolean("tombstones.on.delete", problems);
        let tls = parse_tls(&get, problems);
        let pipeline = PipelineConfig::parse(props, problems);
        let port = u16::try_from(port).unwrap_or_else(|_| {
            problems.add("database.port", format!("{port} is not a port"));
            0
        });
        if get("plugin.name") != "pgoutput" {
            problems.add("plugin.name", "only pgoutput is supported".to_owned());
        }
        let publication_mode = match get("publication.autocreate.mode").as_str() {
            "all_tables" => PublicationMode::AllTables,
            "filtered" => PublicationMode::Filtered,
            "disabled" => PublicationMode::Disabled,
            other => {
                problems.add(
                    "publication.autocreate.mode",
                    format!("{other:?} is not all_tables, filtered or disabled"),
                );
                PublicationMode::Disabled
            }
        };
        let snapshot = match get("snapshot.mode").as_str() {
            "initial" => SnapshotMode::Initial,
            "never" | "no_data" => SnapshotMode::Never,
            "initial_only" => SnapshotMode::InitialOnly,
            "when_needed" => SnapshotMode::WhenNeeded,
            "always" => SnapshotMode::Always,
            other => {
                problems.add("snapshot.mode", format!("{other:?} is not initial, never, no_data, initial_only, when_needed or always"));
                SnapshotMode::Initial
            }
        };
        let decimals = match get("decimal.handling.mode").as_str() {
            "precise" => DecimalMode::Precise,
            "double" => DecimalMode::Double,
            "string" => DecimalMode::String,
            other => {
                problems.add(
                    "decimal.handling.mode",
                    format!("{other:?} is not precise, double or string"),
                );
                DecimalMode::Precise
            }
        };
        let mut skipped = Skipped::default();
        for op in list(&get("skipped.operations")) {
            match op.as_str() {
                "none" => {}
                "c" => skipped.create = true,
                "u" => skipped.update = true,
                "d" => skipped.delete = true,
                "t" => skipped.truncate = true,
                other => problems.add(
                    "skipped.operations",
                    format!("{other:?} is not c, u, d, t or none"),
                ),
            }
        }
        let patterns = |k: &str, problems: &mut Problems| -> Vec<Regex> {
            list(&get(k))
                .into_iter()
                .filter_map(|p| match Regex::new(&format!("^(?:{p})$")) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        problems.add(k, format!("{p:?} is not a regular expression: {e}"));
                        None
                    }
                })
                .collect()
        };
        let table_include = patterns("table.include.list", problems);
        let table_exclude = patterns("table.exclude.list", problems);
        let schema_include = patterns("schema.include.list", problems);
        let schema_exclude = patterns("schema.exclude.list", problems);
        if !table_include.is_empty() && !table_exclude.is_empty() {
            problems.add(
                "table.exclude.list",
                "cannot be combined with table.include.list".into(),
            );
        }
        if !schema_include.is_empty() && !schema_exclude.is_empty() {
            problems.add(
                "schema.exclude.list",
                "cannot be combined with schema.include.list".into(),
            );
        }
        let prefix = get("topic.prefix");
        if !prefix.is_empty()
            && !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            problems.add(
                "topic.prefix",
                format!("{prefix:?} may hold only letters, digits, '.', '_' and '-'"),
            );
        }
        let slot = get("slot.name");
        if !slot
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || slot.is_empty()
        {
            problems.add(
                "slot.name",
                format!("{slot:?}: slot names are lower-case letters, digits and '_'"),
            );
        }
        if !problems.is_empty() {
            return None;
        }
        Some(Self {
            pg: PgConfig {
                host: get("database.hostname"),
                port,
                user: get("database.user"),
                password: props.get("database.password").cloned(),
                dbname: get("database.dbname"),
                application_name: format!("sluice-connect {prefix}"),
                connect_timeout: Duration::from_secs(30),
                tls,
            },
            prefix,
            slot,
            publication: get("publication.name"),
            publication_mode,
            snapshot,
            table_include,
            table_exclude,
            schema_include,
            schema_exclude,
            decimals,
            tombstones,
            skipped,
            heartbeat: (heartbeat_ms > 0).then(|| Duration::from_millis(heartbeat_ms as u64)),
            heartbeat_prefix: get("heartbeat.topics.prefix"),
            pipeline,
            fetch_size: u32::try_from(fetch_size.clamp(1, 1_000_000)).unwrap_or(10_240),
            status_interval: Duration::from_millis(status_ms.clamp(100, 3_600_000) as u64),
            topic_partitions: (partitions > 0).then_some(partitions as i32),
            topic_replication: (replication > 0).then_some(replication as i16),
        })
    }

    /// Whether `schema.table` is captured.
    pub(crate) fn captures(&self, schema: &str, table: &str) -> bool {
        let full = format!("{schema}.{table}");
        let schema_ok = if self.schema_include.is_empty() {
            !self.schema_exclude.iter().any(|r| r.is_match(schema))
                && !matches!(schema, "pg_catalog" | "information_schema")
        } else {
            self.schema_include.iter().any(|r| r.is_match(schema))
        };
        let table_ok = if self.table_include.is_empty() {
            !self.table_exclude.iter().any(|r| r.is_match(&full))
        } else {
            self.table_include.iter().any(|r| r.is_match(&full))
        };
        schema_ok && table_ok
    }

    /// The topic of `schema.table`: `<prefix>.<schema>.<table>`, characters Kafka does not
    /// allow replaced by `_` as Debezium does.
    pub(crate) fn topic(&self, schema: &str, table: &str) -> String {
        sanitize(&format!("{}.{schema}.{table}", self.prefix))
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = [
            ("database.hostname", "localhost"),
            ("database.user", "postgres"),
            ("database.dbname", "app"),
            ("topic.prefix", "shop"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        p
    }

    #[test]
    fn defaults_and_filters() {
        let mut problems = Problems::default();
        let c = PostgresSourceConfig::parse(
            &props(&[("table.include.list", "public.orders,inv\\..*")]),
            &mut problems,
        )
        .unwrap();
        assert_eq!(c.slot, "debezium");
        assert_eq!(c.pg.port, 5432);
        assert!(c.captures("public", "orders"));
        assert!(!c.captures("public", "orders2"));
        assert!(c.captures("inv", "items"));
        assert_eq!(c.topic("public", "my table"), "shop.public.my_table");
    }

    #[test]
    fn tls_settings() {
        let parse = |extra: &[(&str, &str)]| {
            let mut problems = Problems::default();
            let config = PostgresSourceConfig::parse(&props(extra), &mut problems);
            (
                config.map(|c| c.pg.tls),
                problems.keys().map(str::to_owned).collect::<Vec<_>>(),
            )
        };
        assert_eq!(parse(&[]).0.unwrap(), PgTls::default());
        let (tls, _) = parse(&[
            ("database.sslmode", "verify-full"),
            ("database.sslrootcert", "/ca.pem"),
            ("database.sslcert", "/c.pem"),
            ("database.sslkey", "/k.pem"),
        ]);
        let tls = tls.unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.client_cert, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(
            parse(&[("database.sslmode", "verify-ca")]).1,
            ["database.sslrootcert"]
        );
        assert_eq!(
            parse(&[("database.sslmode", "allow")]).1,
            ["database.sslmode"]
        );
        assert_eq!(
            parse(&[("database.sslcert", "/c.pem")]).1,
            ["database.sslkey"]
        );
        assert_eq!(
            parse(&[("database.sslpassword", "x")]).1,
            ["database.sslpassword"]
        );
    }

    #[test]
    fn collects_every_problem() {
        let mut problems = Problems::default();
        let bad = props(&[
            ("database.port", "x"),
            ("snapshot.mode", "sometimes"),
            ("slot.name", "Bad-Slot"),
        ]);
        assert!(PostgresSourceConfig::parse(&bad, &mut problems).is_none());
        let keys: Vec<_> = problems.keys().collect();
        assert!(
            keys.contains(&"database.port")
                && keys.contains(&"snapshot.mode")
                && keys.contains(&"slot.name"),
            "{keys:?}"
        );
        let mut problems = Problems::default();
        let mut missing = props(&[]);
        missing.remove("database.hostname");
        assert!(PostgresSourceConfig::parse(&missing, &mut problems).is_none());
        assert!(problems.keys().any(|k| k == "database.hostname"));
    }
}
