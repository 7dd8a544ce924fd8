//! A directed acyclic graph of nodes keyed by address; nothing here knows what the nodes are.
//!
//! An edge `a → b` means "b depends on a": a is created before b, and deleted after it.

use petgraph::Direction;
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::BTreeMap;
use std::fmt::{self, Display, Write};

/// A node's identity in the graph.
pub trait Keyed {
    type Key: Ord + Clone + Display;
    fn key(&self) -> Self::Key;
}

#[derive(Debug, Clone)]
pub struct Graph<N: Keyed> {
    graph: DiGraph<N, ()>,
    index: BTreeMap<N::Key, NodeIndex>,
    /// The edges, to add each once in constant time (petgraph's `update_edge` looks through the
    /// source's edges: quadratic for a node every relay depends on, such as a shared role).
    edges: std::collections::HashSet<(NodeIndex, NodeIndex)>,
}

/// The graph has a cycle through these nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dependency cycle: {}", self.0.join(" → "))
    }
}

impl std::error::Error for Cycle {}

impl<N: Keyed> Default for Graph<N> {
    fn default() -> Self {
        Graph {
            graph: DiGraph::new(),
            index: BTreeMap::new(),
            edges: std::collections::HashSet::new(),
        }
    }
}

impl<N: Keyed> Graph<N> {
    /// Adds a node, or returns the one already there under the same key (shared nodes are added once).
    pub fn add(&mut self, node: N) -> NodeIndex {
        let key = node.key();
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.graph.add_node(node);
        self.index.insert(key, i);
        i
    }

    /// `to` depends on `from`.
    pub fn depend(&mut self, from: NodeIndex, to: NodeIndex) {
        if self.edges.insert((from, to)) {
            self.graph.add_edge(from, to, ());
        }
    }

