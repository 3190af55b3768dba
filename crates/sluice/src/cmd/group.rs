//! `sluice group`: consumer groups, their lag, and offset resets, over the standard Kafka APIs
//! (ListGroups, DescribeGroups, OffsetFetch, ListOffsets, OffsetCommit), so it works against any
//! Kafka cluster.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::groups::GroupInfo;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{self, ClientArgs};

/// The `sluice group` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum GroupCommand {
    /// List consumer groups with their state and member count.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a group's members, assignments, committed offsets, end offsets and lag.
    Describe {
        #[command(flatten)]
        client: ClientArgs,
        /// Group id.
        group: String,
    },
    /// Move a group's committed offsets on a topic (only while the group has no members).
    ResetOffsets(ResetArgs),
}

/// Arguments of `sluice group reset-offsets`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResetArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Group id.
    group: String,
    /// Topic whose offsets to reset (all its partitions).
    #[arg(long)]
    topic: String,
    #[command(flatten)]
    target: ResetTarget,
    /// Apply the plan; without it the new offsets are only printed.
    #[arg(long)]
    execute: bool,
}

/// Where `reset-offsets` moves the offsets (exactly one).
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ResetTarget {
    /// The oldest offset still in each partition.
    #[arg(long)]
    to_earliest: bool,
    /// The end of each partition (skip everything unread).
    #[arg(long)]
    to_latest: bool,
    /// The first offset at or after this time: RFC 3339 (`2024-05-01T12:00:00Z`) or epoch ms.
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime_ms)]
    to_datetime: Option<i64>,
    /// This offset (clamped to each partition's range).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
}

/// Runs a `sluice group` subcommand.
pub(crate) async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { client } => list(&client),
        GroupCommand::Describe { client, group } => describe(&client, &group),
        GroupCommand::ResetOffsets(args) => reset(&args),
    }
}

/// A consumer that never subscribes: it only reads and writes the group's offsets.
fn offsets_client(client: &ClientArgs, group: &str) -> anyhow::Result<BaseConsumer> {
    client
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("could not create the Kafka client")
}

/// A group as ListGroups/DescribeGroups report it.
#[derive(Debug)]
struct GroupSummary {
    name: String,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<MemberSummary>,
}

/// A group member with its decoded assignment.
#[derive(Debug)]
struct MemberSummary {
    id: String,
    client_id: String,
    host: String,
    assignment: Vec<(String, Vec<i32>)>,
}

fn summarize(g: &GroupInfo) -> GroupSummary {
    GroupSummary {
        name: g.name().to_owned(),
        state: g.state().to_owned(),
        protocol_type: g.protocol_type().to_owned(),
        protocol: g.protocol().to_owned(),
        members: g
            .members()
            .iter()
            .map(|m| MemberSummary {
                id: m.id().to_owned(),
                client_id: m.client_id().to_owned(),
                host: m.client_host().to_owned(),
                assignment: decode_assignment(m.assignment().unwrap_or_default()),
            })
            .collect(),
    }
}

fn groups(
    consumer: &BaseConsumer,
    client: &ClientArgs,
    group: Option<&str>,
) -> anyhow::Result<Vec<GroupSummary>> {
    let list = tokio::task::block_in_place(|| consumer.fetch_group_list(group, client.timeout()))
        .with_context(|| {
        format!(
            "could not list consumer groups; {}",
            client.unreachable_hint()
        )
    })?;
    Ok(list.groups().iter().map(summarize).collect())
}

fn list(client: &ClientArgs) -> anyhow::Result<()> {
    let consumer = offsets_client(client, "sluice-cli")?;
    let mut all = groups(&consumer, client, None)?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    println!(
        "{:<40} {:<20} {:<14} MEMBERS",
        "GROUP", "STATE", "PROTOCOL-TYPE"
    );
    for g in &all {
        println!(
            "{:<40} {:<20} {:<14} {}",
            g.name,
            g.state,
            g.protocol_type,
            g.members.len()
        );
    }
    Ok(())
}

/// One partition's row in `describe`.
#[derive(Debug, Default)]
struct Row {
    committed: Option<i64>,
    end: Option<i64>,
    owner: Option<(String, String, String)>,
}

