//! Random well-typed programs: params with shapes and initialisers, inputs
//! (one of them maybe a class index), user functions, lets, a loss, metrics
//! and outputs, over every builtin of `types::builtins::names()` with the
//! right arities and shapes, `if`/`where`, indexing and slices with
//! constant bounds, `.T`, tensor literals, and now and then a train block.
//! Every subexpression is parenthesised, so precedence cannot change a shape.

use gradc::types::builtins::names;

use super::rng::R;

type Shape = Vec<usize>;

use crate::common::ELEMENTWISE as UNARY;
const BINARY_OPS: [&str; 11] = ["+", "-", "*", "/", "^", "==", "!=", "<", "<=", ">", ">="];
const REDUCTIONS: [&str; 6] = ["sum", "mean", "norm", "logsumexp", "max", "min"];
const LOSSES: [&str; 4] = ["mse", "bce", "bce_logits", "huber"];

/// Builtins the generator calls besides the elementwise ones (`UNARY`); a
/// test checks these and those are all of `names()`.
pub const CALLED: &[&str] = &[
    "grad",
    "jvp",
    "max",
    "min",
    "pow",
    "sum",
    "mean",
    "norm",
    "logsumexp",
    "softmax",
    "log_softmax",
    "argmax",
    "argmin",
    "one_hot",
    "dot",
    "einsum",
    "outer",
    "transpose",
    "reshape",
    "stack",
    "concat",
    "tril",
    "triu",
    "diag",
    "conv2d",
    "maxpool2d",
    "avgpool2d",
    "where",
    "mse",
    "bce",
    "bce_logits",
    "cross_entropy",
    "huber",
];

/// A user function: its name, parameter shapes (the one specialisation the
/// generator calls) and result shape.
struct UserFn {
    name: String,
    args: Vec<Shape>,
    result: Shape,
}

struct Gen<'r> {
    r: &'r mut R,
    /// Names in scope and their shapes.
    vars: Vec<(String, Shape)>,
    fns: Vec<UserFn>,
    /// The class input, if declared.
    class: Option<&'static str>,
    /// Nodes left before expressions stop growing.
    budget: usize,
    /// How much larger than usual expressions may grow (1, or 4 now and then).
    scale: usize,
    /// Loops' steps in scope, with their trip counts; and how many local
    /// names (carried values, steps, block lets) were made.
    steps: Vec<(String, usize)>,
    locals: usize,
    /// Sizes declared with `dim` (with a default), by name: shapes write
    /// some of their dimensions with them.
    sizes: Vec<(String, usize)>,
}

/// A random program.
pub fn program(r: &mut R) -> String {
    let mut g = Gen {
        r,
        vars: Vec::new(),
        fns: Vec::new(),
        class: None,
        budget: 0,
        scale: 1,
        steps: Vec::new(),
        locals: 0,
        sizes: Vec::new(),
    };
    if g.r.chance(0.1) {
        g.scale = 4;
    }
    let mut out = String::new();
    if g.r.chance(0.3) {
        for i in 0..g.r.range(1, 3) {
            let v = g.dim(4);
            out += &format!("dim D{i} = {v}\n");
            g.sizes.push((format!("D{i}"), v));
        }
    }
    for i in 0..g.r.range(1, 4) {
        let s = g.shape();
        let init = g.init(&s);
        out += &format!("param p{i}{}{init}\n", g.decl(&s));
        g.vars.push((format!("p{i}"), s));
    }
    for i in 0..g.r.range(0, 3) {
        let s = g.shape();
        out += &format!("input x{i}{}\n", g.decl(&s));
        g.vars.push((format!("x{i}"), s));
    }
    if g.r.chance(0.4) {
        out += "input c\n";
        g.class = Some("c");
    }
    let globals = std::mem::take(&mut g.vars);
    for i in 0..g.r.range(0, 2) {
        let args: Vec<Shape> = (0..g.r.range(1, 3))
            .map(|_| g.shape_near(&globals))
            .collect();
        let result = if g.r.chance(0.5) {
            args[g.r.below(args.len())].clone()
        } else {
            g.shape()
        };
        let names: Vec<String> = (0..args.len()).map(|k| format!("a{k}")).collect();
        g.vars = names.iter().cloned().zip(args.iter().cloned()).collect();
        let class = g.class.take();
        g.budget = 8 * g.scale;
        let body = g.expr(&result, 3);
        g.class = class;
        out += &format!("fn f{i}({}) = {body}\n", names.join(", "));
        g.fns.push(UserFn {
            name: format!("f{i}"),
            args,
            result,
        });
    }
    g.vars = globals;
    for i in 0..g.r.range(0, 4) {
        let s = g.shape_near(&g.vars.clone());
        g.budget = 12 * g.scale;
        let e = g.expr(&s, 3 + g.scale as u32);
        out += &format!("let l{i} = {e}\n");
        g.vars.push((format!("l{i}"), s));
    }
    g.budget = 16 * g.scale;
    let mut loss = g.expr(&[], 3 + g.scale as u32);
    if g.r.chance(0.7) {
        // A term in a parameter, so that the gradient is not trivially zero.
        let p = g.vars.iter().filter(|(n, _)| n.starts_with('p')).count();
        let (name, s) = g.vars[g.r.below(p)].clone();
        let f = *g.r.pick(&["sum", "mean", "norm", "max", "logsumexp"]);
        g.budget = 6 * g.scale;
        let e = g.expr(&s, 2);
        let e = if g.r.chance(0.5) {
            format!("({name} * {e})")
        } else {
            e
        };
        loss = if s.is_empty() {
            format!("({loss} + {e})")
        } else {
            format!("({loss} + {f}({e}))")
        };
    }
    out += &format!("loss {loss}\n");
    for i in 0..g.r.range(0, 1) {
        g.budget = 6 * g.scale;
        out += &format!("metric m{i} = {}\n", g.expr(&[], 3));
    }
    for i in 0..g.r.range(0, 2) {
        let s = g.shape_near(&g.vars.clone());
        g.budget = 6 * g.scale;
        out += &format!("output o{i} = {}\n", g.expr(&s, 3));
    }
    if g.r.chance(0.1) {
        out += "train {\n  optimizer = adam(lr = 0.01)\n  steps = 3\n  seed = 5\n}\n";
    }
    out
}

