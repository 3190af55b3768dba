//! Moving a log while it takes appends: nothing lost, nothing duplicated, and the moved log
//! is the same log after a restart.

use std::path::{Path, PathBuf};

use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::batch::test_util::batch_with;
use crate::{LogConfig, LogCopy, LogError, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        retention_ms: 1_000,
        ..LogConfig::default()
    }
}

fn append(log: &mut PartitionLog, i: i64) {
    let value = format!("value-{i}").into_bytes();
    let batch = batch_with(
        &[(None, Some(value), 1_000 + i)],
        -1,
        -1,
        -1,
        Compression::None,
    );
    log.append(batch, 5_000).expect("append");
}

/// Every (offset, value) the log holds from its start.
fn contents(log: &PartitionLog) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let mut bytes = log
            .read(offset, 1 << 20)
            .expect("plan")
            .read()
            .expect("read");
        let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decode");
        for r in sets.into_iter().flat_map(|s| s.records) {
            if r.offset >= offset {
                out.push((r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()));
            }
        }
        offset = out.last().map_or(offset, |(o, _)| o + 1);
    }
    out
}

fn rename_to(fin: PathBuf) -> impl FnOnce(&Path, &Path) -> Result<PathBuf, LogError> {
    move |copy, _current| {
        std::fs::rename(copy, &fin).map_err(|e| LogError::io(copy, e))?;
        Ok(fin)
    }
}

#[test]
fn a_log_moved_while_appending_keeps_every_record_and_survives_reopen() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, future, moved) = (
        root.path().join("a/t-0"),
        root.path().join("b/t-0.future"),
        root.path().join("b/t-0"),
    );
    std::fs::create_dir_all(root.path().join("b")).expect("mkdir");
    let mut log = PartitionLog::open(&source, config()).expect("open");
    let mut next = 0;
    for _ in 0..300 {
        append(&mut log, next);
        next += 1;
    }
    log.set_relocating(true);
    let mut copy = LogCopy::start(&source, &future).expect("start");
    let mut rounds = 0;
    loop {
        let files = log.files();
        // Small steps, with appends (and segment rolls) between them.
        let copied = copy.copy_some(&files, 3_000).expect("copy");
        if rounds < 40 {
            for _ in 0..7 {
                append(&mut log, next);
                next += 1;
            }
        }
        if rounds == 5 {
            // DeleteRecords removes copied segments under the copy.
            log.delete_records_before(120).expect("delete records");
        }
        if rounds == 20 {
            // So does retention (segments time out a virtual hour after their records).
            let removed = log.enforce_retention(3_600_000).expect("retention");
            assert!(removed > 0, "retention keeps running while the log moves");
        }
        rounds += 1;
        if copied == 0 && rounds > 40 {
            break;
        }
        assert!(rounds < 10_000, "the copy never catches up");
    }
    copy.sync().expect("sync");
    // The last appends are copied by the switch itself.
    append(&mut log, next);
    next += 1;
    let before = contents(&log);
    log.relocate(copy, rename_to(moved.clone()))
        .expect("relocate");
    assert_eq!(log.dir(), moved);
    assert!(!log.is_relocating());
    std::fs::remove_dir_all(&source).expect("old copy is the caller's to remove");
    assert_eq!(contents(&log), before);
    let start = log.log_start_offset();
    assert!(start > 120, "retention moved the log start");
    assert_eq!(before.first().map(|r| r.0), Some(start));
    for _ in 0..100 {
        append(&mut log, next);
        next += 1;
    }
    let sync = log.sync_handle().expect("unsynced appends");
    sync.sync().expect("fsync in the new directory");
    log.mark_synced(&sync);
    let all = contents(&log);
    assert_eq!(all.len() as i64, next - start);
    assert!(all
        .iter()
        .all(|(o, v)| *v == format!("value-{o}").into_bytes()));
    log.close().expect("close");
    assert!(!source.exists());
    let reopened = PartitionLog::open(&moved, config()).expect("reopen");
    assert_eq!(reopened.log_start_offset(), start);
    assert_eq!(contents(&reopened), all);
    // Retention works again after the move.
    let mut reopened = reopened;
    assert!(reopened.enforce_retention(i64::MAX / 2).expect("retention") > 0);
}

#[test]
fn a_failed_switch_leaves_the_log_where_it_was() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, future) = (root.path().join("t-0"), root.path().join("t-0.future"));
    let mut log = PartitionLog::open(&source, config()).expect("open");
    for i in 0..50 {
        append(&mut log, i);
    }
    log.set_relocating(true);
    let mut copy = LogCopy::start(&source, &future).expect("start");
    assert!(
        LogCopy::start(&source, &future).is_err(),
        "a leftover is never reused"
    );
    while copy.copy_some(&log.files(), 1 << 20).expect("copy") > 0 {}
    let before = contents(&log);
    let refused = log.relocate(copy, |copy, _| {
        Err(LogError::io(copy, std::io::Error::other("rename refused")))
    });
    assert!(refused.is_err());
    assert_eq!(log.dir(), source);
    append(&mut log, 50);
    assert_eq!(contents(&log).len(), before.len() + 1);
    log.close().expect("close");
    let reopened = PartitionLog::open(&source, config()).expect("reopen");
    assert_eq!(reopened.log_end_offset(), 51);
}
