//! The difference between a platform file and what a cluster and registry hold, as an ordered
//! list of changes: the order `apply` executes them in.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sluice_acl::AclBinding;

use crate::live::{LiveSchemas, LiveTopic};
use crate::spec::{Ignore, SchemasSpec, TopicSpec};

/// One change `apply` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Create a topic.
    CreateTopic {
        /// Its name.
        topic: String,
        /// Partitions (`None`: the broker's default).
        partitions: Option<i32>,
        /// Replication factor (`None`: the broker's default).
        replication_factor: Option<i16>,
        /// Overrides set at creation.
        configs: BTreeMap<String, String>,
    },
    /// Raise a topic's partition count.
    AddPartitions {
        /// The topic.
        topic: String,
        /// Partitions now.
        from: i32,
        /// Partitions after.
        to: i32,
    },
    /// Set a topic override.
    SetTopicConfig {
        /// The topic.
        topic: String,
        /// The config.
        key: String,
        /// Its override now, if any.
        from: Option<String>,
        /// The value to set.
        to: String,
    },
    /// Remove a topic override, so the broker's default applies.
    ResetTopicConfig {
        /// The topic.
        topic: String,
        /// The config.
        key: String,
        /// Its override now.
        from: String,
    },
    /// Set the registry's global level (`subject` `None`) or a subject's own level.
    SetCompatibility {
        /// The subject, or `None` for the global level.
        subject: Option<String>,
        /// The level now.
        from: Option<String>,
        /// The level after.
        to: String,
    },
    /// Remove a subject's own level, so it follows the global one.
    ClearCompatibility {
        /// The subject.
        subject: String,
        /// Its level now.
        from: String,
    },
    /// Register the declared schema as the subject's next version.
    RegisterSchema {
        /// The subject.
        subject: String,
        /// The schema file, as the platform file names it.
        file: String,
        /// True when the subject does not exist yet.
        new_subject: bool,
    },
    /// Remove an ACL binding.
    RemoveAcl {
        /// The binding.
        binding: AclBinding,
    },
    /// Add an ACL binding.
    AddAcl {
        /// The binding.
        binding: AclBinding,
    },
    /// Soft-delete a subject the file does not list (destructive).
    DeleteSubject {
        /// The subject.
        subject: String,
    },
    /// Delete a topic the file does not list, with its data (destructive).
    DeleteTopic {
        /// The topic.
        topic: String,
    },
}

impl Change {
    /// True for changes that lose data: `apply` makes them only with `--allow-delete`.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Change::DeleteTopic { .. } | Change::DeleteSubject { .. }
        )
    }

    /// `+` create, `~` change, `-` delete: the symbol plan output starts each line with.
    fn symbol(&self) -> char {
        match self {
            Change::CreateTopic { .. } | Change::AddAcl { .. } => '+',
            Change::RegisterSchema {
                new_subject: true, ..
            } => '+',
            Change::DeleteTopic { .. }
            | Change::DeleteSubject { .. }
            | Change::RemoveAcl { .. } => '-',
            _ => '~',
        }
    }
}

fn or_none(value: Option<&str>) -> &str {
    value.unwrap_or("(none)")
}

