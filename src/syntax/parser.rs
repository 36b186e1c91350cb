//! Runs the lalrpop parser over the logos tokens and turns every syntax error
//! (the first one and those after recovery) into a diagnostic.

use lalrpop_util::{lalrpop_mod, ErrorRecovery, ParseError};

use crate::diagnostic::Diagnostic;
use crate::span::{LineIndex, Span};
use crate::syntax::ast::Program;
use crate::syntax::lexer::{LexError, Lexer, Token};

lalrpop_mod!(
    #[allow(clippy::all, unused_parens, missing_docs)]
    grammar,
    "/grad.rs"
);

/// Brackets nested deeper than this are refused before parsing.
const MAX_NESTING: usize = 256;

/// Parses a whole file. On syntax errors, returns every one found.
pub fn parse(src: &str) -> Result<Program, Vec<Diagnostic>> {
    if let Some(d) = check_nesting(src) {
        return Err(vec![d]);
    }
    let mut recovered = Vec::new();
    let mut lex_errors = Vec::new();
    let result =
        grammar::ProgramParser::new().parse(&mut recovered, Lexer::new(src, &mut lex_errors));
    // A skipped character usually leaves the rest of its line unparsable: the
    // syntax errors after it on the same line are its echoes, not news.
    let lines = LineIndex::new(src);
    let echo = |d: &Diagnostic| {
        let (line, at) = (lines.line(d.span.lo as usize), d.span.lo);
        lex_errors
            .iter()
            .any(|e| e.span.hi <= at && lines.line(e.span.lo as usize) == line)
    };
    let parse_diags: Vec<Diagnostic> = recovered
        .into_iter()
        .map(|r: ErrorRecovery<usize, Token<'_>, LexError>| convert(r.error, src))
        .chain(result.as_ref().err().map(|e| convert(e.clone(), src)))
        .filter(|d| !echo(d))
        .collect();
    let mut diags: Vec<Diagnostic> = lex_errors
        .into_iter()
        .map(|error| convert(ParseError::User { error }, src))
        .chain(parse_diags)
        .collect();
    diags.sort_by_key(|d| d.span.lo);
    match result {
        Ok(program) if diags.is_empty() => Ok(program),
        _ => Err(diags),
    }
}

/// Parses one expression (used by the REPL).
pub fn parse_expr(src: &str) -> Result<crate::syntax::ast::Expr, Vec<Diagnostic>> {
    if let Some(d) = check_nesting(src) {
        return Err(vec![d]);
    }
    let mut recovered = Vec::new();
    let mut lex_errors = Vec::new();
    let result = grammar::ExprParser::new().parse(&mut recovered, Lexer::new(src, &mut lex_errors));
    let mut diags: Vec<Diagnostic> = lex_errors
        .into_iter()
        .map(|error| convert(ParseError::User { error }, src))
        .collect();
    match result {
        Ok(e) if diags.is_empty() => Ok(e),
        Ok(_) => Err(diags),
        Err(e) => {
            diags.push(convert(e, src));
            Err(diags)
        }
    }
}

/// Deep bracket nesting is refused up front: the parser itself would cope, but
/// no user means it, and the message is clearer here.
fn check_nesting(src: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (i, b) in src.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(
                        Diagnostic::error(
                            Span::new(i, i + 1),
                            format!("brackets nested more than {MAX_NESTING} deep"),
                        )
                        .label(Span::new(i, i + 1), "too deep here")
                        .hint("name intermediate results with `let`"),
                    );
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn convert(e: ParseError<usize, Token<'_>, LexError>, src: &str) -> Diagnostic {
    match e {
        ParseError::InvalidToken { location } => {
            let span = Span::new(location, location + 1);
            Diagnostic::error(span, "invalid token").label(span, "not understood")
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let span = Span::new(location, location);
            Diagnostic::error(span, "unexpected end of file")
                .label(span, format!("expected {}", expected_list(&expected)))
        }
        ParseError::UnrecognizedToken {
            token: (lo, tok, hi),
            expected,
        } => {
            let span = Span::new(lo, hi);
            let mut d = Diagnostic::error(span, format!("unexpected {}", tok.describe()))
                .label(span, format!("expected {}", expected_list(&expected)));
            if let Some(h) = hint_for(&tok) {
                d = d.hint(h);
            }
            d
        }
        ParseError::ExtraToken {
            token: (lo, tok, hi),
        } => {
            let span = Span::new(lo, hi);
            Diagnostic::error(span, format!("unexpected {}", tok.describe()))
                .label(span, "nothing more was expected")
        }
        ParseError::User { error } => {
            let shown = if error.text.chars().any(|c| c.is_control()) {
                format!("{:?}", error.text)
            } else {
                format!("`{}`", error.text)
            };
            let _ = src;
            Diagnostic::error(error.span, format!("unexpected character {shown}"))
                .label(error.span, "no token starts with this")
        }
    }
}

fn hint_for(tok: &Token<'_>) -> Option<&'static str> {
    match tok {
        Token::Str(_) => {
            Some("strings are the subscripts of `einsum` and the file names of a `train { }` block")
        }
        Token::Assign => Some("`=` binds a name; to compare, write `==`"),
        _ => None,
    }
}

/// lalrpop lists expected terminals by their grammar names (`"number"`, `"("`).
fn expected_list(expected: &[String]) -> String {
    let names: Vec<String> = expected
        .iter()
        .map(|s| {
            let bare = s.trim_matches('"');
            match bare {
                "number" | "name" | "string" => format!("a {bare}"),
                other => format!("`{other}`"),
            }
        })
        .collect();
    match names.len() {
        0 => "nothing more".to_string(),
        1 => names[0].clone(),
        n if n <= 6 => format!("one of {}", names.join(", ")),
        _ => format!("one of {}, ...", names[..6].join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::{BinOp, ExprKind, ItemKind, UnOp};

    fn expr(src: &str) -> ExprKind {
        parse_expr(src).unwrap().kind
    }

    #[test]
    fn power_binds_tighter_than_minus() {
        match expr("-x^2") {
            ExprKind::Unary(UnOp::Neg, e) => {
                assert!(matches!(e.kind, ExprKind::Binary(BinOp::Pow, _, _)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn power_is_right_associative() {
        match expr("a^b^c") {
            ExprKind::Binary(BinOp::Pow, a, bc) => {
                assert_eq!(a.kind, ExprKind::Name("a".into()));
                assert!(matches!(bc.kind, ExprKind::Binary(BinOp::Pow, _, _)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn items_parse() {
        let p = parse("param w: [2] = normal(0, 0.1)\ninput x: [2]\nloss dot(w, x)\n").unwrap();
        assert_eq!(p.items.len(), 3);
        assert!(matches!(p.items[0].kind, ItemKind::Param { .. }));
    }

    #[test]
    fn several_errors_are_reported() {
        let errs = parse("let a = )\nlet b = 1\nlet c = ]\n").unwrap_err();
        assert!(errs.len() >= 2, "{errs:?}");
    }

    #[test]
    fn deep_expressions_become_too_deep() {
        let src = format!("loss {}x", "-".repeat(1000));
        let p = parse(&src).unwrap();
        match &p.items[0].kind {
            ItemKind::Loss { value } => assert_eq!(value.kind, ExprKind::TooDeep),
            other => panic!("{other:?}"),
        }
    }
}
