//! Network paths between regions: dedicated lines (算力专线) registered by
//! line providers, and public segments whose latency comes from a
//! configurable table by how far apart two GB/T 2260 regions are.
//!
//! A path is the lowest-latency route over both; with a bandwidth floor,
//! segments narrower than the floor are left out first, so the answer is
//! the fastest path that can carry the demand, and its bottleneck is
//! reported.

use std::collections::HashMap;

/// Public-network latency by distance, one way, in milliseconds. The
/// defaults are the national targets: about 1 ms within a city, within
/// 5 ms within a province, within 20 ms between hub nodes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicLatency {
    pub same_city_ms: f64,
    pub same_province_ms: f64,
    pub national_ms: f64,
    /// What a public segment is assumed to carry.
    pub bandwidth_mbps: u64,
}

impl Default for PublicLatency {
    fn default() -> Self {
        Self {
            same_city_ms: 1.0,
            same_province_ms: 5.0,
            national_ms: 20.0,
            bandwidth_mbps: 1_000,
        }
    }
}

impl PublicLatency {
    /// Latency between two six-digit region codes over the public network.
    /// The four municipalities (11 Beijing, 12 Tianjin, 31 Shanghai, 50
    /// Chongqing) are each one city.
    pub fn between(&self, a: &str, b: &str) -> f64 {
        fn city(code: &str) -> Option<&str> {
            match code.get(..2)? {
                "11" | "12" | "31" | "50" => code.get(..2),
                _ => code.get(..4),
            }
        }
        if a == b || city(a) == city(b) {
            self.same_city_ms
        } else if a.get(..2) == b.get(..2) {
            self.same_province_ms
        } else {
            self.national_ms
        }
    }
}

/// A dedicated line, as selection sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LineEdge {
    pub line_id: String,
    pub provider: String,
    pub from_region: String,
    pub to_region: String,
    pub latency_ms: f64,
    pub bandwidth_mbps: u64,
    pub price_per_mbps_month: Option<String>,
}

/// One leg of a path.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub kind: SegmentKind,
    pub from_region: String,
    pub to_region: String,
    pub latency_ms: f64,
    pub bandwidth_mbps: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_id: Option<String>,
}

/// What carries a leg of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// A dedicated line (专线).
    Line,
    /// The public network, at the configured latency between regions.
    Public,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Path {
    pub latency_ms: f64,
    pub bottleneck_mbps: u64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Default)]
pub struct Network {
    pub public: PublicLatency,
    pub lines: Vec<LineEdge>,
}

