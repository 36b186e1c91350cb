//! Binding a call's arguments to the callee's parameters: positional ones in
//! order, then keyword ones by name (`huber(p, y, delta = 0.5)`), optional
//! parameters left out. The same rules for builtins and user functions.

use crate::diagnostic::{closest, Diagnostic};
use crate::span::Span;
use crate::syntax::ast::{Arg, Expr};
use crate::types::builtins::Signature;

/// What a call is bound against: a callee's name and parameters.
pub(crate) struct Callee<'a> {
    pub name: &'a str,
    /// Parameter names, in order.
    pub params: Vec<&'a str>,
    /// The first `required` parameters must be given; the rest are optional.
    pub required: usize,
    /// What the callee accepts, for an arity error: `2 or 3 arguments
    /// (prediction, target, delta = 1)`.
    pub accepts: String,
    /// The call as shown in hints: `huber(prediction, target, delta = 1)`.
    pub shown: String,
    /// Where a user function is defined, labelled in arity errors.
    pub def: Option<Span>,
}

impl Callee<'_> {
    /// A builtin's signature.
    pub fn builtin(sig: &Signature) -> Callee<'static> {
        Callee {
            name: sig.name,
            params: sig.params.iter().map(|p| p.name).collect(),
            required: sig.required(),
            accepts: crate::types::builtins::arity_text(std::slice::from_ref(sig)),
            shown: format!("{}({})", sig.name, sig.params_text()),
            def: None,
        }
    }

    /// A user function `fn name(params) = ...` defined at `def`.
    pub fn user<'a>(name: &'a str, params: &'a [String], def: Span) -> Callee<'a> {
        let list = params.join(", ");
        let n = params.len();
        Callee {
            name,
            params: params.iter().map(String::as_str).collect(),
            required: n,
            accepts: format!("{} ({list})", plural(n, "argument")),
            shown: format!("{name}({list})"),
            def: Some(def),
        }
    }
}

/// The signature a call of a builtin with `args` binds to: its only one,
/// or for an overloaded builtin (`max(x, axis = none, keepdims = false)`,
/// `max(a, b)`) one that takes this many arguments and has a parameter of
/// every keyword given, the first that needs exactly this many if there is
/// one (so `max(x, 0)` is elementwise and `max(x, axis = 0)` a reduction);
/// `None` when none fits.
pub(crate) fn choose<'s>(sigs: &'s [Signature], args: &[Arg]) -> Option<&'s Signature> {
    let n = args.len();
    let fits = |s: &&Signature| {
        (s.required()..=s.params.len()).contains(&n)
            && args
                .iter()
                .filter_map(|a| a.name.as_ref())
                .all(|k| s.params.iter().any(|p| p.name == k.name))
    };
    match sigs {
        [only] => Some(only),
        _ => sigs
            .iter()
            .filter(fits)
            .find(|s| s.required() == n)
            .or_else(|| sigs.iter().find(fits)),
    }
}

/// The arity error of a call of `name` (spanning `call`) with `nargs`
/// arguments, where `accepts` says what it takes.
pub(crate) fn arity_error(name: &str, accepts: &str, nargs: usize, call: Span) -> Diagnostic {
    Diagnostic::error(
        call,
        format!("`{name}` takes {accepts}, but {} given", count(nargs)),
    )
    .label(call, plural(nargs, "argument"))
}

/// Binds `args` to the parameters of `callee`: one entry per parameter, in
/// parameter order, `None` for an optional one left out. The first problem
/// found is the error: a positional argument after a keyword one, too many
/// arguments, an unknown keyword, a parameter given twice, or a required one
/// missing.
pub(crate) fn bind<'e>(
    callee: &Callee<'_>,
    args: &'e [Arg],
    call: Span,
) -> Result<Vec<Option<&'e Expr>>, Diagnostic> {
    let with_def = |d: Diagnostic| match callee.def {
        Some(def) => d.label(def, "defined here"),
        None => d,
    };
    let name = callee.name;
    // Positional arguments come first.
    if let Some(k) = args.iter().position(|a| a.name.is_some()) {
        if let Some(late) = args[k..].iter().find(|a| a.name.is_none()) {
            let kw = args[k].name.as_ref().map_or(args[k].span(), |n| n.span);
            return Err(Diagnostic::error(
                late.span(),
                "positional argument after a keyword argument",
            )
            .label(late.span(), "positional")
            .label(kw, "after this keyword argument")
            .hint("write the positional arguments first, or pass this one by keyword too"));
        }
    }
    let positional = args.iter().take_while(|a| a.name.is_none()).count();
    let keywords = args.len() - positional;
    if positional > callee.params.len() || (keywords == 0 && positional < callee.required) {
        return Err(with_def(arity_error(
            name,
            &callee.accepts,
            args.len(),
            call,
        )));
    }
    let mut bound: Vec<Option<&Arg>> = vec![None; callee.params.len()];
    for (slot, a) in bound.iter_mut().zip(&args[..positional]) {
        *slot = Some(a);
    }
    for a in &args[positional..] {
        let Some(key) = &a.name else { continue };
        let Some(i) = callee.params.iter().position(|p| *p == key.name) else {
            let mut d = Diagnostic::error(
                key.span,
                format!("`{name}` has no parameter `{}`", key.name),
            )
            .label(key.span, "unknown keyword");
            d = match closest(&key.name, callee.params.iter().copied()) {
                Some(c) => d.hint(format!("did you mean `{c}`? `{}`", callee.shown)),
                None if callee.params.is_empty() => d.hint(format!("`{name}` takes no arguments")),
                None => d.hint(format!("the parameters: `{}`", callee.shown)),
            };
            return Err(with_def(d));
        };
        if let Some(first) = bound[i] {
            let how = match &first.name {
                Some(_) => "first given here".to_string(),
                None => format!("given here, as argument {}", i + 1),
            };
            return Err(Diagnostic::error(
                key.span,
                format!("argument `{}` of `{name}` given twice", key.name),
            )
            .label(first.span(), how)
            .label(a.span(), "and again here")
            .hint("give each argument once"));
        }
        bound[i] = Some(a);
    }
    let missing: Vec<&str> = (0..callee.required)
        .filter(|&i| bound[i].is_none())
        .map(|i| callee.params[i])
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        let what = if missing.len() == 1 {
            format!("argument {}", list[0])
        } else {
            format!("arguments {}", list.join(", "))
        };
        return Err(with_def(
            Diagnostic::error(call, format!("`{name}` is missing its {what}"))
                .label(call, format!("no {} given", list.join(" or ")))
                .hint(format!("the parameters: `{}`", callee.shown)),
        ));
    }
    Ok(bound.into_iter().map(|a| a.map(|a| &a.value)).collect())
}

/// `1 argument`, `2 arguments`.
pub(crate) fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `1 was`, `2 were`.
pub(crate) fn count(n: usize) -> String {
    format!("{n} {}", if n == 1 { "was" } else { "were" })
}
