//! The difference between what `acl.yml` asks for and what the cluster has.

use std::collections::BTreeSet;

use serde::Serialize;
use sluice_acl::AclBinding;

/// Bindings to add and to remove to converge a cluster to a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// In the file, missing from the cluster.
    pub add: Vec<AclBinding>,
    /// On the cluster for a managed principal (or any, when pruning), not in the file.
    pub remove: Vec<AclBinding>,
}

impl Plan {
    /// Compares `desired` with `current`. Only bindings of `managed` principals are removed,
    /// unless `prune_unmanaged`.
    pub fn new(
        desired: &BTreeSet<AclBinding>,
        managed: &BTreeSet<String>,
        current: &[AclBinding],
        prune_unmanaged: bool,
    ) -> Plan {
        let current: BTreeSet<&AclBinding> = current.iter().collect();
        Plan {
            add: desired
                .iter()
                .filter(|b| !current.contains(b))
                .cloned()
                .collect(),
            remove: current
                .into_iter()
                .filter(|b| !desired.contains(*b))
                .filter(|b| prune_unmanaged || managed.contains(&b.principal))
                .cloned()
                .collect(),
        }
    }

    /// True when the cluster already matches.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sluice_acl::{Operation, PatternType, Permission, ResourceType};

    fn b(principal: &str, topic: &str, op: Operation) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn only_managed_principals_are_pruned_unless_asked() {
        let desired: BTreeSet<_> = [b("User:a", "t", Operation::Write)].into();
        let managed: BTreeSet<String> = ["User:a".to_owned()].into();
        let current = vec![
            b("User:a", "t", Operation::Read),
            b("User:other", "t", Operation::Read),
        ];
        let plan = Plan::new(&desired, &managed, &current, false);
        assert_eq!(plan.add, vec![b("User:a", "t", Operation::Write)]);
        assert_eq!(plan.remove, vec![b("User:a", "t", Operation::Read)]);
        let pruning = Plan::new(&desired, &managed, &current, true);
        assert_eq!(pruning.remove.len(), 2);
    }

    proptest! {
        #[test]
        fn applying_a_plan_converges(
            want in proptest::collection::btree_set((0..3u8, 0..3u8), 0..6),
            have in proptest::collection::vec((0..4u8, 0..3u8), 0..8),
        ) {
            let mk = |(p, t): (u8, u8)| b(&format!("User:{p}"), &format!("t{t}"), Operation::Read);
            let desired: BTreeSet<_> = want.into_iter().map(mk).collect();
            let managed: BTreeSet<String> = (0..3).map(|p| format!("User:{p}")).collect();
            let current: Vec<_> = have.into_iter().map(mk).collect();
            let plan = Plan::new(&desired, &managed, &current, false);
            let mut after: BTreeSet<_> = current.iter().cloned().collect();
            for r in &plan.remove { after.remove(r); }
            after.extend(plan.add.iter().cloned());
            prop_assert!(desired.iter().all(|d| after.contains(d)));
            prop_assert!(after.iter().all(|a| desired.contains(a) || !managed.contains(&a.principal)));
            let again = Plan::new(&desired, &managed, &after.into_iter().collect::<Vec<_>>(), false);
            prop_assert!(again.is_empty(), "apply is idempotent");
        }
    }
}