impl Network {
    /// The lowest-latency path from `from` to `to` whose every segment
    /// carries at least `min_mbps`; `None` if there is none.
    pub fn path(&self, from: &str, to: &str, min_mbps: Option<u64>) -> Option<Path> {
        let floor = min_mbps.unwrap_or(0);
        // Nodes: the two ends and every line endpoint. Public segments join
        // any two nodes; lines join their endpoints both ways.
        let mut nodes: Vec<&str> = vec![from, to];
        for line in &self.lines {
            for end in [line.from_region.as_str(), line.to_region.as_str()] {
                if !nodes.contains(&end) {
                    nodes.push(end);
                }
            }
        }
        let n = nodes.len();
        let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        // Best edge between each pair: (latency, bandwidth, line).
        let mut edge: Vec<Option<(f64, u64, Option<usize>)>> = vec![None; n * n];
        let public_ok = self.public.bandwidth_mbps >= floor;
        for i in 0..n {
            for j in 0..n {
                if i != j && public_ok {
                    edge[i * n + j] = Some((
                        self.public.between(nodes[i], nodes[j]),
                        self.public.bandwidth_mbps,
                        None,
                    ));
                }
            }
        }
        for (k, line) in self.lines.iter().enumerate() {
            if line.bandwidth_mbps < floor {
                continue;
            }
            let (a, b) = (
                index[line.from_region.as_str()],
                index[line.to_region.as_str()],
            );
            if a == b {
                continue;
            }
            for (x, y) in [(a, b), (b, a)] {
                let better = edge[x * n + y].is_none_or(|(lat, _, _)| line.latency_ms < lat);
                if better {
                    edge[x * n + y] = Some((line.latency_ms, line.bandwidth_mbps, Some(k)));
                }
            }
        }
        if from == to {
            // Within one region: the local public network.
            return public_ok.then(|| Path {
                latency_ms: self.public.same_city_ms,
                bottleneck_mbps: self.public.bandwidth_mbps,
                segments: Vec::new(),
            });
        }
        // Dijkstra on a dense graph of a few dozen nodes.
        let mut dist = vec![f64::INFINITY; n];
        let mut prev = vec![usize::MAX; n];
        let mut done = vec![false; n];
        dist[0] = 0.0;
        for _ in 0..n {
            let Some(u) = (0..n)
                .filter(|&i| !done[i] && dist[i].is_finite())
                .min_by(|&a, &b| dist[a].total_cmp(&dist[b]))
            else {
                break;
            };
            done[u] = true;
            if u == 1 {
                break;
            }
            for v in 0..n {
                if let Some((lat, _, _)) = edge[u * n + v]
                    && dist[u] + lat < dist[v]
                {
                    dist[v] = dist[u] + lat;
                    prev[v] = u;
                }
            }
        }
        if !dist[1].is_finite() {
            return None;
        }
        let mut segments = Vec::new();
        let mut at = 1;
        while at != 0 {
            let from_node = prev[at];
            let (latency_ms, bandwidth_mbps, line) = edge[from_node * n + at]?;
            segments.push(Segment {
                kind: if line.is_some() {
                    SegmentKind::Line
                } else {
                    SegmentKind::Public
                },
                from_region: nodes[from_node].to_owned(),
                to_region: nodes[at].to_owned(),
                latency_ms,
                bandwidth_mbps,
                line_id: line.map(|k| self.lines[k].line_id.clone()),
            });
            at = from_node;
        }
        segments.reverse();
        Some(Path {
            latency_ms: dist[1],
            bottleneck_mbps: segments.iter().map(|s| s.bandwidth_mbps).min().unwrap_or(0),
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, from: &str, to: &str, ms: f64, mbps: u64) -> LineEdge {
        LineEdge {
            line_id: id.into(),
            provider: "P00009".into(),
            from_region: from.into(),
            to_region: to.into(),
            latency_ms: ms,
            bandwidth_mbps: mbps,
            price_per_mbps_month: None,
        }
    }

    #[test]
    fn public_only_uses_the_distance_table() {
        let net = Network::default();
        let p = net.path("440305", "440106", None).unwrap();
        assert_eq!((p.latency_ms, p.segments.len()), (5.0, 1), "same province");
        assert_eq!(
            net.path("440305", "440304", None).unwrap().latency_ms,
            1.0,
            "same city"
        );
        assert_eq!(net.path("440305", "110108", None).unwrap().latency_ms, 20.0);
        assert_eq!(
            net.public.between("110000", "110108"),
            1.0,
            "Beijing is one city"
        );
        assert_eq!(net.public.between("310115", "310104"), 1.0);
        assert_eq!(p.segments[0].kind, SegmentKind::Public);
    }

    #[test]
    fn a_direct_line_beats_the_public_network_and_is_named() {
        let net = Network {
            lines: vec![line("L1", "440300", "150100", 12.0, 10_000)],
            ..Default::default()
        };
        // 440305 → 440300 (same city, 1 ms) → line (12 ms) → 150100 (same city as 150102, 1 ms)
        let p = net.path("440305", "150102", None).unwrap();
        assert_eq!(p.latency_ms, 14.0);
        assert_eq!(
            p.bottleneck_mbps, 1_000,
            "the public legs are the bottleneck"
        );
        assert_eq!(
            p.segments
                .iter()
                .filter(|s| s.kind == SegmentKind::Line)
                .count(),
            1
        );
        assert_eq!(p.segments[1].line_id.as_deref(), Some("L1"));
    }

    #[test]
    fn multi_hop_lines_and_a_bandwidth_floor() {
        let net = Network {
            public: PublicLatency {
                bandwidth_mbps: 100,
                ..Default::default()
            },
            lines: vec![
                line("A", "110000", "370100", 4.0, 40_000),
                line("B", "370100", "320100", 4.0, 40_000),
                line("C", "110000", "320100", 6.0, 1_000),
            ],
        };
        let fast = net.path("110000", "320100", None).unwrap();
        assert_eq!(
            (fast.latency_ms, fast.segments.len()),
            (6.0, 1),
            "one line C"
        );
        let wide = net.path("110000", "320100", Some(10_000)).unwrap();
        assert_eq!(
            (wide.latency_ms, wide.bottleneck_mbps),
            (8.0, 40_000),
            "A then B"
        );
        assert_eq!(
            wide.segments
                .iter()
                .map(|s| s.line_id.clone().unwrap())
                .collect::<Vec<_>>(),
            ["A", "B"]
        );
        assert!(
            net.path("110000", "440300", Some(10_000)).is_none(),
            "unreachable"
        );
        assert!(net.path("110000", "440300", None).is_some());
    }
}
