//! keepalived.conf tokens, after keepalived's `lib/parser.c`: words separated by blanks, `"..."`
//! quoted words (without the quotes), `{` and `}` as words of their own, comments from `#` or `!`
//! (outside quotes) to the end of the line, and `include PATTERN` lines replaced by the tokens of the
//! files they name (relative to the including file's directory; `*` and `?` in the file name).
use std::path::{Path, PathBuf};

use super::KaError;

/// Include nesting deeper than this is refused (an include cycle would otherwise never end).
pub const MAX_INCLUDE_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    Open,
    Close,
    /// End of a line: a statement's arguments end here.
    Eol,
}

/// A token and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub file: std::rc::Rc<str>,
    pub line: usize,
}

/// What `include` reads: the real file system for `rvsd`, nothing for in-memory text (fuzzing, tests).
pub trait Loader {
    /// The files `pattern` names, each with its text, in name order.
    fn load(&self, pattern: &str, from: &str) -> Result<Vec<(String, String)>, String>;
}

/// Refuses every `include` (text without a file system).
pub struct NoInclude;

impl Loader for NoInclude {
    fn load(&self, _pattern: &str, _from: &str) -> Result<Vec<(String, String)>, String> {
        Err("include needs a file (the text was not read from one)".into())
    }
}

/// Reads included files from disk; a pattern with `*`/`?` in its file name matches directory entries.
pub struct FsLoader;

fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    match (pat.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&pat[1..], name) || (!name.is_empty() && glob_match(pat, &name[1..])),
        (Some(b'?'), Some(_)) => glob_match(&pat[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pat[1..], &name[1..]),
        _ => false,
    }
}

impl Loader for FsLoader {
    fn load(&self, pattern: &str, from: &str) -> Result<Vec<(String, String)>, String> {
        let base = Path::new(from).parent().unwrap_or(Path::new("."));
        let full: PathBuf =
            if Path::new(pattern).is_absolute() { pattern.into() } else { base.join(pattern) };
        let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        let mut paths = Vec::new();
        if name.contains(['*', '?']) {
            let dir = full.parent().unwrap_or(Path::new("."));
            let rd =
                std::fs::read_dir(dir).map_err(|e| format!("include {pattern}: {}: {e}", dir.display()))?;
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str() {
                    if glob_match(name.as_bytes(), n.as_bytes()) {
                        paths.push(e.path());
                    }
                }
            }
            paths.sort();
        } else {
            paths.push(full);
        }
        paths
            .into_iter()
            .map(|p| {
                std::fs::read_to_string(&p)
                    .map(|t| (p.display().to_string(), t))
                    .map_err(|e| format!("include {pattern}: cannot read {}: {e}", p.display()))
            })
            .collect()
    }
}

/// Tokenizes `text` (read from `file`), expanding `include` lines through `loader`.
pub fn tokenize(text: &str, file: &str, loader: &dyn Loader) -> Result<Vec<Token>, KaError> {
    let mut out = Vec::new();
    tokenize_into(text, file, loader, 0, &mut out)?;
    Ok(out)
}

fn tokenize_into(
    text: &str,
    file: &str,
    loader: &dyn Loader,
    depth: usize,
    out: &mut Vec<Token>,
) -> Result<(), KaError> {
    let f: std::rc::Rc<str> = file.into();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let e = |msg: String| KaError { file: file.to_owned(), line, msg };
        let words = split_line(raw).map_err(e)?;
        if words.first().is_some_and(|w| w.0 == "include" && !w.1) {
            let [_, (pattern, _)] = words.as_slice() else {
                return Err(e("include: needs exactly one file name or pattern".into()));
            };
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(e(format!("include {pattern}: nested more than {MAX_INCLUDE_DEPTH} deep")));
            }
            for (path, t) in loader.load(pattern, file).map_err(e)? {
                tokenize_into(&t, &path, loader, depth + 1, out)?;
            }
            continue;
        }
        for (w, quoted) in words {
            let tok = match (w.as_str(), quoted) {
                ("{", false) => Tok::Open,
                ("}", false) => Tok::Close,
                _ => Tok::Word(w),
            };
            out.push(Token { tok, file: f.clone(), line });
        }
        out.push(Token { tok: Tok::Eol, file: f.clone(), line });
    }
    Ok(())
}

/// One line's words, each with whether it was quoted.
fn split_line(line: &str) -> Result<Vec<(String, bool)>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' | '!' => break,
            '{' | '}' => {
                chars.next();
                words.push((c.to_string(), false));
            }
            '"' => {
                chars.next();
                let mut w = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated quote \"{w}")),
                    }
                }
                words.push((w, true));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '#' | '!' | '{' | '}' | '"') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                words.push((w, false));
            }
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Tok> {
        tokenize(s, "t.conf", &NoInclude).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn tokens_comments_quotes_braces() {
        assert_eq!(
            words("a b{c}  # x { y\n! whole line\n\"q w\" \"#\" d!e\n"),
            vec![
                w("a"),
                w("b"),
                Tok::Open,
                w("c"),
                Tok::Close,
                Tok::Eol,
                Tok::Eol,
                w("q w"),
                w("#"),
                w("d"),
                Tok::Eol
            ]
        );
        let e = tokenize("a\nb \"open\n", "t.conf", &NoInclude).unwrap_err();
        assert_eq!(e.to_string(), "t.conf:2: unterminated quote \"open");
    }

    #[test]
    fn include_needs_a_file_and_is_bounded() {
        let e = tokenize("\ninclude x.conf\n", "t.conf", &NoInclude).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("include"), "{e}");
        struct SelfInclude;
        impl Loader for SelfInclude {
            fn load(&self, p: &str, _: &str) -> Result<Vec<(String, String)>, String> {
                Ok(vec![(p.into(), format!("include {p}\n"))])
            }
        }
        let e = tokenize("include me\n", "t.conf", &SelfInclude).unwrap_err();
        assert!(e.msg.contains("nested more than 8"), "{e}");
        assert!(
            glob_match(b"*.conf", b"a.conf")
                && !glob_match(b"*.conf", b"a.cfg")
                && glob_match(b"a?c", b"abc")
        );
    }
}
