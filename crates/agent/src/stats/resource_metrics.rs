//! `/metrics/resource`: the kubelet's resource metrics (`pkg/kubelet/metrics/collectors/
//! resource_metrics.go`) in the Prometheus text format 0.0.4 as client_golang writes it —
//! families sorted by name, empty families left out, labels sorted by name, samples sorted by
//! label values, CPU and memory samples stamped with the time they were read (milliseconds),
//! floats as Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
//!
//! `scrape_error` (ALPHA, deprecated in 1.29) is hidden in 1.33 as component-base hides
//! deprecated metrics after a release; `resource_scrape_error` replaces it.

use std::fmt::Write;

use super::types::{Summary, Time};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Sample {
    labels: Vec<(&'static str, String)>,
    value: f64,
    time: Option<Time>,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<Sample>,
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that round-trip, in
/// exponent notation (two-digit exponent at least) when the exponent is below -4 or 6 and up.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let scientific = format!("{v:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return format!("{v}");
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return format!("{v}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Renders the resource metrics of a CPU-and-memory summary.
pub fn render(summary: &Summary) -> String {
    let mut container_cpu = Vec::new();
    let mut container_memory = Vec::new();
    let mut container_start = Vec::new();
    let mut pod_cpu = Vec::new();
    let mut pod_memory = Vec::new();
    for pod in &summary.pods {
        let (name, namespace) = (&pod.pod_ref.name, &pod.pod_ref.namespace);
        let container_labels = |container: &str| {
            vec![
                ("container", container.to_string()),
                ("namespace", namespace.clone()),
                ("pod", name.clone()),
            ]
        };
        for c in &pod.containers {
            if c.start_time.0 > 0 {
                container_start.push(Sample {
                    labels: container_labels(&c.name),
                    value: c.start_time.0 as f64 / 1e9,
                    time: None,
                });
            }
            if let Some((cpu, usage)) = c.cpu.and_then(|s| Some((s, s.usage_core_nano_seconds?))) {
                container_cpu.push(Sample {
                    labels: container_labels(&c.name),
                    value: seconds(usage),
                    time: Some(cpu.time),
                });
            }
            if let Some((m, ws)) = c.memory.and_then(|s| Some((s, s.working_set_bytes?))) {
                container_memory.push(Sample {
                    labels: container_labels(&c.name),
                    value: ws as f64,
                    time: Some(m.time),
                });
            }
        }
        let pod_labels = || vec![("namespace", namespace.clone()), ("pod", name.clone())];
        if let Some((cpu, usage)) = pod.cpu.and_then(|s| Some((s, s.usage_core_nano_seconds?))) {
            pod_cpu.push(Sample {
                labels: pod_labels(),
                value: seconds(usage),
                time: Some(cpu.time),
            });
        }
        if let Some((m, ws)) = pod.memory.and_then(|s| Some((s, s.working_set_bytes?))) {
            pod_memory.push(Sample {
                labels: pod_labels(),
                value: ws as f64,
                time: Some(m.time),
            });
        }
    }
    let node = &summary.node;
    let node_cpu = node
        .cpu
        .and_then(|s| Some((s, s.usage_core_nano_seconds?)))
        .map(|(s, usage)| Sample {
            labels: vec![],
            value: seconds(usage),
            time: Some(s.time),
        });
    let node_memory = node
        .memory
        .and_then(|s| Some((s, s.working_set_bytes?)))
        .map(|(s, ws)| Sample {
            labels: vec![],
            value: ws as f64,
            time: Some(s.time),
        });
    let families = [
        Family {
            name: "container_cpu_usage_seconds_total",
            help: "Cumulative cpu time consumed by the container in core-seconds",
            kind: "counter",
            samples: container_cpu,
        },
        Family {
            name: "container_memory_working_set_bytes",
            help: "Current working set of the container in bytes",
            kind: "gauge",
            samples: container_memory,
        },
        Family {
            name: "container_start_time_seconds",
            help: "Start time of the container since unix epoch in seconds",
            kind: "gauge",
            samples: container_start,
        },
        Family {
            name: "node_cpu_usage_seconds_total",
            help: "Cumulative cpu time consumed by the node in core-seconds",
            kind: "counter",
            samples: node_cpu.into_iter().collect(),
        },
        Family {
            name: "node_memory_working_set_bytes",
            help: "Current working set of the node in bytes",
            kind: "gauge",
            samples: node_memory.into_iter().collect(),
        },
        Family {
            name: "pod_cpu_usage_seconds_total",
            help: "Cumulative cpu time consumed by the pod in core-seconds",
            kind: "counter",
            samples: pod_cpu,
        },
        Family {
            name: "pod_memory_working_set_bytes",
            help: "Current working set of the pod in bytes",
            kind: "gauge",
            samples: pod_memory,
        },
        Family {
            name: "resource_scrape_error",
            help: "1 if there was an error while getting container metrics, 0 otherwise",
            kind: "gauge",
            samples: vec![Sample {
                labels: vec![],
                value: 0.0,
                time: None,
            }],
        },
    ];
    write_families(families)
}

/// What `/metrics/resource` serves when the runtime could not be read: only the error gauges.
pub fn render_error() -> String {
    write_families([Family {
        name: "resource_scrape_error",
        help: "1 if there was an error while getting container metrics, 0 otherwise",
        kind: "gauge",
        samples: vec![Sample {
            labels: vec![],
            value: 1.0,
            time: None,
        }],
    }])
}

fn write_families<const N: usize>(families: [Family; N]) -> String {
    let mut out = String::new();
    for mut family in families {
        if family.samples.is_empty() {
            continue;
        }
        family.samples.sort_by(|a, b| {
            let key = |s: &Sample| s.labels.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
            key(a).cmp(&key(b))
        });
        let _ = writeln!(out, "# HELP {} [STABLE] {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for s in &family.samples {
            out.push_str(family.name);
            if !s.labels.is_empty() {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = write!(out, " {}", go_float(s.value));
            if let Some(t) = s.time {
                let _ = write!(out, " {}", t.millis());
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::types::{
        ContainerStats, CpuStats, MemoryStats, NodeStats, PodReference, PodStats,
    };

    #[test]
    fn floats_are_formatted_as_go_does() {
        assert_eq!(go_float(1.3979648e7), "1.3979648e+07");
        assert_eq!(go_float(357.35491), "357.35491");
        assert_eq!(go_float(1.6522621e9), "1.6522621e+09");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1.0), "1");
    }

    #[test]
    fn text_matches_the_kubelet_layout() {
        let t = Time(1_652_266_843_383_000_000);
        let cpu = |ns: u64| {
            Some(CpuStats {
                time: t,
                usage_nano_cores: None,
                usage_core_nano_seconds: Some(ns),
            })
        };
        let memory = |b: u64| {
            Some(MemoryStats {
                time: t,
                working_set_bytes: Some(b),
                ..Default::default()
            })
        };
        let pod = |name: &str, containers: Vec<ContainerStats>| PodStats {
            pod_ref: PodReference {
                name: name.into(),
                namespace: "default".into(),
                uid: "u".into(),
            },
            cpu: cpu(3_400_000_000),
            memory: memory(1_000_000),
            containers,
            ..Default::default()
        };
        let container = |name: &str| ContainerStats {
            name: name.into(),
            start_time: Time(1_652_262_100_000_000_000),
            cpu: cpu(3_367_536_000),
            memory: memory(13_979_648),
            ..Default::default()
        };
        let summary = Summary {
            node: NodeStats {
                cpu: cpu(357_354_910_000),
                memory: memory(1_067_118_592),
                ..Default::default()
            },
            pods: vec![
                pod("web", vec![container("sidecar"), container("app")]),
                pod("api", vec![container("app")]),
            ],
        };
        let expected = "\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"api\"} 3.367536 1652266843383
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 3.367536 1652266843383
container_cpu_usage_seconds_total{container=\"sidecar\",namespace=\"default\",pod=\"web\"} 3.367536 1652266843383
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"api\"} 1.3979648e+07 1652266843383
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web\"} 1.3979648e+07 1652266843383
container_memory_working_set_bytes{container=\"sidecar\",namespace=\"default\",pod=\"web\"} 1.3979648e+07 1652266843383
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container=\"app\",namespace=\"default\",pod=\"api\"} 1.6522621e+09
container_start_time_seconds{container=\"app\",namespace=\"default\",pod=\"web\"} 1.6522621e+09
container_start_time_seconds{container=\"sidecar\",namespace=\"default\",pod=\"web\"} 1.6522621e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1652266843383
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.067118592e+09 1652266843383
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"api\"} 3.4 1652266843383
pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web\"} 3.4 1652266843383
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace=\"default\",pod=\"api\"} 1e+06 1652266843383
pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 1e+06 1652266843383
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
";
        assert_eq!(render(&summary), expected);
    }

    #[test]
    fn an_empty_node_has_only_its_own_series_and_errors_are_flagged() {
        let text = render(&Summary::default());
        assert!(!text.contains("container_"), "{text}");
        assert!(text.ends_with("resource_scrape_error 0\n"), "{text}");
        assert!(render_error().ends_with("resource_scrape_error 1\n"));
    }
}
