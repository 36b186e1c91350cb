//! Calls of the sliding-window builtins on `[C, H, W]` images:
//! `conv2d(x, kernel, stride = 1, padding = 0)` and `maxpool2d(x, k,
//! stride = k)`, `avgpool2d(x, k, stride = k)`. Their sizes are constant
//! integers, checked here; the shape rule ([`window_shape`]) names both
//! shapes when they do not fit.

use crate::diagnostic::Diagnostic;
use crate::shape::Shape;
use crate::span::Span;
use crate::syntax::ast;
use crate::types::axes::int;
use crate::types::builtins::Prim;
use crate::types::check::Checker;
use crate::types::expr::Env;
use crate::types::TExpr;

/// The largest size, stride or padding (so that no arithmetic on them
/// overflows; a window that large makes a tensor too large anyway).
const MAX_SIZE: i64 = 1 << 20;

/// The arguments of a call as bound to its parameters.
type Bound<'e> = [Option<&'e ast::Expr>];

impl Checker<'_> {
    /// `conv2d(x, kernel, stride = 1, padding = 0)`.
    pub(crate) fn conv2d_call(
        &mut self,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let stride = self.size_arg("conv2d", "stride", bound[2], 1, 1);
        let padding = self.size_arg("conv2d", "padding", bound[3], 0, 0);
        let x = self.expr(bound[0].expect("a required argument"), env);
        let kernel = self.expr(bound[1].expect("a required argument"), env);
        let (stride, padding) = (stride?, padding?);
        self.prim(Prim::Conv2d { stride, padding }, vec![x?, kernel?], span)
    }

    /// `maxpool2d(x, k, stride = k)`, or with `avg`, `avgpool2d`.
    pub(crate) fn pool2d_call(
        &mut self,
        avg: bool,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let name = if avg { "avgpool2d" } else { "maxpool2d" };
        let k_expr = bound[1].expect("a required argument");
        let k = self.size_arg(name, "k", Some(k_expr), 1, 1);
        let stride = match k {
            Some(k) => self.size_arg(name, "stride", bound[2], k, 1),
            None => None,
        };
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let (k, stride) = (k?, stride?);
        let prim = if avg {
            Prim::AvgPool2d { k, stride }
        } else {
            Prim::MaxPool2d { k, stride }
        };
        self.prim(prim, vec![x], span)
    }

    /// A size argument of a window builtin: a constant integer of at least
    /// `min`, or `default` when left out.
    fn size_arg(
        &mut self,
        name: &str,
        param: &str,
        e: Option<&ast::Expr>,
        default: usize,
        min: i64,
    ) -> Option<usize> {
        let Some(e) = e else {
            return Some(default);
        };
        match int(e) {
            Some(v) if (min..=MAX_SIZE).contains(&v) => usize::try_from(v).ok(),
            Some(v) if v > MAX_SIZE => {
                self.error(
                    Diagnostic::error(
                        e.span,
                        format!("the `{param}` of `{name}` must be at most {MAX_SIZE}, found {v}"),
                    )
                    .label(e.span, format!("{param} {v}")),
                );
                None
            }
            Some(v) => {
                self.error(
                    Diagnostic::error(
                        e.span,
                        format!("the `{param}` of `{name}` must be at least {min}, found {v}"),
                    )
                    .label(e.span, format!("{param} {v}")),
                );
                None
            }
            None => {
                self.error(
                    Diagnostic::error(
                        e.span,
                        format!("the `{param}` of `{name}` must be a constant integer"),
                    )
                    .label(e.span, "not a constant integer"),
                );
                None
            }
        }
    }
}

/// The result shape of a window builtin (`prim` one of them) on arguments
/// of these shapes, or a message that names the shapes.
pub(crate) fn window_shape(prim: Prim, args: &[&Shape]) -> Result<Shape, String> {
    let name = prim.name();
    let x = args[0];
    let [c, h, w] = *x.dims() else {
        let kernel = match args.get(1) {
            Some(k) => format!(" (kernel {k})"),
            None => String::new(),
        };
        return Err(format!(
            "`{name}` takes an image [C, H, W], found shape {x}{kernel}"
        ));
    };
    match prim {
        Prim::Conv2d { stride, padding } => {
            let kernel = args[1];
            let [o, kc, kh, kw] = *kernel.dims() else {
                return Err(format!(
                    "`conv2d` takes a kernel [O, C, kh, kw], found shape {kernel} (input {x})"
                ));
            };
            if kc != c {
                return Err(format!(
                    "`conv2d`: the input {x} has {c} channels but the kernel {kernel} takes {kc}"
                ));
            }
            let (ph, pw) = (h + 2 * padding, w + 2 * padding);
            if kh > ph || kw > pw {
                return Err(format!(
                    "`conv2d`: the kernel {kernel} is larger than the input {x} \
                     with padding {padding} ({ph} x {pw})"
                ));
            }
            let out = |n: usize, k: usize| (n - k) / stride + 1;
            Ok(Shape(vec![o, out(ph, kh), out(pw, kw)]))
        }
        Prim::MaxPool2d { k, stride } | Prim::AvgPool2d { k, stride } => {
            if k > h || k > w {
                return Err(format!(
                    "`{name}`: a {k} x {k} window is larger than the input {x}"
                ));
            }
            Ok(Shape(vec![c, (h - k) / stride + 1, (w - k) / stride + 1]))
        }
        _ => unreachable!("not a window builtin"),
    }
}
