//! Finding an acceptable action: the loop every goal's optimization shares.

use crate::goals::{all_accept, emptiest_dir, Goal};
use crate::state::{Action, State};

/// The first action of `candidates` that `wanted` (the optimizing goal's own test) and every
/// goal in `prior` accept. Candidates are produced lazily, so a long list costs only as far
/// as the first acceptable one.
pub(crate) fn find_first(
    state: &State<'_>,
    prior: &[Goal],
    candidates: impl IntoIterator<Item = Action>,
    mut wanted: impl FnMut(&State<'_>, &Action) -> bool,
) -> Option<Action> {
    let mut refused = 0;
    for action in candidates {
        if !wanted(state, &action) {
            continue;
        }
        if all_accept(prior, state, &action) {
            return Some(action);
        }
        refused += 1;
        if refused == MAX_REFUSED {
            return None;
        }
    }
    None
}

/// Most candidates the optimizing goal wants but a higher goal refuses before giving up on a
/// replica. Candidates come best first, so a replica refused this often is one the higher goals
/// pin where it is; trying every broker would cost brokers × goals checks per stuck replica
/// (hours on the largest clusters) for rare gains.
const MAX_REFUSED: usize = 24;

/// Applies the first acceptable action of `candidates` (see [`find_first`]); returns whether
/// one was applied.
pub(crate) fn apply_first(
    state: &mut State<'_>,
    prior: &[Goal],
    candidates: impl IntoIterator<Item = Action>,
    wanted: impl FnMut(&State<'_>, &Action) -> bool,
) -> bool {
    match find_first(state, prior, candidates, wanted) {
        Some(action) => {
            state.apply(&action);
            true
        }
        None => false,
    }
}

/// Moves of partition `p`'s replica on `from` to each of `dests`, in order, each into the
/// destination's emptiest log directory.
pub(crate) fn moves_to<'a>(
    state: &'a State<'_>,
    p: u32,
    from: u32,
    dests: &'a [u32],
) -> impl Iterator<Item = Action> + 'a {
    dests
        .iter()
        .filter(move |&&to| to != from && state.slot_of(p, to).is_none())
        .map(move |&to| Action::Move {
            partition: p,
            from,
            to,
            to_dir: emptiest_dir(state, to),
        })
}

/// Leadership moves of partition `p` (led by `from`) to each of its followers, in `rank`
/// order (lowest first).
pub(crate) fn leads_from(
    state: &State<'_>,
    p: u32,
    mut rank: impl FnMut(u32) -> f64,
) -> Vec<Action> {
    let mut followers: Vec<u32> = state.replicas(p).iter().skip(1).map(|r| r.broker).collect();
    followers.sort_by(|&a, &b| rank(a).total_cmp(&rank(b)).then(a.cmp(&b)));
    followers
        .into_iter()
        .map(|to| Action::Lead { partition: p, to })
        .collect()
}

/// Brokers that may receive replicas, sorted by `key` (lowest first, ties by index).
pub(crate) fn brokers_by(state: &State<'_>, mut key: impl FnMut(u32) -> f64) -> Vec<u32> {
    let mut brokers: Vec<(f64, u32)> = (0..state.model().brokers.len() as u32)
        .filter(|&b| !state.model().brokers[b as usize].excluded)
        .map(|b| (key(b), b))
        .collect();
    brokers.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    brokers.into_iter().map(|(_, b)| b).collect()
}

/// The partitions on broker `b`, sorted by `key` (lowest first, ties by index).
pub(crate) fn partitions_by(
    state: &State<'_>,
    b: u32,
    mut key: impl FnMut(u32) -> f64,
) -> Vec<u32> {
    let mut ps: Vec<(f64, u32)> = state.partitions_on(b).map(|p| (key(p), p)).collect();
    ps.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    ps.into_iter().map(|(_, p)| p).collect()
}

/// Brokers with a positive `excess`, largest first.
pub(crate) fn brokers_over(state: &State<'_>, mut excess: impl FnMut(u32) -> f64) -> Vec<u32> {
    let mut over: Vec<(f64, u32)> = (0..state.model().brokers.len() as u32)
        .map(|b| (excess(b), b))
        .filter(|(e, _)| *e > 0.0)
        .collect();
    over.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    over.into_iter().map(|(_, b)| b).collect()
}

/// Moves leadership of the partitions `from` leads to their followers (ranked by `rank`,
/// lowest first) until `done`: the cheap way to shed leader load, tried before replica moves.
pub(crate) fn shed_leadership(
    state: &mut State<'_>,
    prior: &[Goal],
    from: u32,
    rank: impl Fn(&State<'_>, u32) -> f64,
    mut wanted: impl FnMut(&State<'_>, &Action) -> bool,
    done: impl Fn(&State<'_>) -> bool,
) {
    let led: Vec<u32> = state
        .partitions_on(from)
        .filter(|&p| state.leader(p) == Some(from))
        .collect();
    for p in led {
        if done(state) {
            return;
        }
        let leads = leads_from(state, p, |f| rank(state, f));
        apply_first(state, prior, leads, &mut wanted);
    }
}

/// Moves the replicas of `candidates` (best first) off broker `from` until `done`, each to
/// the first destination in `rank`'s order (re-ranked after every move) that `wanted` and
/// every goal in `prior` accept.
pub(crate) fn shed_replicas(
    state: &mut State<'_>,
    prior: &[Goal],
    from: u32,
    candidates: &[u32],
    rank: impl Fn(&State<'_>) -> Vec<u32>,
    mut wanted: impl FnMut(&State<'_>, &Action) -> bool,
    done: impl Fn(&State<'_>) -> bool,
) {
    let mut dests = rank(state);
    for &p in candidates {
        if done(state) {
            return;
        }
        if state.slot_of(p, from).is_none() {
            continue;
        }
        if let Some(action) =
            find_first(state, prior, moves_to(state, p, from, &dests), &mut wanted)
        {
            state.apply(&action);
            dests = rank(state);
        }
    }
}

/// Smallest divisor, for loads that may be 0.
pub(crate) const EPS: f64 = 1e-9;

/// Tolerance of float comparisons with `x`: sums of many loads differ from each other by
/// rounding, relative to their size.
pub(crate) fn slack(x: f64) -> f64 {
    1e-9 * x.abs().max(1.0)
}