fn describe(client: &ClientArgs, group: &str) -> anyhow::Result<()> {
    let consumer = offsets_client(client, group)?;
    let Some(g) = groups(&consumer, client, Some(group))?
        .into_iter()
        .find(|g| g.name == group)
    else {
        bail!("group {group} was not found");
    };
    println!(
        "group {group}: state {}, protocol {} {}, {} member(s)",
        g.state,
        g.protocol_type,
        g.protocol,
        g.members.len()
    );
    let mut rows: BTreeMap<(String, i32), Row> = BTreeMap::new();
    for member in &g.members {
        let owner = (
            member.id.clone(),
            member.host.clone(),
            member.client_id.clone(),
        );
        for (topic, partitions) in &member.assignment {
            for p in partitions {
                rows.entry((topic.clone(), *p)).or_default().owner = Some(owner.clone());
            }
        }
    }
    // OffsetFetch for every partition of every topic: committed offsets exist for some of them.
    let metadata = kafka::fetch_metadata(consumer.client(), None, client)?;
    let mut tpl = TopicPartitionList::new();
    for topic in metadata.topics() {
        if topic.name().starts_with("__") {
            continue;
        }
        for p in topic.partitions() {
            tpl.add_partition(topic.name(), p.id());
        }
    }
    let committed =
        tokio::task::block_in_place(|| consumer.committed_offsets(tpl, client.timeout()))
            .with_context(|| format!("could not fetch the committed offsets of {group}"))?;
    for elem in committed.elements() {
        if let Offset::Offset(offset) = elem.offset() {
            rows.entry((elem.topic().to_owned(), elem.partition()))
                .or_default()
                .committed = Some(offset);
        }
    }
    for ((topic, partition), row) in rows.iter_mut() {
        let (_, high) = tokio::task::block_in_place(|| {
            consumer.fetch_watermarks(topic, *partition, client.timeout())
        })
        .with_context(|| format!("could not fetch the end offset of {topic}-{partition}"))?;
        row.end = Some(high);
    }
    println!(
        "{:<30} {:>9} {:>14} {:>14} {:>8}  {:<45} {:<16} CLIENT-ID",
        "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST"
    );
    let dash = || "-".to_owned();
    for ((topic, partition), row) in &rows {
        let lag = match (row.committed, row.end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => dash(),
        };
        let (id, host, client_id) = row
            .owner
            .clone()
            .unwrap_or_else(|| (dash(), dash(), dash()));
        println!(
            "{:<30} {:>9} {:>14} {:>14} {:>8}  {:<45} {:<16} {}",
            topic,
            partition,
            row.committed.map_or_else(dash, |c| c.to_string()),
            row.end.map_or_else(dash, |e| e.to_string()),
            lag,
            id,
            host,
            client_id
        );
    }
    Ok(())
}

fn reset(args: &ResetArgs) -> anyhow::Result<()> {
    let client = &args.client;
    let group = &args.group;
    let consumer = offsets_client(client, group)?;
    if let Some(g) = groups(&consumer, client, Some(group))?
        .into_iter()
        .find(|g| g.name == *group)
    {
        if !g.members.is_empty() {
            bail!(
                "group {group} has {} active member(s) (state {}); stop its consumers first — \
                 Kafka only lets an empty group's offsets be changed from outside",
                g.members.len(),
                g.state
            );
        }
    }
    let metadata = kafka::fetch_metadata(consumer.client(), Some(&args.topic), client)?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == args.topic) else {
        bail!("topic {} does not exist", args.topic);
    };
    if topic.error().is_some() || topic.partitions().is_empty() {
        bail!("topic {} does not exist", args.topic);
    }
    let mut plan = TopicPartitionList::new();
    let mut times = TopicPartitionList::new();
    let mut ranges = BTreeMap::new();
    for p in topic.partitions() {
        let range = tokio::task::block_in_place(|| {
            consumer.fetch_watermarks(&args.topic, p.id(), client.timeout())
        })
        .with_context(|| format!("could not fetch the offsets of {}-{}", args.topic, p.id()))?;
        ranges.insert(p.id(), range);
        if let Some(ts) = args.target.to_datetime {
            times.add_partition_offset(&args.topic, p.id(), Offset::Offset(ts))?;
        }
    }
    let by_time = if args.target.to_datetime.is_some() {
        Some(
            tokio::task::block_in_place(|| consumer.offsets_for_times(times, client.timeout()))
                .context("could not look up offsets by timestamp")?,
        )
    } else {
        None
    };
    for (&partition, &(low, high)) in &ranges {
        let target = if args.target.to_earliest {
            low
        } else if args.target.to_latest {
            high
        } else if let Some(n) = args.target.to_offset {
            n.clamp(low, high)
        } else {
            by_time
                .as_ref()
                .and_then(|t| t.find_partition(&args.topic, partition))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(high)
        };
        plan.add_partition_offset(&args.topic, partition, Offset::Offset(target))?;
    }
    println!("{:<30} {:>9} {:>12}", "TOPIC", "PARTITION", "NEW-OFFSET");
    for elem in plan.elements() {
        if let Offset::Offset(o) = elem.offset() {
            println!("{:<30} {:>9} {:>12}", elem.topic(), elem.partition(), o);
        }
    }
    if !args.execute {
        println!("dry run: nothing changed; add --execute to commit these offsets for {group}");
        return Ok(());
    }
    tokio::task::block_in_place(|| consumer.commit(&plan, CommitMode::Sync)).with_context(|| {
        format!(
            "the cluster refused the new offsets for {group}; if consumers joined the group meanwhile, \
             stop them and retry"
        )
    })?;
    println!("offsets of {group} on {} reset", args.topic);
    Ok(())
}

