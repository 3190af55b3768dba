//! Works through the goals in priority order: each goal improves the assignment with actions
//! that every higher-priority goal accepts; a hard goal still violated afterwards fails the
//! optimization, naming the brokers and why.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::goals::{Goal, GoalKind, GoalSettings, Violation};
use crate::model::ClusterModel;
use crate::proposal::Proposal;
use crate::state::State;

/// Why no proposal could be made.
#[derive(Debug, thiserror::Error)]
pub enum OptimizationError {
    /// A hard goal cannot be met.
    #[error("hard goal {goal:?} cannot be satisfied: {}", describe(.violations))]
    HardGoal {
        /// The goal.
        goal: GoalKind,
        /// What keeps it from being met.
        violations: Vec<Violation>,
    },
    /// The model is invalid.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.reason.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How one goal fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalOutcome {
    /// The goal.
    pub goal: GoalKind,
    /// Hard or soft.
    pub hard: bool,
    /// Its score before (0: satisfied; larger is worse).
    pub before: f64,
    /// Right after it was optimized.
    pub after_own_turn: f64,
    /// At the end, after every lower-priority goal.
    pub after: f64,
    /// Time spent optimizing it.
    pub millis: u64,
}

/// Optimizes `model` for `goals` (highest priority first).
pub fn optimize(
    model: &ClusterModel,
    goals: &[GoalKind],
    settings: &GoalSettings,
) -> Result<Proposal, OptimizationError> {
    model.validate()?;
    let started = Instant::now();
    let mut state = State::new(model);
    // Removing a broker is a hard requirement whatever the goals: the replica capacity goal
    // (which gives a removed broker a limit of 0) goes first if it was left out.
    let mut goals = goals.to_vec();
    if model.brokers.iter().any(|b| b.excluded) && !goals.contains(&GoalKind::ReplicaCapacityGoal) {
        goals.insert(0, GoalKind::ReplicaCapacityGoal);
    }
    let prepared: Vec<Goal> = goals
        .iter()
        .map(|&g| Goal::prepare(g, &state, settings))
        .collect();
    let before: Vec<f64> = prepared.iter().map(|g| g.score(&state)).collect();
    let mut outcomes = Vec::with_capacity(prepared.len());
    for (i, goal) in prepared.iter().enumerate() {
        let t = Instant::now();
        goal.optimize(&mut state, &prepared[..i]);
        let score = goal.score(&state);
        tracing::debug!(goal = ?goal.kind(), before = before[i], after = score, millis = t.elapsed().as_millis() as u64, "goal optimized");
        if goal.kind().is_hard() && score > 0.0 {
            return Err(OptimizationError::HardGoal {
                goal: goal.kind(),
                violations: goal.violations(&state),
            });
        }
        outcomes.push(GoalOutcome {
            goal: goal.kind(),
            hard: goal.kind().is_hard(),
            before: before[i],
            after_own_turn: score,
            after: score,
            millis: duration_ms(t.elapsed()),
        });
    }
    for (outcome, goal) in outcomes.iter_mut().zip(&prepared) {
        outcome.after = goal.score(&state);
    }
    Ok(Proposal::new(
        model,
        &state,
        outcomes,
        duration_ms(started.elapsed()),
    ))
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
