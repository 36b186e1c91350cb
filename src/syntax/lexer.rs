//! The lexer: logos turns source text into tokens with byte spans.
//!
//! The parser consumes `(lo, Token, hi)` triples; a character that starts no
//! token becomes a [`LexError`] with its span, so the parser can report it.

use logos::Logos;

use crate::span::Span;

/// One token. Keywords are reserved; builtins such as `exp` are plain names.
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
pub enum Token<'s> {
    #[token("param")]
    Param,
    #[token("input")]
    Input,
    #[token("dim")]
    Dim,
    #[token("let")]
    Let,
    #[token("fn")]
    Fn,
    #[token("loss")]
    Loss,
    #[token("metric")]
    Metric,
    #[token("output")]
    Output,
    #[token("residual")]
    Residual,
    #[token("train")]
    Train,
    #[token("if")]
    If,
    #[token("then")]
    Then,
    #[token("else")]
    Else,
    #[token("loop")]
    Loop,
    #[token("for")]
    For,
    #[token("in")]
    In,

    #[regex(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")]
    Number(&'s str),
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Name(&'s str),
    #[regex(r#""[^"\n]*""#, |lex| { let s = lex.slice(); &s[1..s.len() - 1] })]
    Str(&'s str),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("^")]
    Caret,
    #[token("@")]
    At,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    /// A line break that ends a `let` of a block (`{ ... }` of a loop or an
    /// expression): made by [`Lexer`], not by logos (its `sep` says when).
    Sep,
}

impl Token<'_> {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Number(s) => format!("number `{s}`"),
            Token::Name(s) => format!("name `{s}`"),
            Token::Str(s) => format!("string \"{s}\""),
            other => format!("`{}`", other.text()),
        }
    }

    fn text(&self) -> &'static str {
        match self {
            Token::Param => "param",
            Token::Input => "input",
            Token::Dim => "dim",
            Token::Let => "let",
            Token::Fn => "fn",
            Token::Loss => "loss",
            Token::Metric => "metric",
            Token::Output => "output",
            Token::Residual => "residual",
            Token::Train => "train",
            Token::If => "if",
            Token::Then => "then",
            Token::Else => "else",
            Token::Loop => "loop",
            Token::For => "for",
            Token::In => "in",
            Token::Number(_) | Token::Name(_) | Token::Str(_) => "",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Comma => ",",
            Token::Semi => ";",
            Token::Colon => ":",
            Token::Assign => "=",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Caret => "^",
            Token::At => "@",
            Token::Dot => ".",
            Token::DotDot => "..",
            Token::Sep => "line break",
        }
    }
}

/// A piece of source that starts no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub span: Span,
    pub text: String,
}

/// The token stream the generated parser reads. Pieces of source that start
/// no token are set aside in `errors` and skipped, so that parsing goes on and
/// every bad character is reported.
pub struct Lexer<'s, 'e> {
    inner: logos::SpannedIter<'s, Token<'s>>,
    errors: &'e mut Vec<LexError>,
    src: &'s str,
    /// The last token and where it ended.
    last: Option<(Token<'s>, usize)>,
    /// The open brackets, innermost last: `(`, `[`, or `{` (true for a code
    /// block, false for the settings of `train { }`).
    open: Vec<(Token<'s>, bool)>,
    /// A token read after a [`Token::Sep`] was made for the gap before it.
    pending: Option<(usize, Token<'s>, usize)>,
}

impl<'s, 'e> Lexer<'s, 'e> {
    pub fn new(src: &'s str, errors: &'e mut Vec<LexError>) -> Lexer<'s, 'e> {
        Lexer {
            inner: Token::lexer(src).spanned(),
            errors,
            src,
            last: None,
            open: Vec::new(),
            pending: None,
        }
    }

    /// Whether a line break between the last token and `next` separates two
    /// parts of a block: directly inside the braces of a code block, after
    /// a token that can end an expression, before one that can start one
    /// (a `-` or `(` at the start of a line starts a new expression, as in
    /// Python). Elsewhere, line breaks are white space.
    fn sep(&self, next: &Token<'s>, at: usize) -> bool {
        let Some((prev, end)) = self.last else {
            return false;
        };
        let in_block = matches!(self.open.last(), Some((Token::LBrace, true)));
        let gap = self.src.get(end..at).unwrap_or("");
        let ends = matches!(
            prev,
            Token::Number(_) | Token::Name(_) | Token::RParen | Token::RBracket | Token::RBrace
        );
        let starts = matches!(
            next,
            Token::Number(_)
                | Token::Name(_)
                | Token::Let
                | Token::If
                | Token::Loop
                | Token::LParen
                | Token::LBracket
                | Token::LBrace
                | Token::Minus
        );
        in_block && ends && starts && gap.contains('\n')
    }

    /// Keeps the bracket stack up to date with `tok`.
    fn track(&mut self, tok: &Token<'s>) {
        match tok {
            Token::LParen | Token::LBracket => self.open.push((*tok, false)),
            Token::LBrace => {
                let code = !matches!(self.last, Some((Token::Train, _)));
                self.open.push((Token::LBrace, code));
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                self.open.pop();
            }
            _ => {}
        }
    }
}

impl<'s> Iterator for Lexer<'s, '_> {
    type Item = Result<(usize, Token<'s>, usize), LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(t) = self.pending.take() {
            self.track(&t.1);
            self.last = Some((t.1, t.2));
            return Some(Ok(t));
        }
        loop {
            let (tok, range) = self.inner.next()?;
            match tok {
                Ok(tok) => {
                    let t = (range.start, tok, range.end);
                    if self.sep(&tok, range.start) {
                        // The separator sits at the line break after the last
                        // token; the token comes next.
                        let at = self.last.map_or(range.start, |(_, end)| end);
                        self.pending = Some(t);
                        self.last = Some((Token::Sep, at));
                        return Some(Ok((at, Token::Sep, at)));
                    }
                    self.track(&tok);
                    self.last = Some((tok, range.end));
                    return Some(Ok(t));
                }
                Err(()) => self.errors.push(LexError {
                    span: Span::new(range.start, range.end),
                    text: self.inner.slice().to_string(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Token<'_>> {
        let mut errors = Vec::new();
        let toks = Lexer::new(src, &mut errors).map(|t| t.unwrap().1).collect();
        assert!(errors.is_empty(), "{errors:?}");
        toks
    }

    #[test]
    fn ranges_are_not_decimals() {
        assert_eq!(
            kinds("0..2"),
            vec![Token::Number("0"), Token::DotDot, Token::Number("2")]
        );
    }

    #[test]
    fn comments_and_keywords() {
        assert_eq!(
            kinds("param w # the weights\n= 1.5e-3"),
            vec![
                Token::Param,
                Token::Name("w"),
                Token::Assign,
                Token::Number("1.5e-3")
            ]
        );
    }

    #[test]
    fn unknown_characters_are_set_aside_with_their_spans() {
        let mut errors = Vec::new();
        let toks: Vec<_> = Lexer::new("a $ b ? c", &mut errors)
            .map(|t| t.unwrap().1)
            .collect();
        assert_eq!(
            toks,
            vec![Token::Name("a"), Token::Name("b"), Token::Name("c")]
        );
        let spans: Vec<Span> = errors.iter().map(|e| e.span).collect();
        assert_eq!(spans, vec![Span::new(2, 3), Span::new(6, 7)]);
    }
}
