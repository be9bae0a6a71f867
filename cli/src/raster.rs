//! The raster plot of `ruleopt simulate --raster`: time (ms) across, neuron index up,
//! one labelled band per spiking population, episode 0 only.

use crate::simulate::SimResult;
use crate::Error;
use plotters::prelude::*;

/// Plot size in pixels.
const WIDTH: u32 = 1000;
const BAND_PX_MIN: u32 = 60;

/// Draws the raster plot as SVG text.
pub fn raster_svg(res: &SimResult) -> Result<String, Error> {
    // Bands, top to bottom in declaration order (rows count upwards, so the last
    // population gets the lowest rows): (population, first row).
    let pops: Vec<_> = res
        .populations
        .iter()
        .rev()
        .filter(|p| p.rate_hz.is_some())
        .collect();
    let total: usize = pops.iter().map(|p| p.size).sum();
    let gap = (total / 25).max(1);
    let mut bands = Vec::new();
    let mut row = 0;
    for p in &pops {
        bands.push((p, row));
        row += p.size + gap;
    }
    let rows = row.saturating_sub(gap).max(1) as f64;
    let t_end = (res.steps as f64 * res.dt_ms).max(f64::MIN_POSITIVE);
    let height = (pops.len() as u32 * BAND_PX_MIN).clamp(300, 900) + 100;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: spikes of episode 0", res.network),
                ("sans-serif", 18),
            )
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..t_end, -0.5..rows - 0.5)
            .map_err(plot_error)?;
        // Label each band at its middle with the population name.
        let centres: Vec<(f64, String)> = bands
            .iter()
            .map(|(p, first)| (*first as f64 + (p.size as f64 - 1.0) / 2.0, p.name.clone()))
            .collect();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("time (ms)")
            .y_labels(0)
            .draw()
            .map_err(plot_error)?;
        let label_style = ("sans-serif", 14).into_font().color(&BLACK);
        for (y, name) in &centres {
            let (px, py) = chart.backend_coord(&(0.0, *y));
            root.draw(&Text::new(
                name.clone(),
                (px.saturating_sub(85), py - 7),
                label_style.clone(),
            ))
            .map_err(plot_error)?;
        }
        // Separators between bands.
        for (_, first) in bands.iter().skip(1) {
            let y = *first as f64 - gap as f64 / 2.0 - 0.5;
            chart
                .draw_series(LineSeries::new([(0.0, y), (t_end, y)], BLACK.mix(0.3)))
                .map_err(plot_error)?;
        }
        let radius = if rows <= 100.0 { 2 } else { 1 };
        for (i, (p, first)) in bands.iter().enumerate() {
            let color = Palette99::pick(bands.len() - 1 - i).to_rgba(); // by declaration order
            let points = p
                .spikes
                .iter()
                .filter(|s| s[1] == 0)
                .map(|s| (s[0] as f64 * res.dt_ms, (*first + s[2] as usize) as f64));
            chart
                .draw_series(points.map(|c| Circle::new(c, radius, color.filled())))
                .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}
