//! keepalived.conf, read as is: rvsd takes its services from the LVS part of a keepalived
//! configuration (`virtual_server`, `virtual_server_group`, `real_server`, `HTTP_GET`, `SSL_GET`,
//! `TCP_CHECK`, `quorum`, `hysteresis`, `sorry_server`) and DPVS's keepalived additions (`local_address_group`, `laddr_group_name`, `lb_kind FNAT`,
//! `syn_proxy`). `lexer` makes tokens, `parser` the `{ }` statement tree, `convert` rvs's typed
//! services. Anything rvs cannot do as keepalived would is an error naming the keyword and the line.
use std::fmt;

mod checker;
pub mod convert;
pub mod lexer;
pub mod parser;
mod values;

pub use convert::Keepalived;

/// An error at a line of a keepalived file: `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KaError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for KaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.msg)
    }
}

impl std::error::Error for KaError {}

/// Parses keepalived text (no `include`: it has no file) into services.
pub fn from_str(text: &str, name: &str) -> Result<Keepalived, KaError> {
    let toks = lexer::tokenize(text, name, &lexer::NoInclude)?;
    convert::convert(&parser::parse(&toks)?)
}

/// Reads a keepalived.conf (with its `include`s) into services.
pub fn from_file(path: &str) -> Result<Keepalived, KaError> {
    let text = std::fs::read_to_string(path).map_err(|e| KaError {
        file: path.into(),
        line: 0,
        msg: format!("cannot read: {e}"),
    })?;
    let toks = lexer::tokenize(&text, path, &lexer::FsLoader)?;
    convert::convert(&parser::parse(&toks)?)
}

/// Makes the keepalived file at `path` the services of `cfg` (whose TOML must list none), and clears
/// `cfg.keepalived`: the services are then the configuration's own, so `save` writes them and a
/// restart with the saved file does not read the keepalived file a second time. Returns the file's
/// warnings. Errors are one line: `keepalived: FILE:LINE: ...`.
pub fn apply(cfg: &mut crate::config::Config, path: &str) -> Result<Vec<String>, crate::ConfigError> {
    let e = |msg: String| crate::ConfigError { field: "keepalived".into(), msg };
    if !cfg.services.is_empty() {
        return Err(e(format!("the services come from {path}; the TOML must not list services too")));
    }
    let k = from_file(path).map_err(|x| e(x.to_string()))?;
    cfg.services = k.services;
    cfg.keepalived = None;
    Ok(k.warnings)
}

#[cfg(test)]
mod tests;
