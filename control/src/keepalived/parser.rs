//! keepalived.conf statements: `KEYWORD ARG...` ending at the end of the line, or followed by a
//! `{ ... }` block of statements (the `{` on the same line or alone on the next one). Unbalanced braces
//! and end of file inside a block are errors with the line of the block that was left open.
use super::lexer::{Tok, Token};
use super::KaError;

/// Blocks nested deeper than this are refused (keepalived's grammar needs 3: virtual_server,
/// real_server, checker, url).
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub key: String,
    pub args: Vec<String>,
    /// The `{ }` block, if the statement has one.
    pub block: Option<Vec<Stmt>>,
    pub file: std::rc::Rc<str>,
    pub line: usize,
}

impl Stmt {
    /// An error at this statement's line.
    pub fn err(&self, msg: impl Into<String>) -> KaError {
        KaError { file: self.file.to_string(), line: self.line, msg: msg.into() }
    }
}

pub fn parse(tokens: &[Token]) -> Result<Vec<Stmt>, KaError> {
    let mut pos = 0;
    let stmts = block(tokens, &mut pos, 0)?;
    match tokens.get(pos) {
        None => Ok(stmts),
        Some(t) => Err(at(t, "unbalanced \"}\": no block is open here")),
    }
}

fn at(t: &Token, msg: impl Into<String>) -> KaError {
    KaError { file: t.file.to_string(), line: t.line, msg: msg.into() }
}

/// Statements up to a `}` (left for the caller) or the end.
fn block(tokens: &[Token], pos: &mut usize, depth: usize) -> Result<Vec<Stmt>, KaError> {
    let mut out = Vec::new();
    while let Some(t) = tokens.get(*pos) {
        match &t.tok {
            Tok::Eol => *pos += 1,
            Tok::Close => return Ok(out),
            Tok::Open => return Err(at(t, "\"{\" without a keyword before it")),
            Tok::Word(key) => {
                *pos += 1;
                let mut s = Stmt {
                    key: key.clone(),
                    args: Vec::new(),
                    block: None,
                    file: t.file.clone(),
                    line: t.line,
                };
                while let Some(Token { tok: Tok::Word(a), .. }) = tokens.get(*pos) {
                    s.args.push(a.clone());
                    *pos += 1;
                }
                // `{` on this line, or alone after line ends.
                let mut look = *pos;
                while matches!(tokens.get(look), Some(Token { tok: Tok::Eol, .. })) {
                    look += 1;
                }
                if let Some(Token { tok: Tok::Open, .. }) = tokens.get(look) {
                    if depth + 1 > MAX_DEPTH {
                        return Err(s.err(format!("{}: blocks nested more than {MAX_DEPTH} deep", s.key)));
                    }
                    *pos = look + 1;
                    let inner = block(tokens, pos, depth + 1)?;
                    match tokens.get(*pos) {
                        Some(Token { tok: Tok::Close, .. }) => *pos += 1,
                        _ => {
                            return Err(s.err(format!(
                            "{}: block opened here is not closed (\"}}\" missing before the end of the file)",
                            s.key
                        )))
                        }
                    }
                    s.block = Some(inner);
                }
                out.push(s);
            }
        }
    }
    // At depth > 0 the caller reports the statement whose block is left open.
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::lexer::{tokenize, NoInclude};
    use super::*;

    fn p(s: &str) -> Result<Vec<Stmt>, KaError> {
        parse(&tokenize(s, "k.conf", &NoInclude)?)
    }

    #[test]
    fn statements_and_blocks() {
        let s = p("a 1 2\nb {\n  c 3\n  d\n  {\n e\n }\n}\nf { g } h\n").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].key.as_str(), s[0].args.clone(), s[0].line), ("a", vec!["1".into(), "2".into()], 1));
        let b = s[1].block.as_ref().unwrap();
        assert_eq!(b[0].key, "c");
        assert_eq!(b[1].key, "d");
        assert_eq!(b[1].block.as_ref().unwrap()[0].key, "e");
        assert_eq!(s[2].block.as_ref().unwrap()[0].key, "g");
        assert_eq!((s[3].key.as_str(), s[3].line), ("h", 9));
    }

    #[test]
    fn unbalanced_braces_are_errors_with_lines() {
        assert_eq!(
            p("a {\n b\n").unwrap_err().to_string(),
            "k.conf:1: a: block opened here is not closed (\"}\" missing before the end of the file)"
        );
        assert_eq!(
            p("a {\n}\n}\n").unwrap_err().to_string(),
            "k.conf:3: unbalanced \"}\": no block is open here"
        );
        assert_eq!(p("\n{\n").unwrap_err().line, 2);
        assert_eq!(p("x {\n y {\n z\n}\n").unwrap_err().to_string().split(':').nth(1), Some("1"));
        let deep = "a {\n".repeat(40);
        assert!(p(&deep).unwrap_err().msg.contains("nested more than"));
    }
}
