use super::*;

#[test]
fn the_exposition_format_is_what_prometheus_reads() {
    let registry = Registry::new();
    let requests = registry.counter_family("requests_total", "Requests handled.", &["api"]);
    requests.with(&["Produce"]).add(3);
    requests.with(&["Fetch"]).inc();
    registry.gauge("connections", "Open connections.").set(-2);
    let latency = registry.histogram("latency_seconds", "Latency.", &[0.001, 0.5]);
    latency.observe(0.0005);
    latency.observe(0.001);
    latency.observe(2.0);
    registry.collect_with(|out| {
        out.gauges(
            "disk_free_bytes",
            "Free bytes.\nOn \\ disks.",
            [(vec![("dir", "/a\"b\\c\nd")], 1.5e9)],
        );
    });
    let text = registry.render();
    let want = "# HELP requests_total Requests handled.
# TYPE requests_total counter
requests_total{api=\"Fetch\"} 1
requests_total{api=\"Produce\"} 3
# HELP connections Open connections.
# TYPE connections gauge
connections -2
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.001\"} 2
latency_seconds_bucket{le=\"0.5\"} 2
latency_seconds_bucket{le=\"+Inf\"} 3
latency_seconds_sum 2.0015
latency_seconds_count 3
# HELP disk_free_bytes Free bytes.\\nOn \\\\ disks.
# TYPE disk_free_bytes gauge
disk_free_bytes{dir=\"/a\\\"b\\\\c\\nd\"} 1500000000
";
    assert_eq!(text, want);
}

#[test]
fn a_family_stops_growing_at_its_cap() {
    let family = Family::new("t_total", "T.", &["topic"], Counter::default).with_max_series(2);
    for t in ["a", "b", "c", "d"] {
        family.with(&[t]).inc();
    }
    family.with(&["a"]).inc();
    let mut out = Encoder::default();
    family.render(&mut out);
    let text = out.finish();
    assert!(text.contains("t_total{topic=\"a\"} 2"), "{text}");
    assert!(text.contains("t_total{topic=\"(other)\"} 2"), "{text}");
    assert!(!text.contains("topic=\"c\""), "{text}");
    family.remove(&["a"]);
    let mut out = Encoder::default();
    family.render(&mut out);
    assert!(!out.finish().contains("topic=\"a\""));
}

#[test]
fn bucket_bounds_and_values_print_as_clients_print_them() {
    let registry = Registry::new();
    let h = registry.histogram("h", "H.", LATENCY_BUCKETS);
    h.observe(0.00007);
    let text = registry.render();
    assert!(text.contains("h_bucket{le=\"0.00005\"} 0"), "{text}");
    assert!(text.contains("h_bucket{le=\"0.0001\"} 1"), "{text}");
    assert!(text.contains("h_bucket{le=\"10\"} 1"), "{text}");
}