    pub fn get(&self, key: &N::Key) -> Option<&N> {
        self.index.get(key).map(|&i| &self.graph[i])
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The nodes in key order.
    pub fn nodes(&self) -> impl Iterator<Item = &N> {
        self.index.values().map(|&i| &self.graph[i])
    }

    /// Direct dependencies of the node with `key`, in key order.
    pub fn dependencies(&self, key: &N::Key) -> Vec<&N> {
        self.neighbours(key, Direction::Incoming)
    }

    /// Direct dependants of the node with `key`, in key order.
    pub fn dependants(&self, key: &N::Key) -> Vec<&N> {
        self.neighbours(key, Direction::Outgoing)
    }

    fn neighbours(&self, key: &N::Key, dir: Direction) -> Vec<&N> {
        let Some(&i) = self.index.get(key) else {
            return Vec::new();
        };
        let mut v: Vec<&N> = self
            .graph
            .neighbors_directed(i, dir)
            .map(|j| &self.graph[j])
            .collect();
        v.sort_by_key(|n| n.key());
        v
    }

    /// Every node before the nodes that depend on it; among independent nodes, key order, so the
    /// order is deterministic.
    pub fn order(&self) -> Result<Vec<&N>, Cycle> {
        // Deterministic Kahn's algorithm over key order; petgraph finds the cycle when there is one.
        let mut indegree: BTreeMap<N::Key, usize> = BTreeMap::new();
        for (key, &i) in &self.index {
            indegree.insert(
                key.clone(),
                self.graph
                    .neighbors_directed(i, Direction::Incoming)
                    .count(),
            );
        }
        let mut ready: std::collections::BTreeSet<N::Key> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(self.len());
        while let Some(key) = ready.pop_first() {
            let i = self.index[&key];
            out.push(&self.graph[i]);
            for j in self.graph.neighbors_directed(i, Direction::Outgoing) {
                let k = self.graph[j].key();
                let d = indegree.get_mut(&k).expect("indexed");
                *d -= 1;
                if *d == 0 {
                    ready.insert(k);
                }
            }
        }
        if out.len() == self.len() {
            return Ok(out);
        }
        Err(self.cycle())
    }

    fn cycle(&self) -> Cycle {
        let start = match toposort(&self.graph, None) {
            Err(c) => c.node_id(),
            Ok(_) => return Cycle(Vec::new()),
        };
        // Walk from the node petgraph names until a node repeats.
        let mut path = vec![start];
        let mut at = start;
        loop {
            let next = self
                .graph
                .neighbors_directed(at, Direction::Outgoing)
                .find(|&n| petgraph::algo::has_path_connecting(&self.graph, n, start, None))
                .expect("a node on a cycle has a successor on it");
            if next == start {
                path.push(start);
                break;
            }
            path.push(next);
            at = next;
        }
        Cycle(
            path.into_iter()
                .map(|i| self.graph[i].key().to_string())
                .collect(),
        )
    }

    /// The keys of the nodes named, and of everything they depend on, transitively.
    pub fn with_dependencies(&self, keys: &[N::Key]) -> Vec<N::Key> {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<NodeIndex> = keys
            .iter()
            .filter_map(|k| self.index.get(k).copied())
            .collect();
        while let Some(i) = stack.pop() {
            if seen.insert(self.graph[i].key()) {
                stack.extend(self.graph.neighbors_directed(i, Direction::Incoming));
            }
        }
        seen.into_iter().collect()
    }

    /// Graphviz DOT, nodes and edges in key order. Labels may span lines (`\n`).
    pub fn to_dot(&self, label: impl Fn(&N) -> String) -> String {
        let mut s = String::from(
            "digraph relayform {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for n in self.nodes() {
            let _ = writeln!(
                s,
                "  \"{}\" [label=\"{}\"];",
                escape(&n.key().to_string()),
                escape(&label(n))
            );
        }
        for (from, to) in self.edges() {
            let _ = writeln!(s, "  \"{}\" -> \"{}\";", escape(&from), escape(&to));
        }
        s.push_str("}\n");
        s
    }

    /// A Mermaid flowchart, nodes and edges in key order.
    pub fn to_mermaid(&self, label: impl Fn(&N) -> String) -> String {
        let ids: BTreeMap<String, String> = self
            .nodes()
            .enumerate()
            .map(|(i, n)| (n.key().to_string(), format!("n{i}")))
            .collect();
        let mut s = String::from("flowchart LR\n");
        for n in self.nodes() {
            let key = n.key().to_string();
            let _ = writeln!(
                s,
                "  {}[\"{}\"]",
                ids[&key],
                label(n).replace('"', "#quot;").replace('\n', "<br/>")
            );
        }
        for (from, to) in self.edges() {
            let _ = writeln!(s, "  {} --> {}", ids[&from], ids[&to]);
        }
        s
    }

    /// Edges in key order (the keys' own order, not their printed form), as printed keys.
    fn edges(&self) -> Vec<(String, String)> {
        let mut e: Vec<(N::Key, N::Key)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (self.graph[a].key(), self.graph[b].key()))
            .collect();
        e.sort();
        e.into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

/// A DOT string literal's content: backslashes and quotes escaped, line breaks as `\n`.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct N(&'static str);
    impl Keyed for N {
        type Key = String;
        fn key(&self) -> String {
            self.0.to_owned()
        }
    }

    fn graph(edges: &[(&'static str, &'static str)]) -> Graph<N> {
        let mut g = Graph::default();
        for (a, b) in edges {
            let (a, b) = (g.add(N(a)), g.add(N(b)));
            g.depend(a, b);
        }
        g
    }

    #[test]
    fn order_is_topological_and_deterministic() {
        let g = graph(&[("c", "d"), ("a", "d"), ("b", "c"), ("a", "b")]);
        let order: Vec<_> = g.order().unwrap().iter().map(|n| n.0).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }

    #[test]
    fn shared_nodes_are_added_once() {
        let mut g = graph(&[("a", "b")]);
        let a = g.add(N("a"));
        let c = g.add(N("c"));
        g.depend(a, c);
        assert_eq!(g.len(), 3);
        assert_eq!(g.dependants(&"a".into()).len(), 2);
    }

    #[test]
    fn cycles_are_named() {
        let g = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")]);
        let cycle = g.order().unwrap_err();
        assert_eq!(cycle.0.len(), 4, "{cycle}");
        assert_eq!(cycle.0.first(), cycle.0.last());
        for n in ["a", "b", "c"] {
            assert!(cycle.0.iter().any(|k| k == n), "{cycle}");
        }
        assert!(!cycle.0.iter().any(|k| k == "x"), "{cycle}");
    }

    #[test]
    fn dependency_closure() {
        let g = graph(&[("a", "b"), ("b", "c"), ("x", "c"), ("c", "d")]);
        assert_eq!(g.with_dependencies(&["b".into()]), ["a", "b"]);
        assert_eq!(g.with_dependencies(&["c".into()]), ["a", "b", "c", "x"]);
    }
}
