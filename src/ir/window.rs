//! Sliding-window operations on `[C, H, W]` images ([`Op::Window`]): 2-D
//! convolution, max and average pooling, and the operations their
//! gradients are made of, with their static parameters and their shape
//! rule. One [`Geometry`] describes every one of them; the interpreter's
//! kernels (`interp::window`) and the JIT's loops (`backend::translate::window`)
//! walk it in the same order.
//!
//! A window of output position `(oh, ow)` covers the input rows
//! `oh * stride + i - padding` for `i` in `0..kh` (columns alike); a tap
//! outside the input (in the zero padding) contributes no term.
//!
//! [`Op::Window`]: crate::ir::Op::Window

use crate::shape::Shape;

/// One sliding-window operation and its static parameters. `x` is an image
/// `[C, H, W]`, `K` a kernel `[O, C, kh, kw]`, and `g` (or `u`) a tensor of
/// the shape of the forward operation's result.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// `(x, K) -> [O, H', W']`, `H' = (H + 2 padding - kh) / stride + 1`:
    /// cross-correlation as PyTorch's `conv2d` (no kernel flip), zero
    /// padding. Each element sums `x[c, h, w] * K[o, c, i, j]` over `c`,
    /// then `i`, then `j` (taps in the padding skipped), from -0, left to
    /// right.
    Conv2d { stride: usize, padding: usize },
    /// `(g, K) -> [C, h, w]`: the transposed convolution, the adjoint of
    /// [`Window::Conv2d`] in its input `x` of `[C, h, w]`. Zeros, to which
    /// `g[o, oh, ow] * K[o, c, i, j]` is added at the tap's position for
    /// `o`, `oh`, `ow`, `c`, `i`, `j` in that nesting (row-major).
    Conv2dInput {
        stride: usize,
        padding: usize,
        h: usize,
        w: usize,
    },
    /// `(x, g) -> [O, C, kh, kw]`: the adjoint of [`Window::Conv2d`] in its
    /// kernel. Each element sums `g[o, oh, ow] * x[c, h, w]` over `oh`,
    /// then `ow` (taps in the padding skipped), from -0, left to right.
    Conv2dKernel {
        stride: usize,
        padding: usize,
        kh: usize,
        kw: usize,
    },
    /// `x -> [C, H', W']`, `H' = (H - k) / stride + 1`: the largest element
    /// of each `k x k` window; the first largest in row-major order within
    /// the window is the one chosen, a NaN counting as the largest (as
    /// `argmax`: the window's first NaN).
    MaxPool2d { k: usize, stride: usize },
    /// `(x, u) -> [C, H', W']`, `u` of `x`'s shape: `u` read at the element of `x` that
    /// [`Window::MaxPool2d`] chooses in each window (its derivative's
    /// transpose; `MaxPool2d(x)` is `MaxPoolGather(x, x)`).
    MaxPoolGather { k: usize, stride: usize },
    /// `(x, g) -> [C, H, W]`: the adjoint of [`Window::MaxPool2d`], each
    /// `g[c, oh, ow]` routed to the element its window chose. Zeros, to
    /// which each is added in row-major order of `(c, oh, ow)`.
    MaxPoolScatter { k: usize, stride: usize },
    /// `x -> [C, H', W']`: the mean of each `k x k` window, its sum over
    /// `i`, then `j`, from -0, left to right, divided by `k * k`.
    AvgPool2d { k: usize, stride: usize },
    /// `g -> [C, h, w]`: the adjoint of [`Window::AvgPool2d`] on an input of
    /// `[C, h, w]`. Zeros, to which `g[c, oh, ow] / (k * k)` is added at
    /// every element of the window, for `c`, `oh`, `ow`, `i`, `j` in that
    /// nesting.
    AvgPoolAdjoint {
        k: usize,
        stride: usize,
        h: usize,
        w: usize,
    },
}