/// Decodes a consumer-protocol assignment (version, \[topic, \[partition\]\], user data) into
/// `(topic, partitions)` pairs; malformed bytes yield what could be read.
fn decode_assignment(mut buf: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if buf.len() < n {
            return None;
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Some(head)
    }
    fn i16_(buf: &mut &[u8]) -> Option<i16> {
        take(buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32_(buf: &mut &[u8]) -> Option<i32> {
        take(buf, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    let mut out = Vec::new();
    let parse = |buf: &mut &[u8], out: &mut Vec<(String, Vec<i32>)>| -> Option<()> {
        i16_(buf)?;
        let topics = i32_(buf)?;
        for _ in 0..topics.max(0) {
            let len = usize::try_from(i16_(buf)?).ok()?;
            let topic = String::from_utf8_lossy(take(buf, len)?).into_owned();
            let count = i32_(buf)?;
            let mut partitions = Vec::new();
            for _ in 0..count.max(0) {
                partitions.push(i32_(buf)?);
            }
            out.push((topic, partitions));
        }
        Some(())
    };
    let _ = parse(&mut buf, &mut out);
    out
}

/// Parses `--to-datetime`: epoch milliseconds, or RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let err =
        || format!("expected epoch milliseconds or RFC 3339 like 2024-05-01T12:00:00Z, got {s:?}");
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|v| v.parse::<i64>().ok()).ok_or_else(err);
    let sep = |i: usize, c: u8| {
        (s.as_bytes().get(i) == Some(&c))
            .then_some(())
            .ok_or_else(err)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    sep(4, b'-')?;
    sep(7, b'-')?;
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return Err(err());
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(13, b':')?;
    sep(16, b':')?;
    let mut rest = s.get(19..).ok_or_else(err)?;
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse::<i64>().map_err(|_| err())?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes().first(), Some(b'+' | b'-'))
            && rest.as_bytes().get(3) == Some(&b':') =>
        {
            let h: i64 = rest
                .get(1..3)
                .and_then(|v| v.parse().ok())
                .ok_or_else(err)?;
            let m: i64 = rest
                .get(4..6)
                .and_then(|v| v.parse().ok())
                .ok_or_else(err)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return Err(err()),
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err());
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Ok(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_to_epoch_millis() {
        assert_eq!(parse_datetime_ms("0"), Ok(0));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_datetime_ms("2024-05-01T12:00:00Z"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            parse_datetime_ms("2024-05-01T14:00:00.5+02:00"),
            Ok(1_714_564_800_500)
        );
        assert_eq!(
            parse_datetime_ms("2000-02-29T00:00:00Z"),
            Ok(951_782_400_000)
        );
        assert!(parse_datetime_ms("2024-13-01T00:00:00Z").is_err());
        assert!(parse_datetime_ms("yesterday").is_err());
        assert!(parse_datetime_ms("2024-05-01").is_err());
        assert!(parse_datetime_ms("2024-05-01T00:00:00+é:00").is_err());
    }

    #[test]
    fn assignments_decode_from_the_consumer_protocol() {
        let mut buf = vec![
            0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7,
        ];
        buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_assignment(&buf), vec![("t".to_owned(), vec![3, 7])]);
        assert!(decode_assignment(&[]).is_empty());
        // Truncated inside the partition list: the complete part is not reported.
        assert!(decode_assignment(&buf[..15]).is_empty());
    }
}
