//! rvs-mangen: writes the man pages rvsd.8 and rvsadm.8 from their clap commands (rvsd's parser
//! itself; for rvsadm, the clap description of its ipvsadm grammar, kept in step with the parser
//! by a unit test in `rvs_control::adm::man`). `scripts/package.sh` runs it before `cargo deb`;
//! the package's assets take the pages from `target/man/`.
//!
//! clap_mangen renders the title, NAME, DESCRIPTION, OPTIONS and VERSION; the SYNOPSIS of
//! rvsadm's command forms and the closing sections (signals, files, exit status...) are built with
//! the roff crate clap_mangen uses.
//!
//! Usage: `rvs-mangen [DIR]` (default `target/man`).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// Section 8: system administration commands, as ipvsadm(8).
const SECTION: &str = "8";
const DEFAULT_DIR: &str = "target/man";

struct Page {
    cmd: clap::Command,
    /// Command forms for SYNOPSIS; empty: clap_mangen's from the options.
    synopsis: &'static [&'static str],
    /// (TITLE, paragraph) sections after OPTIONS.
    sections: &'static [(&'static str, &'static str)],
}

fn render(page: Page, w: &mut dyn Write) -> std::io::Result<()> {
    let name = page.cmd.get_name().to_owned();
    let man =
        Man::new(page.cmd).section(SECTION).manual("rvs").source(concat!("rvs ", env!("CARGO_PKG_VERSION")));
    man.render_title(w)?;
    man.render_name_section(w)?;
    if page.synopsis.is_empty() {
        man.render_synopsis_section(w)?;
    } else {
        let mut roff = Roff::new();
        roff.control("SH", ["SYNOPSIS"]);
        for (i, form) in page.synopsis.iter().enumerate() {
            if i > 0 {
                roff.control("br", [] as [&str; 0]);
            }
            let rest = form.strip_prefix(name.as_str()).unwrap_or(form);
            roff.text([bold(name.as_str()), roman(rest)]);
        }
        roff.to_writer(w)?;
    }
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    let mut roff = Roff::new();
    for (title, text) in page.sections {
        roff.control("SH", [*title]);
        roff.text([roman(*text)]);
    }
    roff.to_writer(w)?;
    man.render_version_section(w)
}

fn write(dir: &Path, page: Page) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{}.{SECTION}", page.cmd.get_name()));
    let mut out = Vec::new();
    render(page, &mut out)?;
    std::fs::write(&path, out)?;
    Ok(path)
}

fn main() -> ExitCode {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| DEFAULT_DIR.to_owned()));
    let pages = [
        Page { cmd: rvsd::cli::Cli::command(), synopsis: &[], sections: rvsd::cli::MAN_SECTIONS },
        Page {
            cmd: rvs_control::adm::man::command(),
            synopsis: rvs_control::adm::man::SYNOPSIS,
            sections: rvs_control::adm::man::SECTIONS,
        },
    ];
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        for page in pages {
            println!("{}", write(&dir, page)?.display());
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-mangen: cannot write the man pages to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
