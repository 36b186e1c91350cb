//! Source text to syntax tree: the lexer, the generated parser, the tree.
//!
//! The syntax layer knows nothing of shapes or of the IR.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod printer;