fn acl(f: &mut fmt::Formatter<'_>, b: &AclBinding) -> fmt::Result {
    write!(
        f,
        "{} {} {} on {} {}{} from {}",
        b.principal,
        b.permission,
        b.operation,
        b.resource_type,
        b.resource_name,
        if b.pattern_type == sluice_acl::PatternType::Prefixed {
            " (prefix)"
        } else {
            ""
        },
        b.host
    )
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.symbol())?;
        match self {
            Change::CreateTopic {
                topic,
                partitions,
                replication_factor,
                configs,
            } => {
                write!(f, "create topic {topic}")?;
                let default = || "broker default".to_owned();
                write!(
                    f,
                    " (partitions: {}, replication factor: {}",
                    partitions.map_or_else(default, |p| p.to_string()),
                    replication_factor.map_or_else(default, |r| r.to_string())
                )?;
                for (k, v) in configs {
                    write!(f, ", {k}={v}")?;
                }
                write!(f, ")")
            }
            Change::AddPartitions { topic, from, to } => {
                write!(f, "topic {topic}: partitions {from} -> {to}")
            }
            Change::SetTopicConfig {
                topic,
                key,
                from,
                to,
            } => write!(
                f,
                "topic {topic}: {key} {} -> {to}",
                or_none(from.as_deref())
            ),
            Change::ResetTopicConfig { topic, key, from } => {
                write!(f, "topic {topic}: {key} {from} -> (broker default)")
            }
            Change::SetCompatibility { subject, from, to } => write!(
                f,
                "{}: compatibility {} -> {to}",
                subject
                    .as_deref()
                    .map_or_else(|| "registry".to_owned(), |s| format!("subject {s}")),
                or_none(from.as_deref())
            ),
            Change::ClearCompatibility { subject, from } => {
                write!(f, "subject {subject}: compatibility {from} -> (global)")
            }
            Change::RegisterSchema {
                subject,
                file,
                new_subject,
            } => {
                if *new_subject {
                    write!(f, "create subject {subject} from {file}")
                } else {
                    write!(f, "subject {subject}: register a new version from {file}")
                }
            }
            Change::RemoveAcl { binding } => {
                write!(f, "remove ACL ")?;
                acl(f, binding)
            }
            Change::AddAcl { binding } => {
                write!(f, "add ACL ")?;
                acl(f, binding)
            }
            Change::DeleteSubject { subject } => write!(f, "delete subject {subject}"),
            Change::DeleteTopic { topic } => write!(f, "delete topic {topic} and its data"),
        }
    }
}

/// Something the file asks for that no change can bring about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// What it is about, e.g. `topic orders`.
    pub resource: String,
    /// Why, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "! {}: {}", self.resource, self.reason)
    }
}

/// Everything between a file and a cluster: changes in execution order and blockers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Changes, in the order `apply` makes them.
    pub changes: Vec<Change>,
    /// What cannot be changed; `apply` refuses to start while there is any.
    pub blockers: Vec<Blocker>,
}

impl Plan {
    /// True when the cluster matches the file.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.blockers.is_empty()
    }

    /// The changes that lose data.
    pub fn destructive(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.is_destructive())
    }

    /// Puts the changes in execution order: creations and raises, then levels before the
    /// schemas they judge, ACLs once their resources exist (additions first, so a binding
    /// replaced by another, say a literal by a prefix, never leaves a moment without access),
    /// deletions last. The sort is stable, so subjects keep
    /// their reference order.
    pub(crate) fn order(&mut self) {
        self.changes.sort_by_key(|c| match c {
            Change::CreateTopic { .. } => 0,
            Change::AddPartitions { .. } => 1,
            Change::SetTopicConfig { .. } | Change::ResetTopicConfig { .. } => 2,
            Change::SetCompatibility { subject: None, .. } => 3,
            Change::SetCompatibility { .. } | Change::ClearCompatibility { .. } => 4,
            Change::RegisterSchema { .. } => 5,
            Change::AddAcl { .. } => 6,
            Change::RemoveAcl { .. } => 7,
            Change::DeleteSubject { .. } => 8,
            Change::DeleteTopic { .. } => 9,
        });
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        for blocker in &self.blockers {
            writeln!(f, "{blocker}")?;
        }
        let count = |symbol| self.changes.iter().filter(|c| c.symbol() == symbol).count();
        write!(
            f,
            "Plan: {} to add, {} to change, {} to remove",
            count('+'),
            count('~'),
            count('-')
        )?;
        if !self.blockers.is_empty() {
            write!(f, "; {} cannot be applied", self.blockers.len())?;
        }
        Ok(())
    }
}

