//! SVG chart of latency percentiles by payload size.

use std::path::Path;

use plotters::prelude::*;

use crate::args::size_label;
use crate::error::{BenchError, Result};
use crate::report::{E2eReport, LoadMode};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 560;

/// Colours of p50, p90, p99, p99.9 and max, light to dark so the tail reads as "worse".
const PERCENTILE_COLOURS: [RGBColor; 5] = [
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(80, 80, 80),
];

/// Renders the e2e report as an SVG document: solid lines for end-to-end percentiles, dashed
/// lines for the produce-acknowledgement p50 and p99, both axes logarithmic.
pub fn render_svg(report: &E2eReport) -> Result<String> {
    let mut svg = String::new();
    draw(report, SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)))
        .map_err(|e| BenchError::Chart(e.to_string()))?;
    Ok(svg)
}

/// Writes the chart of [`render_svg`] to `path`.
pub fn write_svg(path: &Path, report: &E2eReport) -> Result<()> {
    let svg = render_svg(report)?;
    std::fs::write(path, svg).map_err(|e| BenchError::io(path, e))
}

type ChartResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(report: &E2eReport, backend: SVGBackend<'_>) -> ChartResult {
    let rows: Vec<_> = report.rows.iter().filter(|r| r.e2e.count > 0).collect();
    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;

    let sizes = rows.iter().map(|r| r.size_bytes as f64);
    let x_min = sizes.clone().fold(f64::INFINITY, f64::min);
    let x_max = sizes.fold(0.0, f64::max);
    let (x_min, x_max) = if x_min.is_finite() && x_max > 0.0 {
        (x_min / 1.5, x_max * 1.5)
    } else {
        (50.0, 2e6)
    };
    let values = rows.iter().flat_map(|r| {
        r.e2e
            .percentiles()
            .into_iter()
            .chain(r.ack.percentiles())
            .map(|(_, v)| v)
    });
    let y_min = values
        .clone()
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let y_max = values.fold(0.0, f64::max);
    let (y_min, y_max) = if y_min.is_finite() && y_max > 0.0 {
        (y_min / 2.0, y_max * 2.0)
    } else {
        (0.01, 100.0)
    };

    let mode = match report.mode {
        LoadMode::OpenLoop => "open loop",
        LoadMode::Saturation => "saturation",
    };
    let caption = format!(
        "Sluice end-to-end latency by payload size ({mode}, acks={})",
        report.acks
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("payload size")
        .y_desc("latency (ms)")
        .x_label_formatter(&|v| size_label(v.round() as usize))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;

    for (i, colour) in PERCENTILE_COLOURS.iter().enumerate() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                let (_, v) = r.e2e.percentiles().get(i).copied()?;
                (v > 0.0).then_some((r.size_bytes as f64, v))
            })
            .collect();
        let name = rows
            .first()
            .and_then(|r| r.e2e.percentiles().get(i).map(|(n, _)| *n))
            .unwrap_or("");
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(format!("e2e {name}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))?;
    }

    for (name, pick, colour) in [
        ("ack p50", 0usize, PERCENTILE_COLOURS[0]),
        ("ack p99", 2usize, PERCENTILE_COLOURS[2]),
    ] {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                let (_, v) = r.ack.percentiles().get(pick).copied()?;
                (v > 0.0).then_some((r.size_bytes as f64, v))
            })
            .collect();
        chart
            .draw_series(DashedLineSeries::new(points, 6, 4, colour.stroke_width(1)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_e2e;

    #[test]
    fn svg_has_axes_series_and_legend() {
        let svg = render_svg(&sample_e2e()).unwrap_or_default();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.contains("payload size"));
        assert!(svg.contains("latency (ms)"));
        assert!(svg.contains("e2e p99.9"));
        assert!(svg.contains("ack p50"));
        assert!(svg.contains("1 KB"), "size tick labels use decimal units");
        assert!(
            svg.matches("<circle").count() >= 15,
            "5 percentiles x 3 sizes"
        );
    }

    #[test]
    fn empty_report_still_renders() {
        let mut r = sample_e2e();
        r.rows.clear();
        let svg = render_svg(&r).unwrap_or_default();
        assert!(svg.contains("</svg>"));
    }

    #[test]
    fn writes_file() {
        let Some(dir) = tempfile::tempdir().ok() else {
            return;
        };
        let path = dir.path().join("c.svg");
        assert!(write_svg(&path, &sample_e2e()).is_ok());
        assert!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 1000);
    }
}
