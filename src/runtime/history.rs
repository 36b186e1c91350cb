//! The record of a run: the per-epoch history as CSV (`--log`), and the
//! training and validation loss curves as an SVG or PNG picture (`--plot`).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::checkpoint::write_atomically;
use super::{EpochRecord, Error};
use crate::diagnostic::io_reason;
use image::ImageEncoder;

/// The history as CSV: `epoch, step, loss, <metrics>, val_loss,
/// val_<metrics>, grad_norm, lr, seconds`, one row per epoch (validation
/// columns only when there is a validation split).
pub fn csv(history: &[EpochRecord], metrics: &[String]) -> String {
    let validation = history.iter().any(|r| r.validation.is_some());
    let mut out = String::from("epoch,step,loss");
    for m in metrics {
        let _ = write!(out, ",{m}");
    }
    if validation {
        out.push_str(",val_loss");
        for m in metrics {
            let _ = write!(out, ",val_{m}");
        }
    }
    out.push_str(",grad_norm,lr,seconds\n");
    for r in history {
        let _ = write!(out, "{},{},{}", r.epoch, r.step, r.loss);
        for m in &r.metrics {
            let _ = write!(out, ",{m}");
        }
        if validation {
            match &r.validation {
                Some((l, ms)) => {
                    let _ = write!(out, ",{l}");
                    for m in ms {
                        let _ = write!(out, ",{m}");
                    }
                }
                None => out.push_str(&",".repeat(metrics.len() + 1)),
            }
        }
        let _ = writeln!(
            out,
            ",{},{},{:.6}",
            r.grad_norm,
            r.lr,
            r.elapsed.as_secs_f64()
        );
    }
    out
}

/// Writes [`csv()`] to `path`, atomically.
pub fn write_csv(path: &Path, history: &[EpochRecord], metrics: &[String]) -> Result<(), Error> {
    write_file(path, csv(history, metrics).as_bytes())
}

/// Writes `bytes` to `path` atomically, with a clean error.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically(path, bytes).map_err(|e| {
        Error::new(format!(
            "cannot write `{}`: {}",
            path.display(),
            io_reason(&e)
        ))
    })
}

/// A picture format [`plot`] draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotFormat {
    Svg,
    Png,
}

/// The format of a plot file, by its extension (`.svg`, `.png`, in any case);
/// the error is the reason, to follow "cannot plot to `path`: ".
pub fn plot_format(path: &Path) -> Result<PlotFormat, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => Ok(PlotFormat::Svg),
        "png" => Ok(PlotFormat::Png),
        _ => Err("the file name must end in .svg or .png".to_string()),
    }
}

static FONT: Once = Once::new();

/// Registers the bundled DejaVu Sans as plotters' "sans-serif", once.
fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // The font is bundled and valid; a failure would only lose the text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// Draws the training (and validation) loss per epoch to `path`: SVG for
/// `.svg`, PNG for `.png`. The loss axis is logarithmic when the losses are
/// positive and span more than two orders of magnitude. `x_label` names the
/// x axis ("epoch", or "step" for a program without data).
pub fn plot(path: &Path, history: &[EpochRecord], x_label: &str) -> Result<(), Error> {
    let format = plot_format(path)
        .map_err(|m| Error::new(format!("cannot plot to `{}`: {m}", path.display())))?;
    register_font();
    let (w, h) = (800u32, 500u32);
    let drawn = |e: String| Error::new(format!("cannot draw `{}`: {e}", path.display()));
    // Drawn in memory, then written atomically: a failed write is an I/O
    // error with its reason, and never leaves half a picture.
    let bytes = match format {
        PlotFormat::Svg => {
            let mut svg = String::new();
            draw(
                SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
                history,
                x_label,
            )
            .map_err(drawn)?;
            svg.into_bytes()
        }
        PlotFormat::Png => {
            let mut rgb = vec![0u8; (w * h * 3) as usize];
            draw(
                BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(),
                history,
                x_label,
            )
            .map_err(drawn)?;
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&rgb, w, h, image::ColorType::Rgb8)
                .map_err(|e| drawn(e.to_string()))?;
            png
        }
    };
    write_file(path, &bytes)
}

type Series = Vec<(f64, f64)>;

/// An axis label: four significant digits, an exponent when small or large.
fn label(y: f64) -> String {
    crate::shape::fmt_sig(y, 4)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    history: &[EpochRecord],
    x_label: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let train: Series = history
        .iter()
        .filter(|r| r.loss.is_finite())
        .map(|r| (r.epoch as f64, r.loss))
        .collect();
    let val: Series = history
        .iter()
        .filter_map(|r| r.validation.as_ref().map(|(l, _)| (r.epoch as f64, *l)))
        .filter(|(_, l)| l.is_finite())
        .collect();
    let all = train.iter().chain(&val);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
        (lo.min(*y), hi.max(*y))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let x_max = history.last().map_or(1.0, |r| r.epoch as f64).max(1.0);
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let log = lo > 0.0 && hi / lo > 100.0;

    macro_rules! chart {
        ($y:expr) => {{
            let mut chart = ChartBuilder::on(&root)
                .caption("loss", ("sans-serif", 24))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..x_max, $y)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc("loss")
                .x_label_formatter(&|x| format!("{}", x.round()))
                .y_label_formatter(&|y| label(*y))
                .draw()
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(train.iter().copied(), &BLUE))
                .map_err(e)?
                .label("training")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            if !val.is_empty() {
                chart
                    .draw_series(LineSeries::new(val.iter().copied(), &RED))
                    .map_err(e)?
                    .label("validation")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        }};
    }
    if log {
        chart!((lo * 0.8..hi * 1.25).log_scale());
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-12);
        chart!(lo - pad..hi + pad);
    }
    root.present().map_err(e)?;
    Ok(())
}
