//! A linter for client configurations: known mistakes, reported at start-up by the SDK and by
//! `sluice lint-config`.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::critical_topics;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Probably fine, worth a look.
    Warning,
    /// Will lose data or break the client.
    Error,
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable rule name (see `docs/sdk.md`).
    pub rule: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}[{}]: {}", self.rule, self.message)
    }
}

fn num(props: &BTreeMap<String, String>, key: &str, default: i64) -> i64 {
    props
        .get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn is_true(props: &BTreeMap<String, String>, key: &str) -> Option<bool> {
    props
        .get(key)
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Checks `props` (librdkafka keys plus `sluice.critical.topics`) against the rules.
pub fn lint(props: &BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |rule, severity, message: String| {
        out.push(Finding {
            rule,
            severity,
            message,
        })
    };
    let acks = props
        .get("acks")
        .or_else(|| props.get("request.required.acks"))
        .map(|s| s.trim().to_owned());
    let critical = critical_topics(props);
    if let Some(a) = acks.as_deref().filter(|a| matches!(*a, "0" | "1")) {
        if !critical.is_empty() {
            push(
                "acks-on-critical-topic",
                Severity::Error,
                format!("acks={a} can lose acknowledged writes to critical topics {critical:?}; use acks=all"),
            );
        }
    }
    let idempotent = is_true(props, "enable.idempotence");
    let retries = num(props, "retries", i64::from(i32::MAX));
    if idempotent == Some(false) && retries > 0 {
        push(
            "retries-without-idempotence",
            Severity::Warning,
            format!("enable.idempotence=false with retries={retries} can duplicate or reorder records on retry; enable idempotence or set retries=0"),
        );
    }
    if idempotent != Some(false) {
        if acks.as_deref().is_some_and(|a| a != "all" && a != "-1") {
            push(
                "idempotence-needs-acks-all",
                Severity::Error,
                "enable.idempotence requires acks=all; the producer will refuse to start"
                    .to_owned(),
            );
        }
        let inflight = num(props, "max.in.flight.requests.per.connection", 5);
        if inflight > 5 {
            push(
                "idempotence-in-flight",
                Severity::Error,
                format!("max.in.flight.requests.per.connection={inflight} exceeds 5, which idempotence requires"),
            );
        }
    }
    let session = num(props, "session.timeout.ms", 45_000);
    let heartbeat = num(props, "heartbeat.interval.ms", 3_000);
    if session < 3 * heartbeat {
        push(
            "session-timeout-vs-heartbeat",
            Severity::Warning,
            format!("session.timeout.ms={session} is shorter than three heartbeats ({heartbeat} ms each); one late heartbeat will evict the consumer; raise it to at least {}", 3 * heartbeat),
        );
    }
    if props.contains_key("group.id") && !props.contains_key("auto.offset.reset") {
        push(
            "missing-auto-offset-reset",
            Severity::Warning,
            "group.id is set but auto.offset.reset is not: a new group silently starts at the end (latest); set it to earliest or latest explicitly".to_owned(),
        );
    }
    let linger = num(props, "linger.ms", 5);
    if linger > 100 {
        push(
            "high-linger",
            Severity::Warning,
            format!("linger.ms={linger} delays every record by up to {linger} ms; the platform default is 5"),
        );
    }
    let protocol = props
        .get("security.protocol")
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "plaintext".to_owned());
    let has_tls_files = props.keys().any(|k| k.starts_with("ssl."));
    if has_tls_files && !protocol.contains("ssl") {
        push(
            "ssl-settings-ignored",
            Severity::Warning,
            format!("ssl.* settings are present but security.protocol={protocol}; they are ignored and traffic is unencrypted; set security.protocol=ssl"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn rules(kv: &[(&str, &str)]) -> Vec<&'static str> {
        lint(&props(kv)).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn platform_defaults_are_clean() {
        let mut p = props(&[("bootstrap.servers", "b:9092")]);
        p.extend(
            crate::config::PRODUCER_DEFAULTS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        assert_eq!(lint(&p), vec![]);
    }

    #[test]
    fn each_rule_fires() {
        assert!(rules(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("retries", "0"),
            (CRITICAL, "payments")
        ])
        .contains(&"acks-on-critical-topic"));
        assert!(!rules(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("retries", "0")
        ])
        .contains(&"acks-on-critical-topic"));
        assert_eq!(
            rules(&[("enable.idempotence", "false")]),
            ["retries-without-idempotence"]
        );
        assert_eq!(rules(&[("acks", "1")]), ["idempotence-needs-acks-all"]);
        assert_eq!(
            rules(&[
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "3000")
            ]),
            ["session-timeout-vs-heartbeat"]
        );
        assert_eq!(rules(&[("group.id", "g")]), ["missing-auto-offset-reset"]);
        assert!(rules(&[("group.id", "g"), ("auto.offset.reset", "earliest")]).is_empty());
        assert_eq!(
            rules(&[("max.in.flight.requests.per.connection", "10")]),
            ["idempotence-in-flight"]
        );
        assert_eq!(rules(&[("linger.ms", "500")]), ["high-linger"]);
        assert_eq!(
            rules(&[("ssl.ca.location", "/ca.pem")]),
            ["ssl-settings-ignored"]
        );
    }

    const CRITICAL: &str = crate::config::CRITICAL_TOPICS;
}
