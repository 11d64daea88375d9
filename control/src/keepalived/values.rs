//! Reading keepalived statements' values: numbers, durations, addresses, flags, and the errors
//! that name the keyword and its line.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::convert::defaults;
use super::parser::Stmt;
use super::KaError;

pub(super) type R<T> = Result<T, KaError>;
pub(super) fn one(s: &Stmt) -> R<&str> {
    match s.args.as_slice() {
        [a] => Ok(a),
        _ => Err(s.err(format!("{}: needs exactly one value", s.key))),
    }
}

pub(super) fn no_block(s: &Stmt) -> R<()> {
    match s.block {
        Some(_) => Err(s.err(format!("{}: takes no {{ }} block", s.key))),
        None => Ok(()),
    }
}

pub(super) fn block(s: &Stmt) -> R<&[Stmt]> {
    s.block.as_deref().ok_or_else(|| s.err(format!("{}: needs a {{ }} block", s.key)))
}

pub(super) fn uint(s: &Stmt, min: u32, max: u32) -> R<u32> {
    no_block(s)?;
    let v = one(s)?;
    u32::from_str(v)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| s.err(format!("{} \"{v}\": not a whole number in {min}..={max}", s.key)))
}

/// Seconds with up to three decimals (keepalived reads `delay_loop 1.5`), as milliseconds.
pub(super) fn secs_ms(s: &Stmt) -> R<u32> {
    no_block(s)?;
    let v = one(s)?;
    let bad = || s.err(format!("{} \"{v}\": not a time in seconds (0..=86400, e.g. 3 or 0.5)", s.key));
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 3
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.len() > 6
    {
        return Err(bad());
    }
    let i: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let f: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().map_err(|_| bad())? };
    let ms = i * 1000 + f;
    if ms > u64::from(defaults::MAX_TIME_MS) {
        return Err(bad());
    }
    Ok(ms as u32)
}

/// An IPv4 or IPv6 address, as keepalived's `inet_stosockaddr` reads it (bare, no brackets).
pub(super) fn ip(s: &Stmt, v: &str) -> R<IpAddr> {
    IpAddr::from_str(v).map_err(|_| s.err(format!("{} \"{v}\": not an IPv4 or IPv6 address", s.key)))
}

pub(super) fn port(s: &Stmt, v: &str) -> R<u16> {
    u16::from_str(v).ok().filter(|p| *p != 0).ok_or_else(|| s.err(format!("{}: bad port \"{v}\"", s.key)))
}

/// An address or keepalived's range (`inet_stor`): `A.B.C.D-E` (last byte D to E, decimal) or
/// `X:..:Y-Z` (last 16-bit group Y to Z, hexadecimal).
pub(super) fn addr_range(s: &Stmt, v: &str) -> R<Vec<IpAddr>> {
    let Some((a, end)) = v.split_once('-') else { return Ok(vec![ip(s, v)?]) };
    match ip(s, a)? {
        IpAddr::V4(a) => {
            let o = a.octets();
            let end = u8::from_str(end).ok().filter(|e| *e >= o[3]).ok_or_else(|| {
                s.err(format!("range \"{v}\": the end must be a last byte from {} to 255", o[3]))
            })?;
            Ok((o[3]..=end).map(|d| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], d))).collect())
        }
        IpAddr::V6(a) => {
            let mut g = a.segments();
            let first = g[7];
            let end = u16::from_str_radix(end, 16).ok().filter(|e| *e >= first).ok_or_else(|| {
                s.err(format!(
                    "range \"{v}\": the end must be a last group from {first:x} to ffff (hexadecimal)"
                ))
            })?;
            Ok((first..=end)
                .map(|d| {
                    g[7] = d;
                    IpAddr::V6(Ipv6Addr::from(g))
                })
                .collect())
        }
    }
}

pub(super) fn flag(s: &Stmt) -> R<bool> {
    no_block(s)?;
    match s.args.as_slice() {
        [] => Ok(true),
        [v] => match v.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" => Ok(true),
            "false" | "off" | "no" => Ok(false),
            _ => Err(s.err(format!("{} \"{v}\": expected true or false", s.key))),
        },
        _ => Err(s.err(format!("{}: takes at most one value", s.key))),
    }
}

pub(super) fn unsupported(s: &Stmt, why: &str) -> KaError {
    s.err(format!("{}: not supported by rvs: {why}", s.key))
}

pub(super) fn unknown(s: &Stmt, ctx: &str) -> KaError {
    s.err(format!("{}: unknown or unsupported keyword in {ctx}", s.key))
}