/// The sizes a sliding-window operation works with: input `[c, h, w]`,
/// kernel `[o, c, kh, kw]` (pooling: `o = c`, `kh = kw = k`), output
/// `[o, oh, ow]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Geometry {
    /// The geometry of an input `[c, h, w]` and a window `kh x kw`, or why
    /// there is none (a window larger than the padded input, stride 0).
    pub fn new(
        [c, h, w]: [usize; 3],
        [o, kh, kw]: [usize; 3],
        stride: usize,
        padding: usize,
    ) -> Result<Geometry, String> {
        if stride == 0 {
            return Err("a stride of 0".into());
        }
        if kh == 0 || kw == 0 || kh > h + 2 * padding || kw > w + 2 * padding {
            return Err(format!(
                "a {kh} x {kw} window on a {h} x {w} input with padding {padding}"
            ));
        }
        Ok(Geometry {
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh: (h + 2 * padding - kh) / stride + 1,
            ow: (w + 2 * padding - kw) / stride + 1,
            stride,
            padding,
        })
    }

    /// The input row (or column) that output position `out` reads at tap
    /// `i`, if it is inside the input of `n` rows.
    pub fn tap(&self, out: usize, i: usize, n: usize) -> Option<usize> {
        (out * self.stride + i)
            .checked_sub(self.padding)
            .filter(|&r| r < n)
    }

    /// The input `[c, h, w]`.
    pub fn input(&self) -> Shape {
        Shape(vec![self.c, self.h, self.w])
    }

    /// The output `[o, oh, ow]`.
    pub fn output(&self) -> Shape {
        Shape(vec![self.o, self.oh, self.ow])
    }

    /// The kernel `[o, c, kh, kw]`.
    pub fn kernel(&self) -> Shape {
        Shape(vec![self.o, self.c, self.kh, self.kw])
    }
}

/// The dimensions of a rank-3 shape.
fn dims3(s: &Shape, what: &str) -> Result<[usize; 3], String> {
    match *s.dims() {
        [a, b, c] => Ok([a, b, c]),
        _ => Err(format!("{what} {s} is not [C, H, W]")),
    }
}

/// That `got` is `want`.
fn expect(got: &Shape, want: &Shape, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} {got}, expected {want}"))
    }
}

