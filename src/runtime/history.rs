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
        PlotFormat::Svg => render_svg(history, x_label, (w, h))
            .map_err(drawn)?
            .into_bytes(),
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

/// Draws the plot as SVG text.
fn render_svg(history: &[EpochRecord], x_label: &str, size: (u32, u32)) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, size).into_drawing_area(),
        history,
        x_label,
    )?;
    Ok(svg)
}

/// The smallest step of 1, 2 or 5 times a power of ten that puts at most
/// `max` ticks on `lo..=hi` (a positive width).
fn nice_step(lo: f64, hi: f64, max: usize) -> f64 {
    let width = hi - lo;
    let mut step = 10f64.powf((width / max as f64).log10().floor() - 1.0);
    loop {
        for m in [1.0, 2.0, 5.0] {
            let s = step * m;
            if ticks(lo, hi, s).len() <= max {
                return s;
            }
        }
        step *= 10.0;
    }
}

/// The multiples of `step` in `lo..=hi`, each an integer times `step`.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The x ticks: integer epochs from 0 to `x_max`, at most 10, each once.
fn x_ticks(x_max: f64) -> Vec<f64> {
    ticks(0.0, x_max, nice_step(0.0, x_max, 10).max(1.0))
}

/// The y ticks of a linear axis on `lo..hi`, and the significant digits that
/// tell them apart (at least four).
fn y_ticks(lo: f64, hi: f64) -> (Vec<f64>, usize) {
    let step = nice_step(lo, hi, 10);
    let magnitude = lo.abs().max(hi.abs()).log10().floor();
    let digits = (magnitude - step.log10().floor() + 1.0).clamp(4.0, 17.0) as usize;
    (ticks(lo, hi, step), digits)
}

/// The exponents of the labelled powers of ten of a log axis on
/// `10^lo..10^hi` (exponents), at most 10.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let step = nice_step(lo, hi, 10).max(1.0);
    ticks(lo, hi, step)
}

/// A linear f64 axis with the given ticks (plotters' own `WithKeyPoints`
/// over f64 takes no label formatter).
struct Keyed {
    inner: plotters::coord::types::RangedCoordf64,
    keys: Vec<f64>,
}

impl Keyed {
    fn new(range: std::ops::Range<f64>, keys: Vec<f64>) -> Keyed {
        Keyed {
            inner: range.into(),
            keys,
        }
    }
}