impl Gen<'_> {
    /// `: [2, 3]`, or nothing for a scalar; a dimension equal to a size (or
    /// to twice one) is written with it now and then: `[D0, 2 * D1]`.
    fn decl(&mut self, s: &[usize]) -> String {
        if s.is_empty() {
            return String::new();
        }
        let dims: Vec<String> = s
            .iter()
            .map(|&d| {
                let named = self.sizes.iter().find(|(_, v)| *v == d).cloned();
                let twice = self.sizes.iter().find(|(_, v)| 2 * v == d).cloned();
                match (named, twice) {
                    (Some((n, _)), _) if self.r.chance(0.6) => n,
                    (_, Some((n, _))) if self.r.chance(0.6) => format!("2 * {n}"),
                    _ => d.to_string(),
                }
            })
            .collect();
        format!(": [{}]", dims.join(", "))
    }

    fn shape(&mut self) -> Shape {
        match self.r.below(10) {
            0..=2 => vec![],
            3..=6 => vec![self.dim(4)],
            7..=8 => vec![self.dim(3), self.dim(4)],
            _ => vec![2, self.r.range(1, 3) as usize, 2],
        }
    }

    /// A dimension: mostly 1 to `small`, now and then one past the
    /// backend's blocks of 4 rows and 8 columns, with and without a tail.
    fn dim(&mut self, small: i64) -> usize {
        if self.r.chance(0.15) {
            *self.r.pick(&[5, 6, 8, 9, 12, 16, 17])
        } else {
            self.r.range(1, small) as usize
        }
    }

    /// A shape, most often one of the names in scope.
    fn shape_near(&mut self, vars: &[(String, Shape)]) -> Shape {
        if !vars.is_empty() && self.r.chance(0.6) {
            self.r.pick(vars).1.clone()
        } else {
            self.shape()
        }
    }

    fn init(&mut self, s: &[usize]) -> String {
        let size: usize = s.iter().product();
        match self.r.below(9) {
            0 => String::new(),
            1 => " = zeros".into(),
            2 => " = ones".into(),
            3 => format!(" = {}", self.r.pick(&["0.5", "-1", "+7", "1e-3", "2"])),
            4 => " = normal(0, 1)".into(),
            5 => " = uniform(-2, 2)".into(),
            6 if s.len() == 2 => " = glorot".into(),
            7 if s.len() == 2 => " = he".into(),
            _ if !s.is_empty() && size <= 6 => {
                format!(" = {}", literal(self.r, s).replace("(-1)", "-1"))
            }
            _ => " = normal(0.5, 2)".into(),
        }
    }

    fn number(&mut self) -> String {
        number(self.r)
    }

    /// A name in scope of shape `s`.
    fn var(&mut self, s: &[usize]) -> Option<String> {
        let names: Vec<&String> = self
            .vars
            .iter()
            .filter(|(_, v)| v == s)
            .map(|(n, _)| n)
            .collect();
        (!names.is_empty()).then(|| self.r.pick(&names).to_string())
    }

    /// A name in scope of rank `rank`.
    fn var_of_rank(&mut self, rank: usize) -> Option<(String, Shape)> {
        let vs: Vec<&(String, Shape)> = self.vars.iter().filter(|(_, v)| v.len() == rank).collect();
        (!vs.is_empty()).then(|| self.r.pick(&vs).to_owned().clone())
    }

    /// An expression of shape `s`.
    fn expr(&mut self, s: &[usize], depth: u32) -> String {
        if depth == 0 || self.budget == 0 || self.r.chance(0.2) {
            return self.leaf(s);
        }
        self.budget -= 1;
        let d = depth - 1;
        if self.r.chance(0.45) {
            if let Some(e) = self.special(s, d) {
                return e;
            }
        }
        self.generic(s, d)
    }

    /// An expression of shape `s`: a name, a number or a tensor literal.
    fn leaf(&mut self, s: &[usize]) -> String {
        if self.r.chance(0.75) {
            if let Some(v) = self.var(s) {
                return v;
            }
        }
        if s.is_empty() {
            if self.r.chance(0.3) {
                // A scalar from a name of any shape, by a reduction or an index.
                let rank = 1 + self.r.below(2);
                if let Some((v, vs)) = self.var_of_rank(rank) {
                    let idx: Vec<String> = vs
                        .iter()
                        .map(|&n| {
                            let i = self.r.range(-(n as i64), n as i64 - 1);
                            i.to_string()
                        })
                        .collect();
                    return format!("{v}[{}]", idx.join(", "));
                }
            }
            if !self.sizes.is_empty() && self.r.chance(0.1) {
                // A size as a number.
                let i = self.r.below(self.sizes.len());
                return self.sizes[i].0.clone();
            }
            return self.number();
        }
        if self.r.chance(0.6) {
            if let Some(e) = self.part_of_a_name(s) {
                return e;
            }
        }
        let size: usize = s.iter().product();
        if size <= 8 && self.r.chance(0.5) {
            return literal(self.r, s);
        }
        // A scalar broadcast against a constant tensor.
        let k = self.leaf(&[]);
        format!("({k} * {})", literal(self.r, s))
    }

    /// A vector or matrix of shape `s` cut from a name in scope: a slice,
    /// a row, a column, a transpose.
    fn part_of_a_name(&mut self, s: &[usize]) -> Option<String> {
        let mut options = Vec::new();
        for (name, v) in &self.vars {
            match (s, &v[..]) {
                ([n], [len]) if len >= n => options.push((name.clone(), 0, v.clone())),
                ([n], [_, cols]) if cols == n => options.push((name.clone(), 1, v.clone())),
                ([n], [rows, _]) if rows == n => options.push((name.clone(), 2, v.clone())),
                ([m, n], [a, b]) if a == n && b == m => options.push((name.clone(), 3, v.clone())),
                ([m, n], [a, b]) if a >= m && b >= n => options.push((name.clone(), 4, v.clone())),
                _ => {}
            }
        }
        if options.is_empty() {
            return None;
        }
        let (name, kind, v) = self.r.pick(&options).clone();
        Some(match kind {
            0 => format!("{name}[{}]", self.range(s[0], v[0])),
            1 => format!("{name}[{}, :]", self.r.below(v[0])),
            2 => format!(
                "{name}[:, {}]",
                self.r.range(-(v[1] as i64), v[1] as i64 - 1)
            ),
            3 => format!("{name}.T"),
            _ => {
                let (a, b) = (self.range(s[0], v[0]), self.range(s[1], v[1]));
                format!("{name}[{a}, {b}]")
            }
        })
    }

    /// A fresh local name: `PREFIX` and a number.
    fn local(&mut self, prefix: &str) -> String {
        self.locals += 1;
        format!("{prefix}{}", self.locals)
    }

    /// A loop of shape `s`: a carried value, updated by an expression of
    /// it and of the step (sometimes through a block `let`), or a
    /// comprehension stacking one value per step.
    fn a_loop(&mut self, s: &[usize], d: u32) -> String {
        // (Prefixes no other generated name has: a local shadows.)
        let (acc, t) = (self.local("acc"), self.local("st"));
        if !s.is_empty() && self.r.chance(0.4) {
            let n = s[0];
            self.vars.push((t.clone(), vec![]));
            self.steps.push((t.clone(), n));
            let value = self.expr(&s[1..], d);
            self.steps.pop();
            self.vars.pop();
            return format!("[{value} for {t} in 0..{n}]");
        }
        let n = self.r.below(5);
        let init = self.expr(s, d);
        self.vars.push((acc.clone(), s.to_vec()));
        self.vars.push((t.clone(), vec![]));
        self.steps.push((t.clone(), n));
        let step = self.expr(s, d);
        let body = if self.r.chance(0.3) {
            let b = self.local("bl");
            let extra = self.expr(s, d);
            format!("{{ let {b} = {step}; {acc} * 0.5 + {b} * {extra} }}")
        } else {
            format!("{{ {acc} * 0.5 + {step} }}")
        };
        self.steps.pop();
        self.vars.pop();
        self.vars.pop();
        format!("(loop {acc} = {init} for {t} in 0..{n} {body})")
    }

    /// A row `x[t]` of shape `s` of a name in scope, read at a loop's step.
    fn row_at_a_step(&mut self, s: &[usize]) -> Option<String> {
        let mut options = Vec::new();
        for (name, v) in &self.vars {
            if let Some((&rows, rest)) = v.split_first() {
                for (t, trips) in &self.steps {
                    if rest == s && *trips <= rows {
                        options.push(format!("{name}[{t}]"));
                    }
                }
            }
        }
        (!options.is_empty()).then(|| self.r.pick(&options).clone())
    }

    /// Operations of any shape.
    fn generic(&mut self, s: &[usize], d: u32) -> String {
        if self.r.chance(0.08) {
            return self.a_loop(s, d);
        }
        if self.r.chance(0.04) {
            // The derivative of a scalar with respect to a name in scope
            // (not a loop's step: an integer).
            let names: Vec<String> = self
                .vars
                .iter()
                .filter(|(n, v)| v == s && !self.steps.iter().any(|(t, _)| t == n))
                .map(|(n, _)| n.clone())
                .collect();
            if !names.is_empty() {
                let v = self.r.pick(&names).clone();
                let e = self.expr(s, d);
                if self.r.chance(0.5) {
                    // A Jacobian-vector product: forward mode.
                    let dir = self.expr(s, d);
                    return format!("jvp({e} * {v}, {v}, {dir})");
                }
                let f = *self.r.pick(&["sum", "mean", "logsumexp"]);
                return format!("grad({f}({e} * {v}), {v})");
            }
        }
        if s.len() >= 2 && self.r.chance(0.05) {
            // The axes of an expression reordered: axis i of the result is
            // axis perm[i] of the argument.
            let mut perm: Vec<usize> = (0..s.len()).collect();
            for i in (1..perm.len()).rev() {
                let j = self.r.below(i + 1);
                perm.swap(i, j);
            }
            let mut t = vec![0; s.len()];
            for (i, &p) in perm.iter().enumerate() {
                t[p] = s[i];
            }
            let axes: Vec<String> = perm.iter().map(|p| p.to_string()).collect();
            return format!(
                "transpose({}, axes = [{}])",
                self.expr(&t, d),
                axes.join(", ")
            );
        }
        if s.len() <= 2 && self.r.chance(0.04) {
            // A triangle of a matrix, a vector's diagonal matrix, a
            // matrix's diagonal.
            return match s {
                [m, n] if self.r.chance(0.5) => {
                    let f = self.r.pick(&["tril", "triu"]);
                    let k = self.r.range(-2, 2);
                    format!("{f}({}, k = {k})", self.expr(&[*m, *n], d))
                }
                [n, m] if n == m => format!("diag({})", self.expr(&[*n], d)),
                [n] => {
                    let cols = *n + self.r.below(2);
                    format!("diag({})", self.expr(&[*n, cols], d))
                }
                _ => self.expr(s, d),
            };
        }
        if s.iter().product::<usize>() <= 8 && self.r.chance(0.04) {
            return self.window(s, d);
        }
        if !s.is_empty() && self.r.chance(0.05) {
            // Tensors joined along an axis: stacked (a new axis, of the
            // length of the list), or concatenated (pieces of an axis).
            let a = self.r.below(s.len());
            let n = s[a];
            if self.r.chance(0.5) {
                let mut rest = s.to_vec();
                rest.remove(a);
                let parts: Vec<String> = (0..n).map(|_| self.expr(&rest, d)).collect();
                return format!("stack({}, axis = {a})", parts.join(", "));
            }
            let cut = 1 + self.r.below(n);
            let (mut x, mut y) = (s.to_vec(), s.to_vec());
            x[a] = cut;
            y[a] = n - cut;
            if y[a] == 0 {
                return format!("concat({}, axis = {a})", self.expr(&x, d));
            }
            let (p, q) = (self.expr(&x, d), self.expr(&y, d));
            return format!("concat({p}, {q}, axis = {a})");
        }
        if !s.is_empty() && self.r.chance(0.05) {
            // The same elements from a vector, one dimension maybe -1.
            let size: usize = s.iter().product();
            let wild = self.r.below(s.len() + 1);
            let dims: Vec<String> = s
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if i == wild {
                        "-1".into()
                    } else {
                        n.to_string()
                    }
                })
                .collect();
            return format!("reshape({}, [{}])", self.expr(&[size], d), dims.join(", "));
        }
        if !self.steps.is_empty() && self.r.chance(0.3) {
            if let Some(e) = self.row_at_a_step(s) {
                return e;
            }
        }
        match self.r.below(9) {
            0 | 1 => {
                let f = *self.r.pick(UNARY);
                let x = self.expr(s, d);
                // The optional arguments, by position or by keyword.
                let k = *self.r.pick(&["0.1", "0", "2", "(-1)"]);
                match (f, self.r.below(3)) {
                    ("leaky_relu", 0) => format!("leaky_relu({x}, {k})"),
                    ("leaky_relu", 1) => format!("leaky_relu({x}, slope = {k})"),
                    ("elu", 0) => format!("elu({x}, alpha = {k})"),
                    ("clip", 0) => format!("clip({x}, {k}, 1)"),
                    ("clip", 1) => format!("clip({x}, hi = {k})"),
                    ("clip", _) => format!("clip({x}, lo = (-1), hi = {k})"),
                    _ => format!("{f}({x})"),
                }
            }
            2 => format!("(-{})", self.expr(s, d)),
            3..=5 => {
                let op = *self.r.pick(&BINARY_OPS);
                if op == "^" && self.r.chance(0.5) {
                    // A small constant power, the common case.
                    let a = self.expr(s, d);
                    return format!("({a} ^ {})", self.r.pick(&["2", "3", "0.5", "(-1)", "0"]));
                }
                let (a, b) = self.operands(s, d);
                format!("({a} {op} {b})")
            }
            6 => {
                let f = *self.r.pick(&["max", "min", "pow"]);
                let (a, b) = self.operands(s, d);
                format!("{f}({a}, {b})")
            }
            7 => {
                let c = match self.r.below(3) {
                    0 => vec![],
                    1 => s.to_vec(),
                    _ => self.stretched(s),
                };
                let cond = self.condition(&c, d);
                let (a, b) = self.operands(s, d);
                if self.r.chance(0.5) {
                    format!("(if {cond} then {a} else {b})")
                } else {
                    format!("where({cond}, {a}, {b})")
                }
            }
            _ => match self.call_user(s, d) {
                Some(e) => e,
                None => self.leaf(s),
            },
        }
    }

    /// Two operands whose broadcast is `s`: one of them now and then a
    /// scalar, or a shape that NumPy's rules stretch to `s`.
    fn operands(&mut self, s: &[usize], d: u32) -> (String, String) {
        let a = self.expr(s, d);
        let bs: Shape = if !s.is_empty() && self.r.chance(0.3) {
            vec![]
        } else if !s.is_empty() && self.r.chance(0.3) {
            self.stretched(s)
        } else {
            s.to_vec()
        };
        let b = self.expr(&bs, d);
        if self.r.chance(0.5) {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// A shape that broadcasts to `s`: some of its axes length 1, some
    /// leading ones left out.
    fn stretched(&mut self, s: &[usize]) -> Shape {
        let lead = self.r.below(s.len() + 1);
        s[lead..]
            .iter()
            .map(|&n| if self.r.chance(0.4) { 1 } else { n })
            .collect()
    }

    fn condition(&mut self, s: &[usize], d: u32) -> String {
        let op = *self.r.pick(&["<", "<=", ">", ">=", "==", "!="]);
        let a = self.expr(s, d.min(1));
        let b = self.leaf(&[]);
        format!("({a} {op} {b})")
    }

    /// A convolution or a pooling of shape `s`: of rank 3 itself, else
    /// reshaped from `[1, 1, n]` (summed for a scalar). The image's size is
    /// the one that gives `s`, a row or column more now and then that no
    /// window reaches.
    fn window(&mut self, s: &[usize], d: u32) -> String {
        let [c, oh, ow] = *s else {
            let n: usize = s.iter().product();
            let inner = self.window(&[1, 1, n], d);
            return match s {
                [] => format!("sum({inner})"),
                _ => {
                    let dims: Vec<String> = s.iter().map(|n| n.to_string()).collect();
                    format!("reshape({inner}, [{}])", dims.join(", "))
                }
            };
        };
        let stride = 1 + self.r.below(2);
        let (k, spare) = (1 + self.r.below(3), self.r.below(stride));
        if self.r.chance(0.5) {
            let f = self.r.pick(&["maxpool2d", "avgpool2d"]);
            let (h, w) = ((oh - 1) * stride + k + spare, (ow - 1) * stride + k);
            let x = self.expr(&[c, h, w], d);
            return format!("{f}({x}, {k}, stride = {stride})");
        }
        let channels = 1 + self.r.below(2);
        // Padding, where the image keeps at least one row and column.
        let (reach_h, reach_w) = ((oh - 1) * stride + k, (ow - 1) * stride + k);
        let padding = self.r.below(2).min((reach_h.min(reach_w) - 1) / 2);
        let (h, w) = (reach_h - 2 * padding + spare, reach_w - 2 * padding);
        let x = self.expr(&[channels, h, w], d);
        let kernel = self.expr(&[c, channels, k, k], d);
        format!("conv2d({x}, {kernel}, stride = {stride}, padding = {padding})")
    }

    fn call_user(&mut self, s: &[usize], d: u32) -> Option<String> {
        let candidates: Vec<usize> = (0..self.fns.len())
            .filter(|&k| self.fns[k].result == s)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let k = *self.r.pick(&candidates);
        let args = self.fns[k].args.clone();
        let name = self.fns[k].name.clone();
        let args: Vec<String> = args.iter().map(|a| self.expr(a, d.min(1))).collect();
        Some(format!("{name}({})", args.join(", ")))
    }

    /// A class index: a constant in range, or the class input.
    fn class_index(&mut self, n: usize) -> String {
        match self.class {
            Some(c) if self.r.chance(0.7) => c.to_string(),
            _ => self.r.below(n).to_string(),
        }
    }

    /// Operations particular to the rank of `s`, if one fits.
    fn special(&mut self, s: &[usize], d: u32) -> Option<String> {
        match *s {
            [] => Some(self.scalar(d)),
            [n] => self.vector(n, d),
            [m, n] => self.matrix(m, n, d),
            [ref batch @ .., m, n] if self.r.chance(0.5) => {
                // A stack of products, the batch axes of either side
                // stretched or left out.
                let k = self.dim(3);
                let (mut left, mut right) = (batch.to_vec(), self.stretched(batch));
                if self.r.chance(0.5) {
                    std::mem::swap(&mut left, &mut right);
                }
                left.extend([m, k]);
                right.extend([k, n]);
                let (a, b) = (self.expr(&left, d), self.expr(&right, d));
                Some(format!("({a} @ {b})"))
            }
            _ => None,
        }
    }

    fn scalar(&mut self, d: u32) -> String {
        let any = self.shape_near(&self.vars.clone());
        match self.r.below(8) {
            0 | 1 => {
                if self.r.chance(0.1) {
                    // The flat index of the largest or smallest element.
                    let f = self.r.pick(&["argmax", "argmin"]);
                    return format!("{f}({})", self.expr(&any, d));
                }
                let f = *self.r.pick(&REDUCTIONS);
                format!("{f}({})", self.expr(&any, d))
            }
            2 => {
                let n = self.dim(4);
                format!("dot({}, {})", self.expr(&[n], d), self.expr(&[n], d))
            }
            3 | 4 => {
                let f = *self.r.pick(&LOSSES);
                let (a, b) = self.operands(&any, d);
                if f == "huber" && self.r.chance(0.5) {
                    let delta = self.r.pick(&["0.5", "1", "2", "0"]);
                    if self.r.chance(0.5) {
                        return format!("huber({a}, {b}, delta = {delta})");
                    }
                    return format!("huber({a}, {b}, {delta})");
                }
                format!("{f}({a}, {b})")
            }
            5 => {
                let n = self.dim(4);
                let c = self.class_index(n);
                format!("cross_entropy({}, {c})", self.expr(&[n], d))
            }
            6 => {
                // An element of an expression.
                let e = self.expr(&any, d);
                if any.is_empty() {
                    return e;
                }
                let idx: Vec<String> = any
                    .iter()
                    .map(|&n| self.r.range(-(n as i64), n as i64 - 1).to_string())
                    .collect();
                format!("({e})[{}]", idx.join(", "))
            }
            _ => {
                let n = self.dim(4);
                let c = self.class_index(n);
                format!("dot(one_hot({c}, {n}), {})", self.expr(&[n], d))
            }
        }
    }

    fn vector(&mut self, n: usize, d: u32) -> Option<String> {
        Some(match self.r.below(8) {
            0 => {
                let f = self.r.pick(&["softmax", "log_softmax"]);
                format!("{f}({})", self.expr(&[n], d))
            }
            1 if self.r.chance(0.3) => {
                let k = self.dim(4);
                let (a, b) = (self.expr(&[n, k], d), self.expr(&[k], d));
                let spec = self.r.pick(&["ij,j->i", "ij,j", "ab,b"]);
                format!("einsum(\"{spec}\", {a}, {b})")
            }
            1 => {
                let k = self.dim(4);
                format!("({} @ {})", self.expr(&[n, k], d), self.expr(&[k], d))
            }
            2 => {
                let k = self.dim(4);
                format!("({} @ {})", self.expr(&[k], d), self.expr(&[k, n], d))
            }
            3 => {
                let c = self.class_index(n);
                format!("one_hot({c}, {n})")
            }
            4 => {
                // A slice of a longer vector.
                let len = n + self.r.below(3);
                let e = self.expr(&[len], d);
                format!("({e})[{}]", self.range(n, len))
            }
            5 => {
                // A row or a column of a matrix.
                let m = self.dim(3);
                let i = self.r.range(-(m as i64), m as i64 - 1);
                if self.r.chance(0.5) {
                    let e = self.expr(&[m, n], d);
                    let form = self.r.pick(&["", ", :"]);
                    format!("({e})[{i}{form}]")
                } else {
                    let e = self.expr(&[n, m], d);
                    format!("({e})[:, {i}]")
                }
            }
            6 => {
                let items: Vec<String> = (0..n).map(|_| self.expr(&[], d.min(1))).collect();
                format!("[{}]", items.join(", "))
            }
            _ if self.r.chance(0.5) => {
                // Along an axis of a matrix: a reduction or an argmax.
                let k = self.dim(3);
                let (shape, axis) = if self.r.chance(0.5) {
                    ([n, k], *self.r.pick(&["1", "-1", "[1]"]))
                } else {
                    ([k, n], *self.r.pick(&["0", "-2", "[-2]"]))
                };
                let e = self.expr(&shape, d);
                if self.r.chance(0.25) && !axis.starts_with('[') {
                    let f = self.r.pick(&["argmax", "argmin"]);
                    format!("{f}({e}, axis = {axis})")
                } else {
                    let f = *self.r.pick(&REDUCTIONS);
                    format!("{f}({e}, axis = {axis})")
                }
            }
            _ => return None,
        })
    }

    fn matrix(&mut self, m: usize, n: usize, d: u32) -> Option<String> {
        Some(match self.r.below(7) {
            0 => format!("outer({}, {})", self.expr(&[m], d), self.expr(&[n], d)),
            1 if self.r.chance(0.3) => {
                // A contraction, the second operand stored either way round.
                let k = self.dim(3);
                let a = self.expr(&[m, k], d);
                if self.r.chance(0.5) {
                    format!("einsum(\"ik,kj->ij\", {a}, {})", self.expr(&[k, n], d))
                } else {
                    format!("einsum(\"ik,jk\", {a}, {})", self.expr(&[n, k], d))
                }
            }
            1 => {
                let k = self.dim(3);
                format!("({} @ {})", self.expr(&[m, k], d), self.expr(&[k, n], d))
            }
            2 => format!("transpose({})", self.expr(&[n, m], d)),
            3 => match self.var(&[n, m]) {
                Some(v) => format!("{v}.T"),
                None => format!("({}).T", self.expr(&[n, m], d)),
            },
            4 => {
                let (rows, cols) = (m + self.r.below(2), n + self.r.below(2));
                let e = self.expr(&[rows, cols], d);
                let (a, b) = (self.range(m, rows), self.range(n, cols));
                format!("({e})[{a}, {b}]")
            }
            5 => {
                let rows: Vec<String> = (0..m)
                    .map(|_| {
                        let items: Vec<String> = (0..n).map(|_| self.expr(&[], d.min(1))).collect();
                        format!("[{}]", items.join(", "))
                    })
                    .collect();
                format!("[{}]", rows.join(", "))
            }
            _ if self.r.chance(0.5) => {
                let axis = *self.r.pick(&["0", "1", "-1", "-2"]);
                if (m == 1 || n == 1) && self.r.chance(0.5) {
                    // A reduction that keeps its axis, with length 1.
                    let (shape, axis) = if n == 1 {
                        ([m, self.dim(3)], "1")
                    } else {
                        ([self.dim(3), n], "0")
                    };
                    let f = *self.r.pick(&REDUCTIONS);
                    let e = self.expr(&shape, d);
                    return Some(format!("{f}({e}, axis = {axis}, keepdims = true)"));
                }
                let f = self.r.pick(&["softmax", "log_softmax"]);
                format!("{f}({}, axis = {axis})", self.expr(&[m, n], d))
            }
            _ => return None,
        })
    }

    /// A slice of `n` elements of an axis of length `len`, in any of the
    /// forms: `a:b`, `a:`, `:b`, `:`, negative bounds.
    fn range(&mut self, n: usize, len: usize) -> String {
        let a = self.r.below(len - n + 1);
        let b = a + n;
        let (a, b) = (a as i64, b as i64);
        let neg = |x: i64| x - len as i64;
        let lo = match self.r.below(3) {
            0 if a == 0 => String::new(),
            1 if a > 0 => neg(a).to_string(),
            _ => a.to_string(),
        };
        let hi = match self.r.below(3) {
            0 if b == len as i64 => String::new(),
            1 if b < len as i64 => neg(b).to_string(),
            _ => b.to_string(),
        };
        format!("{lo}:{hi}")
    }
}

/// A number as the source writes it.
fn number(r: &mut R) -> String {
    match r.below(12) {
        0 => "0".into(),
        1 => "1".into(),
        2 => "2".into(),
        3 => "0.5".into(),
        4 => "1.5e-3".into(),
        5 => "3".into(),
        6 => "10".into(),
        7 => "1e3".into(),
        8 => format!("{}", r.range(0, 99)),
        9 => format!("{}.{}", r.range(0, 9), r.range(0, 999)),
        10 => "(-1)".into(),
        _ => format!("{:.3}", r.normal().abs()),
    }
}

/// A tensor literal of numbers.
fn literal(r: &mut R, s: &[usize]) -> String {
    match s {
        [] => number(r),
        [n, rest @ ..] => {
            let items: Vec<String> = (0..*n).map(|_| literal(r, rest)).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every builtin of the language is generated (so a new one makes this
    /// fail until the generator calls it).
    #[test]
    fn every_builtin_is_generated() {
        let mut missing: Vec<&str> = names()
            .filter(|n| !CALLED.contains(n) && !UNARY.contains(n))
            .collect();
        missing.sort();
        assert!(missing.is_empty(), "not generated: {missing:?}");
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..400 {
            let p = program(&mut R::new(seed));
            for name in CALLED.iter().chain(UNARY) {
                if p.contains(&format!("{name}(")) {
                    seen.insert(*name);
                }
            }
        }
        let unseen: Vec<&&str> = CALLED
            .iter()
            .chain(UNARY)
            .filter(|n| !seen.contains(*n))
            .collect();
        assert!(
            unseen.is_empty(),
            "never generated in 400 programs: {unseen:?}"
        );
    }

    /// Operands that broadcast and stacks of matrices under `@` are among
    /// the generated programs: their IR repeats along axes and multiplies
    /// pairs of matrices in a loop.
    #[test]
    fn broadcasting_and_stacked_products_are_generated() {
        let (mut repeated, mut stacked) = (0, 0);
        for seed in 0..200 {
            let p = program(&mut R::new(seed));
            let Ok(c) = gradc::compile(&p) else { continue };
            let ir = c.ir.to_string();
            repeated += usize::from(ir.contains("broadcast_axes"));
            stacked += usize::from(ir.contains("output product"));
        }
        assert!(repeated >= 10 && stacked >= 5, "{repeated} {stacked}");
    }

    /// Every generated program compiles (one that does not is a bug of the
    /// generator or of the checker).
    #[test]
    fn generated_programs_compile() {
        let mut failures = Vec::new();
        // Programs whose shapes use sizes, and whose expressions do.
        let (mut in_shapes, mut as_numbers) = (0, 0);
        for seed in 0..200 {
            let p = program(&mut R::new(seed));
            let (decls, rest) = p.split_at(p.find("loss").unwrap_or(0));
            in_shapes += usize::from(decls.contains(": [D") || decls.contains("* D"));
            as_numbers += usize::from(
                rest.split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == "D0" || w == "D1"),
            );
            if let Err(d) = gradc::compile(&p) {
                failures.push(format!(
                    "{p}\n{}",
                    gradc::diagnostic::render_all(&d, "gen.grad", &p, false)
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        assert!(in_shapes >= 10, "{in_shapes} programs with sizes in shapes");
        assert!(
            as_numbers >= 2,
            "{as_numbers} programs with sizes as numbers"
        );
    }
}
