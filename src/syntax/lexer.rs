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
    #[token("train")]
    Train,
    #[token("if")]
    If,
    #[token("then")]
    Then,
    #[token("else")]
    Else,

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
            Token::Let => "let",
            Token::Fn => "fn",
            Token::Loss => "loss",
            Token::Metric => "metric",
            Token::Output => "output",
            Token::Train => "train",
            Token::If => "if",
            Token::Then => "then",
            Token::Else => "else",
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
        }
    }
}

/// A piece of source that starts no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub span: Span,
    pub text: String,
}

/// The token stream the generated parser reads.
pub struct Lexer<'s> {
    inner: logos::SpannedIter<'s, Token<'s>>,
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Lexer<'s> {
        Lexer {
            inner: Token::lexer(src).spanned(),
        }
    }
}

impl<'s> Iterator for Lexer<'s> {
    type Item = Result<(usize, Token<'s>, usize), LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (tok, range) = self.inner.next()?;
        Some(match tok {
            Ok(tok) => Ok((range.start, tok, range.end)),
            Err(()) => Err(LexError {
                span: Span::new(range.start, range.end),
                text: self.inner.slice().to_string(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Token<'_>> {
        Lexer::new(src).map(|t| t.unwrap().1).collect()
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
    fn unknown_character_has_a_span() {
        let err = Lexer::new("a $ b").nth(1).unwrap().unwrap_err();
        assert_eq!(err.span, Span::new(2, 3));
    }
}
