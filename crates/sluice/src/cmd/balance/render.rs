//! Tables and bars for `sluice balance`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sluice_admin::{LogDirReplica, OngoingReassignment};
use sluice_balancer::baseline;
use sluice_balancer::execute::{ExecutionReport, Progress};
use sluice_balancer::model::generate::{generate, Spec};
use sluice_balancer::state::State;
use sluice_balancer::{ClusterModel, GoalKind, GoalSettings, Proposal};

const GB: f64 = 1e9;
const MB: f64 = 1e6;

/// The model in a few lines.
pub(super) fn model(model: &ClusterModel) -> String {
    let mut out = String::new();
    let replicas: usize = model.partitions.iter().map(|p| p.replicas.len()).sum();
    let _ = writeln!(
        out,
        "{} brokers, {} topics, {} partitions, {} replicas",
        model.brokers.len(),
        model.topics.len(),
        model.partitions.len(),
        replicas
    );
    out
}

/// A proposal: goals, cost, and per-broker load before → after.
pub(super) fn proposal(model: &ClusterModel, p: &Proposal) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>5} {:>12} {:>12}",
        "GOAL", "HARD", "BEFORE", "AFTER"
    );
    for g in &p.goals {
        let _ = writeln!(
            out,
            "{:<40} {:>5} {:>12.3} {:>12.3}",
            g.goal.name(),
            if g.hard { "yes" } else { "" },
            g.before,
            g.after
        );
    }
    let s = &p.summary;
    let _ = writeln!(
        out,
        "\n{} partitions change: {} replica moves ({:.2} GB), {} log-dir moves ({:.2} GB), {} leadership changes; computed in {} ms\n",
        s.partitions_changed,
        s.replica_moves,
        s.bytes_to_move / GB,
        s.intra_broker_moves,
        s.intra_broker_bytes / GB,
        s.leadership_changes,
        p.millis
    );
    let _ = writeln!(
        out,
        "{:>8} {:>17} {:>15} {:>21} {:>21} {:>13}",
        "BROKER", "REPLICAS", "LEADERS", "DISK GB", "IN MB/s", "CPU CORES"
    );
    for b in &p.brokers {
        let excluded = model.brokers.iter().any(|m| m.id == b.broker && m.excluded);
        let _ = writeln!(
            out,
            "{:>8} {:>7.0} → {:<7.0} {:>6.0} → {:<6.0} {:>9.1} → {:<9.1} {:>9.1} → {:<9.1} {:>5.1} → {:<5.1}{}",
            b.broker,
            b.before.replicas,
            b.after.replicas,
            b.before.leaders,
            b.after.leaders,
            b.before.disk / GB,
            b.after.disk / GB,
            b.before.network_in / MB,
            b.after.network_in / MB,
            b.before.cpu,
            b.after.cpu,
            if excluded { "  (removed)" } else { "" }
        );
    }
    out
}

/// `[#####.....] 12/40 phase`.
pub(super) fn progress_bar(p: &Progress) -> String {
    const WIDTH: usize = 30;
    let filled = (p.done * WIDTH)
        .checked_div(p.total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!(
        "[{}{}] {}/{} {:<45}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        p.done.min(p.total),
        p.total,
        p.phase
    )
}

/// What an execution did.
pub(super) fn report(r: &ExecutionReport, took: Duration) -> String {
    let mut out = format!(
        "{} in {:.1} s: {} partitions reassigned, {} log-dir moves, {} leaders elected\n",
        if r.stopped { "stopped" } else { "done" },
        took.as_secs_f64(),
        r.reassigned,
        r.dir_moves,
        r.leaders_elected
    );
    if !r.throttles.is_empty() {
        let outcome = if r.throttles_restored {
            "set and put back"
        } else {
            "set and NOT put back (see below)"
        };
        let _ = writeln!(out, "throttles {outcome}: {}", r.throttles.join(", "));
    }
    for f in &r.failed {
        let _ = writeln!(out, "failed: {f}");
    }
    out
}

/// Moves in progress.
pub(super) fn status(
    ongoing: &[OngoingReassignment],
    futures: &[(i32, String, LogDirReplica)],
) -> String {
    let mut out = String::new();
    if ongoing.is_empty() && futures.is_empty() {
        return "no moves in progress\n".to_owned();
    }
    for (t, p, replicas, adding, removing) in ongoing {
        let _ = writeln!(
            out,
            "reassigning {t}-{p}: replicas {replicas:?}, adding {adding:?}, removing {removing:?}"
        );
    }
    for (broker, dir, r) in futures {
        let _ = writeln!(
            out,
            "copying {}-{} on broker {broker} into {dir}: {:.1} MB copied, {} offsets behind",
            r.topic,
            r.partition,
            r.size as f64 / MB,
            r.offset_lag
        );
    }
    out
}

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid initial value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

/// Generates a cluster, proposes, and compares with the greedy baseline; JSON.
pub(super) fn bench(
    spec: Spec,
    goals: &[GoalKind],
    settings: &GoalSettings,
) -> anyhow::Result<String> {
    let t = Instant::now();
    let model = generate(spec);
    let generate_ms = t.elapsed().as_millis();
    let rss_model = peak_rss();
    let t = Instant::now();
    let proposal = sluice_balancer::optimize(&model, goals, settings)?;
    let propose_ms = t.elapsed().as_millis();
    let rss = peak_rss();
    let applied = proposal.apply_to(&model);
    let t = Instant::now();
    let (greedy, greedy_moves) = baseline::greedy(&model);
    let greedy_ms = t.elapsed().as_millis();
    let report = serde_json::json!({
        "brokers": spec.brokers,
        "partitions": spec.partitions,
        "replicas": spec.partitions as u64 * u64::from(spec.replication),
        "topics": spec.topics,
        "racks": spec.racks,
        "generate_ms": generate_ms,
        "propose_ms": propose_ms,
        "peak_rss_mb": rss / 1_000_000,
        "model_rss_mb": rss_model / 1_000_000,
        "summary": proposal.summary,
        "goals": proposal.goals,
        "balance_before": baseline::balance(&State::new(&model)),
        "balance_proposal": baseline::balance(&State::new(&applied)),
        "balance_greedy": baseline::balance(&greedy),
        "greedy_moves": greedy_moves,
        "greedy_ms": greedy_ms,
    });
    Ok(serde_json::to_string_pretty(&report)?)
}