impl Window {
    /// The IR mnemonic.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Window::Conv2d { .. } => "conv2d",
            Window::Conv2dInput { .. } => "conv2d_input",
            Window::Conv2dKernel { .. } => "conv2d_kernel",
            Window::MaxPool2d { .. } => "maxpool2d",
            Window::MaxPoolGather { .. } => "maxpool2d_gather",
            Window::MaxPoolScatter { .. } => "maxpool2d_scatter",
            Window::AvgPool2d { .. } => "avgpool2d",
            Window::AvgPoolAdjoint { .. } => "avgpool2d_adjoint",
        }
    }

    /// The number of arguments.
    pub fn arity(self) -> usize {
        match self {
            Window::MaxPool2d { .. } | Window::AvgPool2d { .. } | Window::AvgPoolAdjoint { .. } => {
                1
            }
            _ => 2,
        }
    }

    /// The static parameters as the printer shows them.
    pub fn params_text(self) -> String {
        match self {
            Window::Conv2d { stride, padding } => format!("stride {stride} padding {padding}"),
            Window::Conv2dInput {
                stride,
                padding,
                h,
                w,
            } => format!("stride {stride} padding {padding} to {h}x{w}"),
            Window::Conv2dKernel {
                stride,
                padding,
                kh,
                kw,
            } => format!("stride {stride} padding {padding} kernel {kh}x{kw}"),
            Window::MaxPool2d { k, stride }
            | Window::MaxPoolGather { k, stride }
            | Window::MaxPoolScatter { k, stride }
            | Window::AvgPool2d { k, stride } => format!("k {k} stride {stride}"),
            Window::AvgPoolAdjoint { k, stride, h, w } => {
                format!("k {k} stride {stride} to {h}x{w}")
            }
        }
    }

    /// The geometry of the operation on arguments of these shapes, or why
    /// they do not fit.
    pub fn geometry(self, args: &[&Shape]) -> Result<Geometry, String> {
        if args.len() != self.arity() {
            return Err(format!(
                "takes {} arguments, got {}",
                self.arity(),
                args.len()
            ));
        }
        let m = self.mnemonic();
        let pool = |k: usize, stride: usize, x: &Shape| {
            let [c, h, w] = dims3(x, "input")?;
            Geometry::new([c, h, w], [c, k, k], stride, 0)
        };
        match self {
            Window::Conv2d { stride, padding } => {
                let x = dims3(args[0], "input")?;
                let [o, c, kh, kw] = match *args[1].dims() {
                    [o, c, kh, kw] => [o, c, kh, kw],
                    _ => return Err(format!("{m}: kernel {} is not [O, C, kh, kw]", args[1])),
                };
                if c != x[0] {
                    return Err(format!("{m}: input {} and kernel {}", args[0], args[1]));
                }
                Geometry::new(x, [o, kh, kw], stride, padding)
            }
            Window::Conv2dInput {
                stride,
                padding,
                h,
                w,
            } => {
                let [o, c, kh, kw] = match *args[1].dims() {
                    [o, c, kh, kw] => [o, c, kh, kw],
                    _ => return Err(format!("{m}: kernel {} is not [O, C, kh, kw]", args[1])),
                };
                let geo = Geometry::new([c, h, w], [o, kh, kw], stride, padding)?;
                expect(args[0], &geo.output(), "cotangent")?;
                Ok(geo)
            }
            Window::Conv2dKernel {
                stride,
                padding,
                kh,
                kw,
            } => {
                let x = dims3(args[0], "input")?;
                let o = dims3(args[1], "cotangent")?[0];
                let geo = Geometry::new(x, [o, kh, kw], stride, padding)?;
                expect(args[1], &geo.output(), "cotangent")?;
                Ok(geo)
            }
            Window::MaxPool2d { k, stride } | Window::AvgPool2d { k, stride } => {
                pool(k, stride, args[0])
            }
            Window::MaxPoolGather { k, stride } => {
                let geo = pool(k, stride, args[0])?;
                expect(args[1], &geo.input(), "operand")?;
                Ok(geo)
            }
            Window::MaxPoolScatter { k, stride } => {
                let geo = pool(k, stride, args[0])?;
                expect(args[1], &geo.output(), "cotangent")?;
                Ok(geo)
            }
            Window::AvgPoolAdjoint { k, stride, h, w } => {
                let c = dims3(args[0], "cotangent")?[0];
                let geo = Geometry::new([c, h, w], [c, k, k], stride, 0)?;
                expect(args[0], &geo.output(), "cotangent")?;
                Ok(geo)
            }
        }
    }

    /// The shape of the result on arguments of these shapes.
    pub fn result_shape(self, args: &[&Shape]) -> Result<Shape, String> {
        let geo = self.geometry(args)?;
        Ok(match self {
            Window::Conv2d { .. }
            | Window::MaxPool2d { .. }
            | Window::MaxPoolGather { .. }
            | Window::AvgPool2d { .. } => geo.output(),
            Window::Conv2dKernel { .. } => geo.kernel(),
            Window::Conv2dInput { .. }
            | Window::MaxPoolScatter { .. }
            | Window::AvgPoolAdjoint { .. } => geo.input(),
        })
    }

    /// Floating-point operations: a multiply and an add per term of a
    /// convolution, a comparison or an add per element of a window.
    pub fn flops(self, geo: &Geometry) -> u64 {
        let windows = (geo.o * geo.oh * geo.ow) as u64;
        let taps = (geo.kh * geo.kw) as u64;
        match self {
            Window::Conv2d { .. } | Window::Conv2dInput { .. } | Window::Conv2dKernel { .. } => {
                2 * windows * geo.c as u64 * taps
            }
            Window::MaxPool2d { .. }
            | Window::MaxPoolGather { .. }
            | Window::MaxPoolScatter { .. }
            | Window::AvgPool2d { .. }
            | Window::AvgPoolAdjoint { .. } => windows * taps,
        }
    }
}