/// Compares declared topics with the cluster's. Unlisted topics are deleted unless ignored;
/// partitions can only grow; the replication factor is checked, not changed.
pub(crate) fn topics(
    desired: &BTreeMap<String, TopicSpec>,
    ignore: &Ignore,
    live: &BTreeMap<String, LiveTopic>,
    plan: &mut Plan,
) {
    for (name, spec) in desired {
        let Some(have) = live.get(name) else {
            plan.changes.push(Change::CreateTopic {
                topic: name.clone(),
                partitions: spec.partitions,
                replication_factor: spec.replication_factor,
                configs: spec.configs.clone(),
            });
            continue;
        };
        match spec.partitions {
            Some(want) if want > have.partitions => plan.changes.push(Change::AddPartitions {
                topic: name.clone(),
                from: have.partitions,
                to: want,
            }),
            Some(want) if want < have.partitions => plan.blockers.push(Blocker {
                resource: format!("topic {name}"),
                reason: format!(
                    "has {} partitions and Kafka cannot remove partitions; declare {} or more, or \
                     declare the data under a new topic name (a rename deletes this one)",
                    have.partitions, have.partitions
                ),
            }),
            _ => {}
        }
        if let Some(want) = spec.replication_factor {
            if want != have.replication_factor {
                plan.blockers.push(Blocker {
                    resource: format!("topic {name}"),
                    reason: format!(
                        "has replication factor {} and apply does not move replicas; declare {} \
                         or change it with a partition reassignment",
                        have.replication_factor, have.replication_factor
                    ),
                });
            }
        }
        for (key, value) in &spec.configs {
            if have.hidden.contains(key) {
                // A sensitive value cannot be read back, so it cannot be compared.
                plan.blockers.push(Blocker {
                    resource: format!("topic {name}"),
                    reason: format!(
                        "{key} is a sensitive config whose value the cluster does not reveal; \
                         platform files cannot manage it"
                    ),
                });
                continue;
            }
            let from = have.overrides.get(key);
            if from != Some(value) {
                plan.changes.push(Change::SetTopicConfig {
                    topic: name.clone(),
                    key: key.clone(),
                    from: from.cloned(),
                    to: value.clone(),
                });
            }
        }
        for (key, value) in &have.overrides {
            if !spec.configs.contains_key(key) {
                plan.changes.push(Change::ResetTopicConfig {
                    topic: name.clone(),
                    key: key.clone(),
                    from: value.clone(),
                });
            }
        }
    }
    for name in live.keys() {
        if !desired.contains_key(name) && !ignore.topic(name) {
            plan.changes.push(Change::DeleteTopic {
                topic: name.clone(),
            });
        }
    }
}

/// Compares declared subjects and levels with the registry's. Unlisted subjects are deleted
/// unless ignored; a schema the registry would refuse is a blocker.
pub(crate) fn schemas(desired: &SchemasSpec, ignore: &Ignore, live: &LiveSchemas, plan: &mut Plan) {
    if let Some(want) = &desired.compatibility {
        if live.global.as_ref() != Some(want) {
            plan.changes.push(Change::SetCompatibility {
                subject: None,
                from: live.global.clone(),
                to: want.clone(),
            });
        }
    }
    for name in desired.registration_order() {
        let spec = &desired.subjects[name];
        let Some(have) = live.declared.get(name) else {
            plan.changes.push(Change::RegisterSchema {
                subject: name.to_owned(),
                file: spec.file.clone(),
                new_subject: true,
            });
            if let Some(level) = &spec.compatibility {
                plan.changes.push(Change::SetCompatibility {
                    subject: Some(name.to_owned()),
                    from: None,
                    to: level.clone(),
                });
            }
            continue;
        };
        match (&spec.compatibility, &have.compatibility) {
            (Some(want), _) if have.compatibility.as_ref() != Some(want) => {
                plan.changes.push(Change::SetCompatibility {
                    subject: Some(name.to_owned()),
                    from: have.compatibility.clone(),
                    to: want.clone(),
                })
            }
            (None, Some(from)) => plan.changes.push(Change::ClearCompatibility {
                subject: name.to_owned(),
                from: from.clone(),
            }),
            _ => {}
        }
        if let Some(version) = have.registered {
            if have.latest.is_some_and(|latest| latest != version) {
                plan.blockers.push(Blocker {
                    resource: format!("subject {name}"),
                    reason: format!(
                        "{} is version {version}, not the latest ({}); registering it again \
                         adds no version, so declare the latest schema (or soft-delete the \
                         newer versions with the registry API)",
                        spec.file,
                        have.latest.unwrap_or_default()
                    ),
                });
            }
            continue;
        }
        // The registry judged the schema under the level in force now; a plan that changes
        // that level (the subject's own, or the global one it follows) may make it accept
        // the schema, so only an unchanged level makes a refusal certain.
        let effective =
            |own: &Option<String>, global: Option<&String>| own.clone().or(global.cloned());
        let level_changes = effective(
            &spec.compatibility,
            desired.compatibility.as_ref().or(live.global.as_ref()),
        ) != effective(&have.compatibility, live.global.as_ref());
        if !have.incompatibilities.is_empty() && !level_changes {
            plan.blockers.push(Blocker {
                resource: format!("subject {name}"),
                reason: format!(
                    "the registry would refuse {} as the next version: {}",
                    spec.file,
                    have.incompatibilities.join("; ")
                ),
            });
            continue;
        }
        plan.changes.push(Change::RegisterSchema {
            subject: name.to_owned(),
            file: spec.file.clone(),
            new_subject: false,
        });
    }
    for name in &live.subjects {
        if desired.subjects.contains_key(name) || ignore.subject(name) {
            continue;
        }
        // A registry refuses to delete what a schema still refers to.
        let referrer = desired
            .subjects
            .iter()
            .find(|(_, s)| s.references.iter().any(|r| &r.subject == name));
        match referrer {
            Some((referrer, _)) => plan.blockers.push(Blocker {
                resource: format!("subject {name}"),
                reason: format!(
                    "is not declared but subject {referrer} refers to it; declare it (or ignore it)"
                ),
            }),
            None => plan.changes.push(Change::DeleteSubject {
                subject: name.clone(),
            }),
        }
    }
}