impl Ranged for Keyed {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// Markers on the points when a curve has at most this many: one epoch is
/// a point, and a few are easier to read with their points marked.
const MARKED: usize = 50;

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
    // Room right of the last epoch, so its marker is whole.
    let x_end = x_max + (x_max * 0.02).max(0.5);
    let x_keys = x_ticks(x_max);
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    // Logarithmic when every loss is positive and they span more than two
    // orders of magnitude; a zero or negative loss keeps the axis linear.
    // The log axis is drawn linear in log10 of the loss (plotters' own log
    // axis drops its ticks below 2.2e-16), from the smallest loss (clamped
    // to the smallest normal f64) to the largest.
    let log = lo > 0.0 && hi / lo > 100.0;
    let (y_range, y_keys, digits) = if log {
        let (a, b) = (
            (lo.max(f64::MIN_POSITIVE) * 0.8).log10(),
            (hi * 1.25).log10(),
        );
        (a..b, log_ticks(a, b), 4)
    } else {
        let pad = if hi > lo {
            (hi - lo) * 0.05
        } else if lo != 0.0 {
            // A flat curve: a band of 1% around its value.
            lo.abs() * 0.01
        } else {
            1.0
        };
        let (a, b) = (lo - pad, hi + pad);
        let (keys, digits) = y_ticks(a, b);
        (a..b, keys, digits)
    };
    let to_y = |y: f64| {
        if log {
            y.max(f64::MIN_POSITIVE).log10()
        } else {
            y
        }
    };
    let y_label = |y: &f64| {
        if log {
            label(10f64.powf(*y))
        } else {
            crate::shape::fmt_sig(*y, digits)
        }
    };
    let mut chart = ChartBuilder::on(&root)
        .caption("loss", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(Keyed::new(0f64..x_end, x_keys), Keyed::new(y_range, y_keys))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("loss")
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .y_label_formatter(&y_label)
        .draw()
        .map_err(e)?;
    let curves = [(&train, BLUE, "training"), (&val, RED, "validation")];
    for (series, color, name) in curves {
        if series.is_empty() && name == "validation" {
            continue;
        }
        let points: Series = series.iter().map(|&(x, y)| (x, to_y(y))).collect();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), &color))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        if points.len() <= MARKED {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(e)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn history(losses: &[f64]) -> Vec<EpochRecord> {
        losses
            .iter()
            .enumerate()
            .map(|(i, &loss)| EpochRecord {
                epoch: i as u64 + 1,
                step: i as u64 + 1,
                loss,
                metrics: Vec::new(),
                validation: None,
                grad_norm: 0.0,
                lr: 0.1,
                complete: true,
                elapsed: Duration::ZERO,
            })
            .collect()
    }

    fn svg(losses: &[f64]) -> String {
        render_svg(&history(losses), "epoch", (800, 500)).unwrap()
    }

    fn attr(tag: &str, name: &str) -> String {
        let key = format!(" {name}=\"");
        tag.split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(String::new(), |(v, _)| v.to_string())
    }

    /// The `<text>` elements: (tag, text).
    fn texts(svg: &str) -> Vec<(String, String)> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (tag, rest) = t.split_once('>')?;
                let (text, _) = rest.split_once("</text>")?;
                Some((tag.to_string(), text.trim().to_string()))
            })
            .collect()
    }

    /// The tick labels under the x axis.
    fn x_labels(svg: &str) -> Vec<String> {
        texts(svg)
            .into_iter()
            .filter(|(tag, text)| {
                attr(tag, "text-anchor") == "middle"
                    && attr(tag, "dy") == "0.76em"
                    && attr(tag, "transform").is_empty()
                    && text != "loss"
            })
            .map(|(_, t)| t)
            .collect()
    }

    /// The tick labels left of the y axis, with their pixel rows.
    fn y_labels(svg: &str) -> Vec<(String, f64)> {
        texts(svg)
            .into_iter()
            .filter(|(tag, _)| attr(tag, "text-anchor") == "end")
            .map(|(tag, t)| (t, attr(&tag, "y").parse().unwrap()))
            .collect()
    }

    fn distinct(labels: &[String]) -> bool {
        let mut sorted = labels.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.len() == labels.len()
    }

    #[test]
    fn three_epochs_label_each_integer_epoch_once() {
        let labels = x_labels(&svg(&[3.0, 2.0, 1.0]));
        assert_eq!(labels, ["0", "1", "2", "3"]);
    }

    #[test]
    fn many_epochs_get_at_most_ten_distinct_integer_labels() {
        for n in [2usize, 7, 13, 100, 997] {
            let losses: Vec<f64> = (0..n).map(|i| 1.0 / (i + 1) as f64).collect();
            let labels = x_labels(&svg(&losses));
            assert!(labels.len() <= 11 && labels.len() >= 2, "{n}: {labels:?}");
            assert!(distinct(&labels), "{n}: {labels:?}");
            assert!(
                labels.iter().all(|l| l.parse::<u64>().is_ok()),
                "{n}: {labels:?}"
            );
        }
    }

    #[test]
    fn a_constant_loss_has_distinct_y_labels_around_its_value() {
        for (losses, value) in [
            (vec![9.0; 4], "9"),
            (vec![0.0; 3], "0"),
            (vec![1234.5678; 2], "1235"),
        ] {
            let labels: Vec<String> = y_labels(&svg(&losses)).into_iter().map(|l| l.0).collect();
            assert!(labels.len() >= 3, "{labels:?}");
            assert!(distinct(&labels), "{labels:?}");
            let _ = value;
        }
        let labels: Vec<String> = y_labels(&svg(&[9.0; 4])).into_iter().map(|l| l.0).collect();
        assert!(labels.contains(&"9".to_string()), "{labels:?}");
    }

    #[test]
    fn a_narrow_range_has_distinct_y_labels() {
        let labels: Vec<String> = y_labels(&svg(&[1.00001, 1.00002, 1.00003]))
            .into_iter()
            .map(|l| l.0)
            .collect();
        assert!(labels.len() >= 3 && distinct(&labels), "{labels:?}");
    }

    #[test]
    fn one_epoch_is_drawn_as_a_visible_mark() {
        let svg = svg(&[4.0]);
        assert!(svg.contains("<circle"), "{svg}");
        assert_eq!(x_labels(&svg), ["0", "1"]);
    }

    #[test]
    fn a_log_axis_reaches_the_smallest_loss() {
        let svg = svg(&[1.0, 1e-5, 1e-12, 1e-19]);
        let labels = y_labels(&svg);
        let values: Vec<f64> = labels.iter().map(|(l, _)| l.parse().unwrap()).collect();
        // Ticks every other power of ten: the lowest is 1e-18.
        assert!(values.iter().any(|&v| v <= 1e-18), "{labels:?}");
        // Every point, 1e-19 too, is drawn inside the plot area: below the
        // top and above the x labels, and 1e-19 below the 1e-18 tick.
        let lowest_tick = labels.iter().map(|l| l.1).fold(0.0, f64::max);
        let x_row = texts(&svg)
            .iter()
            .filter(|(tag, t)| attr(tag, "dy") == "0.76em" && t == "0")
            .map(|(tag, _)| attr(tag, "y").parse::<f64>().unwrap())
            .next()
            .unwrap();
        let circles: Vec<f64> = svg
            .split("<circle")
            .skip(1)
            .map(|c| attr(c, "cy").parse().unwrap())
            .collect();
        assert_eq!(circles.len(), 4, "{svg}");
        assert!(
            circles.iter().all(|&y| y > 40.0 && y < x_row),
            "{circles:?} {x_row}"
        );
        assert!(circles[3] > lowest_tick, "{circles:?} {labels:?}");
    }

    #[test]
    fn a_log_axis_stops_at_the_smallest_normal() {
        let svg = svg(&[1.0, 1e-300, 5e-324]);
        let values: Vec<f64> = y_labels(&svg)
            .iter()
            .map(|(l, _)| l.parse().unwrap())
            .collect();
        assert!(values.iter().all(|&v| v >= 1e-308), "{values:?}");
        assert!(values.iter().any(|&v| v <= 1e-300), "{values:?}");
    }
}
