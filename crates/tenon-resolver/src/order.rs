//! Load order: dependencies before dependents, ties broken by id, cycles
//! named.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Orders `count` nodes, numbered in id order, so that every node comes
/// after the nodes it needs (`needs` holds `(dependent, dependency)` pairs);
/// among the nodes ready at one time the lowest number goes first.
///
/// On a cycle, returns one cycle as a path that starts and ends at its
/// lowest-numbered node, following "needs" edges: `[a, b, c, a]` reads
/// "a needs b, b needs c, c needs a". The cycle chosen is the shortest one
/// through the lowest-numbered node of the first strongly connected
/// component that has a cycle.
pub(crate) fn load_order(count: usize, needs: &[(usize, usize)]) -> Result<Vec<usize>, Vec<usize>> {
    let mut graph = DiGraph::<(), ()>::with_capacity(count, needs.len());
    for _ in 0..count {
        graph.add_node(());
    }
    for &(dependent, dependency) in needs {
        graph.update_edge(NodeIndex::new(dependent), NodeIndex::new(dependency), ());
    }

    let mut waiting: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Outgoing).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
        .filter(|&n| waiting[n] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n);
        for dependent in graph.neighbors_directed(NodeIndex::new(n), Incoming) {
            let w = &mut waiting[dependent.index()];
            *w -= 1;
            if *w == 0 {
                ready.push(Reverse(dependent.index()));
            }
        }
    }
    if order.len() == count {
        Ok(order)
    } else {
        Err(find_cycle(&graph))
    }
}

fn find_cycle(graph: &DiGraph<(), ()>) -> Vec<usize> {
    let cyclic = tarjan_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0]))
        .min_by_key(|scc| scc.iter().map(|n| n.index()).min());
    let Some(scc) = cyclic else {
        return Vec::new();
    };
    let start = scc.iter().copied().min().unwrap_or_default();
    let in_scc = |n: NodeIndex| scc.contains(&n);
    // Breadth-first from `start` back to itself, neighbours in id order.
    let mut parent = vec![None; graph.node_count()];
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = graph.neighbors_directed(node, Outgoing).collect();
        next.sort_unstable();
        for n in next {
            if n == start {
                let mut path = vec![start.index()];
                let mut at = node;
                while at != start {
                    path.push(at.index());
                    at = parent[at.index()].unwrap_or(start);
                }
                path.push(start.index());
                path.reverse();
                return path;
            }
            if in_scc(n) && parent[n.index()].is_none() {
                parent[n.index()] = Some(node);
                queue.push_back(n);
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(count: usize, needs: &[(usize, usize)], expected: Result<Vec<usize>, Vec<usize>>) {
        assert_eq!(load_order(count, needs), expected, "needs {needs:?}");
    }

    #[test]
    fn orders_and_cycles() {
        check(0, &[], Ok(vec![]));
        check(3, &[], Ok(vec![0, 1, 2]));
        check(3, &[(0, 1), (1, 2)], Ok(vec![2, 1, 0]));
        // Diamond: 0 needs 1 and 2, both need 3.
        check(4, &[(0, 1), (0, 2), (1, 3), (2, 3)], Ok(vec![3, 1, 2, 0]));
        // Ties by number once ready.
        check(4, &[(3, 0), (1, 2)], Ok(vec![0, 2, 1, 3]));
        check(3, &[(0, 1), (1, 2), (2, 0)], Err(vec![0, 1, 2, 0]));
        check(3, &[(1, 1)], Err(vec![1, 1]));
        check(4, &[(3, 2), (2, 3), (0, 1)], Err(vec![2, 3, 2]));
        // Shortest cycle through the lowest node.
        check(
            4,
            &[(0, 1), (1, 2), (2, 3), (3, 0), (1, 0)],
            Err(vec![0, 1, 0]),
        );
    }
}
