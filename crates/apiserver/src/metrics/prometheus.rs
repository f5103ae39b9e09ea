//! Reading the kubelet's `/metrics/resource` (Prometheus text exposition format 0.0.4) into the
//! samples metrics-server keeps (metrics-server `pkg/scraper/client/resource/decode.go`): node
//! and container CPU (cumulative core-seconds), working-set memory and container start times.

use std::collections::{BTreeMap, HashMap};

/// One point of a cumulative CPU counter with the memory read at the same time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When the sample was taken (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Cumulative CPU time in core-seconds.
    pub cpu_seconds: f64,
    /// Working set in bytes.
    pub memory_bytes: f64,
    /// Container start time (seconds since the epoch), 0 for nodes.
    pub start_seconds: f64,
}

/// What one scrape of a node returned.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NodeScrape {
    /// The node's own usage, when both node series were present.
    pub node: Option<Point>,
    /// Containers by (namespace, pod), then container name.
    pub pods: HashMap<(String, String), BTreeMap<String, Point>>,
}

/// One parsed series line.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    name: &'a str,
    labels: BTreeMap<String, String>,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// Parses `name{k="v",...} value [timestamp]`; comments and blank lines give `None`.
fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        // key="value" pairs; values may contain escaped quotes, commas and braces.
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            let mut escaped = false;
            for (_, c) in chars.by_ref() {
                match (escaped, c) {
                    (true, 'n') => {
                        value.push('\n');
                        escaped = false;
                    }
                    (true, c) => {
                        value.push(c);
                        escaped = false;
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    (false, c) => value.push(c),
                }
            }
            labels.insert(key.trim().to_string(), value);
        }
        &body[end? + 1..]
    } else {
        rest
    };
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next()?)?;
    let timestamp_ms = fields.next().and_then(|t| t.parse().ok());
    Some(Line { name, labels, value, timestamp_ms })
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Decodes a scrape taken at `now_ms` (used for samples without a timestamp). Containers
/// missing either CPU or memory are dropped, as metrics-server drops them.
pub fn decode(text: &str, now_ms: i64) -> NodeScrape {
    #[derive(Default)]
    struct Partial {
        cpu: Option<(f64, i64)>,
        memory: Option<f64>,
        start: f64,
    }
    let mut node = Partial::default();
    let mut containers: HashMap<(String, String, String), Partial> = HashMap::new();
    for line in text.lines().filter_map(parse_line) {
        let ts = line.timestamp_ms.unwrap_or(now_ms);
        let container_key = || {
            Some((line.labels.get("namespace")?.clone(), line.labels.get("pod")?.clone(), line.labels.get("container")?.clone()))
        };
        match line.name {
            "node_cpu_usage_seconds_total" => node.cpu = Some((line.value, ts)),
            "node_memory_working_set_bytes" => node.memory = Some(line.value),
            "container_cpu_usage_seconds_total" => {
                if let Some(k) = container_key() {
                    containers.entry(k).or_default().cpu = Some((line.value, ts));
                }
            }
            "container_memory_working_set_bytes" => {
                if let Some(k) = container_key() {
                    containers.entry(k).or_default().memory = Some(line.value);
                }
            }
            "container_start_time_seconds" => {
                if let Some(k) = container_key() {
                    containers.entry(k).or_default().start = line.value;
                }
            }
            _ => {}
        }
    }
    let point = |p: &Partial| match (p.cpu, p.memory) {
        (Some((cpu, ts)), Some(mem)) if cpu.is_finite() && mem.is_finite() => {
            Some(Point { timestamp_ms: ts, cpu_seconds: cpu, memory_bytes: mem, start_seconds: p.start })
        }
        _ => None,
    };
    let mut out = NodeScrape { node: point(&node), ..Default::default() };
    for ((ns, pod, container), p) in &containers {
        if let Some(pt) = point(p) {
            out.pods.entry((ns.clone(), pod.clone())).or_default().insert(container.clone(), pt);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-55fddfc79-6gn8g"} 1.553024 1633253812125
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 10.5 1633253812200
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-55fddfc79-6gn8g"} 1.2910592e+07 1633253812125
container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 67108864 1633253812200
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-55fddfc79-6gn8g"} 1.6332536e+09 1633253812125
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1633253809720
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.616273408e+09 1633253809720
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web"} 10.5 1633253812200
scrape_error 0
"#;

    #[test]
    fn decodes_kubelet_resource_metrics() {
        let s = decode(KUBELET, 0);
        assert_eq!(
            s.node,
            Some(Point { timestamp_ms: 1633253809720, cpu_seconds: 357.35491, memory_bytes: 1616273408.0, start_seconds: 0.0 })
        );
        let coredns = &s.pods[&("kube-system".to_string(), "coredns-55fddfc79-6gn8g".to_string())]["coredns"];
        assert_eq!(coredns.memory_bytes, 12910592.0);
        assert_eq!(coredns.start_seconds, 1633253600.0);
        let web = &s.pods[&("default".to_string(), "web".to_string())]["app"];
        assert_eq!((web.cpu_seconds, web.timestamp_ms), (10.5, 1633253812200));
        assert_eq!(s.pods.len(), 2);
    }

    #[test]
    fn labels_with_escapes_and_missing_series() {
        let l = parse_line(r#"x{a="q\"uo,te}",b="2"} 3"#).unwrap();
        assert_eq!(l.labels["a"], "q\"uo,te}");
        assert_eq!(l.labels["b"], "2");
        assert_eq!((l.value, l.timestamp_ms), (3.0, None));
        // A container without memory is not reported, nor a node without CPU.
        let s = decode("container_cpu_usage_seconds_total{container=\"c\",namespace=\"n\",pod=\"p\"} 1\nnode_memory_working_set_bytes 5\n", 7);
        assert!(s.pods.is_empty());
        assert_eq!(s.node, None);
        assert!(parse_line("garbage").is_none());
    }
}
