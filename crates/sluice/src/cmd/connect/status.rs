//! `sluice connect status`: the state of every connector and task of a Connect cluster, from
//! Kafka Connect's REST API (`GET /connectors?expand=status`), so it works against Sluice's
//! workers and Apache Kafka's alike.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// Arguments of `sluice connect status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Only this connector.
    name: Option<String>,
    /// The REST API of any worker of the cluster.
    #[arg(
        long,
        env = "SLUICE_CONNECT_URL",
        default_value = "http://127.0.0.1:8083"
    )]
    url: String,
    /// Print the REST API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 when a connector or task is FAILED (for scripts and health checks).
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Deserialize)]
struct ConnectorStatus {
    name: String,
    connector: State,
    #[serde(default)]
    tasks: Vec<TaskState>,
    #[serde(default, rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct State {
    state: String,
    worker_id: String,
    #[serde(default)]
    trace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TaskState {
    id: u32,
    #[serde(flatten)]
    state: State,
}

#[derive(Debug, Deserialize)]
struct Expanded {
    status: ConnectorStatus,
}

/// Runs `sluice connect status`.
pub(crate) async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let base = args.url.trim_end_matches('/');
    let (raw, statuses) = match &args.name {
        Some(name) => {
            let path = format!(
                "/connectors/{}/status",
                sluice_sdk::registry::encode_path(name)
            );
            let raw = get(&http, base, &path).await?;
            let status: ConnectorStatus = serde_json::from_value(raw.clone())
                .with_context(|| format!("{base}{path} did not answer a connector status"))?;
            (raw, vec![status])
        }
        None => {
            let raw = get(&http, base, "/connectors?expand=status").await?;
            let expanded: BTreeMap<String, Expanded> = serde_json::from_value(raw.clone())
                .with_context(|| {
                    format!("{base}/connectors?expand=status did not answer statuses")
                })?;
            (raw, expanded.into_values().map(|e| e.status).collect())
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        print!("{}", table(&statuses));
    }
    let failed = statuses.iter().any(|s| {
        s.connector.state == "FAILED" || s.tasks.iter().any(|t| t.state.state == "FAILED")
    });
    if args.check && failed {
        bail!("a connector or task has FAILED");
    }
    Ok(())
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let url = format!("{base}{path}");
    let response = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .with_context(|| format!("cannot reach the Connect REST API at {base}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("{url} answered {status} without JSON"))?;
    if !status.is_success() {
        let message = body["message"].as_str().unwrap_or("no message");
        bail!("{url} answered {status}: {message}");
    }
    Ok(body)
}

/// One line per connector and one per task; a failure's first trace line under it.
fn table(statuses: &[ConnectorStatus]) -> String {
    let mut rows = vec![[
        "CONNECTOR".to_owned(),
        "TYPE".to_owned(),
        "STATE".to_owned(),
        "WORKER".to_owned(),
    ]];
    let mut traces = BTreeMap::new();
    for s in statuses {
        rows.push([
            s.name.clone(),
            s.kind.clone(),
            s.connector.state.clone(),
            s.connector.worker_id.clone(),
        ]);
        if let Some(trace) = &s.connector.trace {
            traces.insert(rows.len() - 1, trace.clone());
        }
        for t in &s.tasks {
            rows.push([
                format!("  task {}", t.id),
                String::new(),
                t.state.state.clone(),
                t.state.worker_id.clone(),
            ]);
            if let Some(trace) = &t.state.trace {
                traces.insert(rows.len() - 1, trace.clone());
            }
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if let Some(trace) = traces.get(&i) {
            out.push_str(&format!("    {}\n", trace.lines().next().unwrap_or("")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_connectors_tasks_and_failures() {
        let statuses: BTreeMap<String, Expanded> = serde_json::from_str(
            r#"{"pg": {"status": {"name": "pg", "type": "source",
                  "connector": {"state": "RUNNING", "worker_id": "w1:8083"},
                  "tasks": [{"id": 0, "state": "FAILED", "worker_id": "w2:8083",
                             "trace": "TRANSFORMATION failed\nat line 2"}]}}}"#,
        )
        .unwrap();
        let statuses: Vec<_> = statuses.into_values().map(|e| e.status).collect();
        assert_eq!(
            table(&statuses),
            "CONNECTOR  TYPE    STATE    WORKER\n\
             pg         source  RUNNING  w1:8083\n  \
             task 0           FAILED   w2:8083\n    \
             TRANSFORMATION failed\n"
        );
    }
}
