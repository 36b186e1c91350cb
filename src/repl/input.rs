//! Reading input: when a line is unfinished (multi-line blocks), the
//! rustyline helper (validation, completion), and where history is kept.

use std::borrow::Cow;
use std::path::PathBuf;

use logos::Logos;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use crate::repl::commands::{COMMANDS, EXPR_COMMANDS};
use crate::syntax::lexer::Token;

/// Keywords offered by completion.
const KEYWORDS: &[&str] = &[
    "param", "input", "dim", "let", "fn", "loss", "metric", "output", "train", "if", "then",
    "else", "loop", "for", "in",
];

/// Whether `text` is unfinished and the next line continues it: an open
/// bracket or brace, an `if` without its `else`, or a last token that needs
/// something after it (an operator, `,`, `=`, `:`, a keyword). Commands
/// continue only when they take an expression.
pub fn needs_more(text: &str) -> bool {
    let code = match text.trim_start().strip_prefix(':') {
        Some(rest) => {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !EXPR_COMMANDS.contains(&word.as_str()) {
                return false;
            }
            &rest[word.len()..]
        }
        None => text,
    };
    let mut depth: i64 = 0;
    let mut ifs: i64 = 0;
    let mut last = None;
    for tok in Token::lexer(code).flatten() {
        match tok {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth -= 1,
            Token::If => ifs += 1,
            Token::Else => ifs -= 1,
            _ => {}
        }
        last = Some(tok);
    }
    let dangling = last.is_some_and(|t| {
        matches!(
            t,
            Token::Param
                | Token::Input
                | Token::Let
                | Token::Fn
                | Token::Dim
                | Token::Loss
                | Token::Metric
                | Token::Output
                | Token::Residual
                | Token::Train
                | Token::If
                | Token::Then
                | Token::Else
                | Token::Comma
                | Token::Colon
                | Token::Assign
                | Token::EqEq
                | Token::NotEq
                | Token::Lt
                | Token::Le
                | Token::Gt
                | Token::Ge
                | Token::Plus
                | Token::Minus
                | Token::Star
                | Token::Slash
                | Token::Caret
                | Token::At
                | Token::Dot
                | Token::DotDot
                | Token::Loop
                | Token::For
                | Token::In
        )
    });
    depth > 0 || ifs > 0 || dangling
}

/// Whether `line` cannot continue an unfinished input, and so starts a new
/// one: its first token is an item keyword (`param`, `input`, `dim`, `let`,
/// `fn`, `loss`, `metric`, `output`, `train`), which the grammar allows only at
/// the start of a definition, never inside brackets, a train block or an
/// expression, except a `let` directly inside the braces of a loop or a
/// block of `pending`, the input so far; or it is a `:command` (a `:` at
/// column 0 followed by a letter or `?`). Blank lines and comments continue
/// the input.
pub fn starts_new_input(pending: &str, line: &str) -> bool {
    if let Some(rest) = line.strip_prefix(':') {
        return rest.starts_with(|c: char| c.is_alphabetic() || c == '?');
    }
    let mut tokens = Token::lexer(line);
    match tokens.next() {
        Some(Ok(Token::Let)) => !in_block(pending),
        // `dim D`, not the keyword argument `dim = 0` of a call continued.
        Some(Ok(Token::Dim)) => matches!(tokens.next(), Some(Ok(Token::Name(_)))),
        first => matches!(
            first,
            Some(Ok(Token::Param
                | Token::Input
                | Token::Fn
                | Token::Loss
                | Token::Metric
                | Token::Output
                | Token::Residual
                | Token::Train))
        ),
    }
}

/// Whether the innermost open bracket at the end of `text` is the brace of
/// a block (a loop's body, `{ let ... }`), where `let`s are local.
fn in_block(text: &str) -> bool {
    let mut open: Vec<bool> = Vec::new();
    let mut prev = None;
    for tok in Token::lexer(text).flatten() {
        match tok {
            Token::LParen | Token::LBracket => open.push(false),
            Token::LBrace => open.push(!matches!(prev, Some(Token::Train))),
            Token::RParen | Token::RBracket | Token::RBrace => {
                open.pop();
            }
            _ => {}
        }
        prev = Some(tok);
    }
    open.last() == Some(&true)
}

/// The file history is kept in: `$XDG_DATA_HOME/gradc/history`, else
/// `~/.local/share/gradc/history`; `None` when neither variable is set.
pub fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })?;
    Some(data.join("gradc").join("history"))
}

/// The rustyline helper: multi-line validation and tab completion.
pub struct ReplHelper {
    /// Builtins, keywords and the session's names, refreshed after each input.
    pub names: Vec<String>,
    files: FilenameCompleter,
}

impl ReplHelper {
    pub fn new() -> ReplHelper {
        ReplHelper {
            names: Vec::new(),
            files: FilenameCompleter::new(),
        }
    }