/// The ACL part of a plan, from the acl.yml plan.
pub(crate) fn acls(acl_plan: sluice_kss::acl::Plan, plan: &mut Plan) {
    plan.changes.extend(
        acl_plan
            .add
            .into_iter()
            .map(|binding| Change::AddAcl { binding }),
    );
    plan.changes.extend(
        acl_plan
            .remove
            .into_iter()
            .map(|binding| Change::RemoveAcl { binding }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveSubject;
    use crate::spec::SubjectSpec;

    fn spec(partitions: Option<i32>, configs: &[(&str, &str)]) -> TopicSpec {
        TopicSpec {
            partitions,
            replication_factor: None,
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn live(partitions: i32, overrides: &[(&str, &str)]) -> LiveTopic {
        LiveTopic {
            partitions,
            replication_factor: 1,
            overrides: overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            hidden: Default::default(),
        }
    }

    #[test]
    fn topics_are_created_changed_and_deleted_in_order() {
        let desired = BTreeMap::from([
            ("new".to_owned(), spec(Some(3), &[("retention.ms", "1")])),
            (
                "grown".to_owned(),
                spec(Some(4), &[("cleanup.policy", "compact")]),
            ),
        ]);
        let have = BTreeMap::from([
            (
                "grown".to_owned(),
                live(2, &[("cleanup.policy", "delete"), ("segment.ms", "10")]),
            ),
            ("old".to_owned(), live(1, &[])),
            ("_schemas".to_owned(), live(1, &[])),
            ("tmp-1".to_owned(), live(1, &[])),
        ]);
        let ignore = Ignore {
            topics: vec!["tmp-*".into()],
            subjects: vec![],
        };
        let mut plan = Plan::default();
        topics(&desired, &ignore, &have, &mut plan);
        plan.order();
        let text = plan.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "+ create topic new (partitions: 3, replication factor: broker default, retention.ms=1)",
                "~ topic grown: partitions 2 -> 4",
                "~ topic grown: cleanup.policy delete -> compact",
                "~ topic grown: segment.ms 10 -> (broker default)",
                "- delete topic old and its data",
                "Plan: 1 to add, 3 to change, 1 to remove",
            ]
        );
        assert_eq!(plan.destructive().count(), 1);
    }

    #[test]
    fn shrinking_and_replication_changes_are_blockers() {
        let desired = BTreeMap::from([(
            "t".to_owned(),
            TopicSpec {
                partitions: Some(1),
                replication_factor: Some(3),
                configs: BTreeMap::new(),
            },
        )]);
        let have = BTreeMap::from([("t".to_owned(), live(2, &[]))]);
        let mut plan = Plan::default();
        topics(&desired, &Ignore::default(), &have, &mut plan);
        assert!(plan.changes.is_empty());
        assert_eq!(plan.blockers.len(), 2, "{plan}");
        assert!(plan.to_string().contains("2 cannot be applied"));
    }

    fn subject(compatibility: Option<&str>) -> SubjectSpec {
        SubjectSpec {
            file: "s.avsc".into(),
            schema_type: "AVRO".into(),
            schema: "\"string\"".into(),
            compatibility: compatibility.map(str::to_owned),
            references: vec![],
        }
    }

    #[test]
    fn subjects_follow_their_levels_and_refusals_block() {
        let desired = SchemasSpec {
            compatibility: Some("FULL".into()),
            subjects: BTreeMap::from([
                ("same".to_owned(), subject(None)),
                ("newer".to_owned(), subject(Some("NONE"))),
                ("refused".to_owned(), subject(Some("BACKWARD"))),
                ("old".to_owned(), subject(None)),
                (
                    "referrer".to_owned(),
                    SubjectSpec {
                        references: vec![sluice_sdk::registry::SchemaReference {
                            name: "dep.proto".into(),
                            subject: "dep".into(),
                            version: 1,
                        }],
                        ..subject(None)
                    },
                ),
                ("fresh".to_owned(), subject(Some("FORWARD"))),
            ]),
        };
        let live = LiveSchemas {
            global: Some("BACKWARD".into()),
            subjects: [
                "same", "newer", "refused", "old", "referrer", "dep", "gone", "keep-me",
            ]
            .map(str::to_owned)
            .to_vec(),
            declared: BTreeMap::from([
                (
                    "same".to_owned(),
                    LiveSubject {
                        compatibility: Some("FULL".into()),
                        registered: Some(1),
                        latest: Some(1),
                        incompatibilities: vec![],
                    },
                ),
                (
                    "newer".to_owned(),
                    LiveSubject {
                        compatibility: None,
                        registered: None,
                        latest: None,
                        incompatibilities: vec!["field removed".into()],
                    },
                ),
                (
                    "old".to_owned(),
                    LiveSubject {
                        compatibility: None,
                        registered: Some(1),
                        latest: Some(2),
                        incompatibilities: vec![],
                    },
                ),
                (
                    "referrer".to_owned(),
                    LiveSubject {
                        compatibility: None,
                        registered: Some(1),
                        latest: Some(1),
                        incompatibilities: vec![],
                    },
                ),
                (
                    "refused".to_owned(),
                    LiveSubject {
                        compatibility: Some("BACKWARD".into()),
                        registered: None,
                        latest: None,
                        incompatibilities: vec!["type changed".into()],
                    },
                ),
            ]),
        };
        let ignore = Ignore {
            topics: vec![],
            subjects: vec!["keep-*".into()],
        };
        let mut plan = Plan::default();
        schemas(&desired, &ignore, &live, &mut plan);
        plan.order();
        let lines: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "~ registry: compatibility BACKWARD -> FULL",
                "~ subject fresh: compatibility (none) -> FORWARD",
                "~ subject newer: compatibility (none) -> NONE",
                "~ subject same: compatibility FULL -> (global)",
                "+ create subject fresh from s.avsc",
                "~ subject newer: register a new version from s.avsc",
                "- delete subject gone",
            ]
        );
        let blockers: Vec<String> = plan.blockers.iter().map(ToString::to_string).collect();
        assert_eq!(blockers.len(), 3, "{blockers:?}");
        assert!(blockers[0].starts_with("! subject old: s.avsc is version 1, not the latest (2)"));
        assert!(blockers[1].contains("type changed"));
        assert!(blockers[2].starts_with("! subject dep: is not declared but subject referrer"));
    }
}
