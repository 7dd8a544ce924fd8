//! The executor's scheduling alone (`relayform_exec::Schedule`): plans shaped like relayform's (per
//! org a named credential; per relay a channel, member, relay, association, forwarding, state and
//! fingerprint, a tenth of them replaced so that teardown and the build barrier are in play), run to
//! the end with every step succeeding, and again with one relay delete failing per org. Prints the
//! time per run and per step at 1,000, 10,000 and 100,000 steps: the time per step stays flat
//! (linear growth) where the scheduler it replaced compared every step with every other.
//!
//! `cargo bench -p relayform-benches --bench schedule`
#![allow(clippy::print_stdout, unreachable_pub)]

use relayform_exec::{Finish, Node, Phase, Schedule};
use std::time::Instant;

/// A plan of about `steps` steps over orgs of 100 relays; (nodes, index of each org's first relay
/// teardown, if any).
fn plan(steps: usize) -> (Vec<Node<usize>>, Vec<usize>) {
    // About 7.1 steps per relay: 7 build steps, and a teardown for one in ten.
    let relays = steps * 10 / 71;
    let orgs = relays.div_ceil(100).max(1);
    let mut nodes = Vec::new();
    let mut first_teardown = vec![usize::MAX; orgs];
    // Teardown first: every tenth relay is replaced (its relay deleted, then made again).
    let mut torn = vec![None; relays];
    for (r, slot) in torn.iter_mut().enumerate() {
        if r % 10 == 0 {
            let org = r % orgs;
            if first_teardown[org] == usize::MAX {
                first_teardown[org] = nodes.len();
            }
            *slot = Some(nodes.len());
            nodes.push(Node {
                needs: vec![],
                scope: org,
                phase: Phase::Teardown,
            });
        }
    }
    let mut credential = vec![None; orgs];
    for (r, torn) in torn.iter().enumerate() {
        let org = r % orgs;
        let nc = *credential[org].get_or_insert_with(|| {
            nodes.push(Node {
                needs: vec![],
                scope: org,
                phase: Phase::Build,
            });
            nodes.len() - 1
        });
        let mut add = |needs: Vec<usize>| {
            nodes.push(Node {
                needs,
                scope: org,
                phase: Phase::Build,
            });
            nodes.len() - 1
        };
        let channel = add(vec![]);
        let member = add(vec![channel]);
        let mut relay_needs = vec![nc, channel];
        relay_needs.extend(*torn);
        let relay = add(relay_needs);
        let association = add(vec![relay]);
        let forwarding = add(vec![association]);
        let state = add(vec![relay, forwarding]);
        add(vec![channel, member, relay, association, forwarding, state]);
    }
    let failing = first_teardown
        .into_iter()
        .filter(|i| *i != usize::MAX)
        .collect();
    (nodes, failing)
}

/// Runs the schedule to the end; returns (steps started, steps skipped).
fn run(nodes: Vec<Node<usize>>, failing: &[usize]) -> (usize, usize) {
    let mut s = Schedule::new(nodes).expect("in order");
    let (mut started, mut skipped) = (0, 0);
    while let Some(i) = s.next_ready() {
        started += 1;
        let how = if failing.binary_search(&i).is_ok() {
            Finish::NotSucceeded
        } else {
            Finish::Succeeded
        };
        skipped += s.finish(i, how).len();
    }
    (started, skipped)
}

fn main() {
    println!("relayform-exec scheduling (a dependency walk with a ready queue), best of 5 runs");
    println!(
        "{:>9} {:>12} {:>12} {:>14}",
        "steps", "all succeed", "per step", "with failures"
    );
    for target in [1_000, 10_000, 100_000] {
        let (nodes, failing) = plan(target);
        let n = nodes.len();
        let mut best = f64::MAX;
        let mut best_failing = f64::MAX;
        for _ in 0..5 {
            let copy = nodes.clone();
            let t = Instant::now();
            let (started, skipped) = run(copy, &[]);
            best = best.min(t.elapsed().as_secs_f64());
            assert_eq!((started, skipped), (n, 0));
            let copy = nodes.clone();
            let t = Instant::now();
            let (started, skipped) = run(copy, &failing);
            best_failing = best_failing.min(t.elapsed().as_secs_f64());
            assert_eq!(started + skipped, n, "every step ends");
            assert!(skipped > 0);
        }
        println!(
            "{n:>9} {:>10.2}ms {:>10.0}ns {:>12.2}ms",
            best * 1e3,
            best * 1e9 / n as f64,
            best_failing * 1e3
        );
    }
}