    /// Sets the names completion offers: the session's, then the builtins
    /// and keywords.
    pub fn set_names(&mut self, session: Vec<String>) {
        let mut names = session;
        names.extend(crate::types::builtins::names().map(str::to_string));
        names.extend(KEYWORDS.iter().map(|s| s.to_string()));
        names.sort();
        names.dedup();
        self.names = names;
    }
}

impl Default for ReplHelper {
    fn default() -> Self {
        ReplHelper::new()
    }
}

/// The candidates completing the word that ends at `pos`: a command at the
/// start of the line, a file name after `:load` and `:save`, else a name.
pub fn complete(names: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
    let word = &before[start..];
    if before.trim_start().starts_with(':') && !before.trim_start().contains(char::is_whitespace) {
        let colon = before.find(':').unwrap_or(0);
        let typed = &before[colon..];
        let found = COMMANDS
            .iter()
            .filter(|c| c.starts_with(typed))
            .map(|c| c.to_string())
            .collect();
        return (colon, found);
    }
    let found = names
        .iter()
        .filter(|n| n.starts_with(word) && !word.is_empty())
        .cloned()
        .collect();
    (start, found)
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let trimmed = line.trim_start();
        if trimmed.starts_with(":load ") || trimmed.starts_with(":save ") {
            return self.files.complete(line, pos, ctx);
        }
        let (start, found) = complete(&self.names, line, pos);
        // A command is followed by its argument: the space comes with it.
        let pairs = found
            .into_iter()
            .map(|s| Pair {
                replacement: if s.starts_with(':') {
                    format!("{s} ")
                } else {
                    s.clone()
                },
                display: s,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if needs_more(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_and_trailing_operators_continue() {
        assert!(needs_more("train {"));
        assert!(needs_more("let a = sum([1,"));
        assert!(needs_more("let a = 1 +"));
        assert!(needs_more("let a ="));
        assert!(needs_more("if x > 0 then 1"));
        assert!(needs_more(":grad sum(x"));
        assert!(!needs_more("let a = 1 + 2"));
        assert!(!needs_more("if x > 0 then 1 else 2"));
        assert!(!needs_more("x)"));
        assert!(!needs_more("1 # a comment ("));
        assert!(needs_more("1 + # a comment"));
        assert!(!needs_more(":load weird(.grad"));
        assert!(!needs_more(""));
    }

    #[test]
    fn definitions_and_commands_cannot_continue_an_input() {
        for line in [
            "param v = 2",
            "  let a = 1",
            "loss x",
            "train { steps = 1 }",
            "metric m = 1",
            "output o = 1",
            "input x",
            "dim D = 4",
            "fn f(a) = a",
            ":params",
            ":q",
            ":?",
        ] {
            assert!(starts_new_input("let a = (1 +\n", line), "{line}");
        }
        // Inside a loop's body or a block, a `let` is local: it continues.
        let body = "let s = loop s = 0 for t in 0..3 {\n";
        assert!(!starts_new_input(body, "  let u = s + t"));
        assert!(!starts_new_input("let v = { let a = 1\n", "let b = 2"));
        assert!(starts_new_input(body, "loss s"));
        // The settings of a train block are not a block of `let`s.
        assert!(starts_new_input("train {\n", "let a = 1"));
        for line in [
            "",
            "  # a comment",
            "  2]",
            "x + 1)",
            "steps = 10",
            "if a then b else c",
            " :params",
            ": [2]",
            "lossy + 1",
            "dim = 0)",
        ] {
            assert!(!starts_new_input("let a = (1 +\n", line), "{line}");
        }
    }

    #[test]
    fn completion_offers_commands_and_names() {
        let names: Vec<String> = ["sigmoid", "softmax", "sum", "w"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(complete(&names, ":gr", 3), (0, vec![":grad".to_string()]));
        assert_eq!(
            complete(&names, "1 + s", 5),
            (4, vec!["sigmoid".into(), "softmax".into(), "sum".into()])
        );
        assert_eq!(complete(&names, ":grad su", 8), (6, vec!["sum".into()]));
    }

    #[test]
    fn completion_offers_builtins_and_names_in_keyword_arguments() {
        let mut h = ReplHelper::new();
        h.set_names(vec!["width".to_string()]);
        for b in ["huber", "one_hot", "where", "max"] {
            assert!(h.names.iter().any(|n| n == b), "{b} missing");
        }
        let line = "huber(x, y, delta = wi";
        assert_eq!(
            complete(&h.names, line, line.len()),
            (20, vec!["width".into()])
        );
        let line = "huber(x, y, delta = hu";
        assert_eq!(
            complete(&h.names, line, line.len()),
            (20, vec!["huber".into()])
        );
        assert!(needs_more("huber(x, y, delta ="));
        assert!(needs_more("huber(x, y, delta = 0.5"));
    }
}
