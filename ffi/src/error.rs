//! Typed DPDK errors: every failing call becomes an [`Error`] naming the operation, the errno as an
//! enum, and DPDK's own `rte_strerror` text.
use std::ffi::CStr;
use std::fmt;

use crate::sys;

/// The errno values DPDK calls return that rvs reacts to differently; the rest stay numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// EPERM
    NotPermitted,
    /// ENOENT
    NotFound,
    /// EIO
    Io,
    /// ENOMEM
    NoMemory,
    /// EBUSY
    Busy,
    /// EEXIST
    Exists,
    /// ENODEV
    NoDevice,
    /// EINVAL
    Invalid,
    /// ENOSPC
    NoSpace,
    /// ENOTSUP / EOPNOTSUPP
    NotSupported,
    /// ENOSYS: the driver does not implement the operation at all (e.g. a PMD without rte_flow).
    NotImplemented,
    /// EALREADY
    Already,
    /// EAGAIN
    Again,
    /// E_RTE_SECONDARY: the call is not allowed in a secondary process.
    Secondary,
    /// E_RTE_NO_CONFIG: the EAL has no shared configuration.
    NoConfig,
    Other(i32),
}

impl Errno {
    /// Maps a positive errno (DPDK returns `-errno` or sets `rte_errno`).
    pub fn from_raw(code: i32) -> Errno {
        match code.abs() {
            1 => Errno::NotPermitted,
            2 => Errno::NotFound,
            5 => Errno::Io,
            11 => Errno::Again,
            12 => Errno::NoMemory,
            16 => Errno::Busy,
            17 => Errno::Exists,
            19 => Errno::NoDevice,
            22 => Errno::Invalid,
            28 => Errno::NoSpace,
            38 => Errno::NotImplemented,
            95 => Errno::NotSupported,
            114 => Errno::Already,
            1001 => Errno::Secondary,
            1002 => Errno::NoConfig,
            n => Errno::Other(n),
        }
    }

    pub fn raw(self) -> i32 {
        match self {
            Errno::NotPermitted => 1,
            Errno::NotFound => 2,
            Errno::Io => 5,
            Errno::Again => 11,
            Errno::NoMemory => 12,
            Errno::Busy => 16,
            Errno::Exists => 17,
            Errno::NoDevice => 19,
            Errno::Invalid => 22,
            Errno::NoSpace => 28,
            Errno::NotImplemented => 38,
            Errno::NotSupported => 95,
            Errno::Already => 114,
            Errno::Secondary => 1001,
            Errno::NoConfig => 1002,
            Errno::Other(n) => n,
        }
    }
}

/// A failed DPDK call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// The DPDK function (or safe-layer operation) that failed.
    pub op: &'static str,
    pub errno: Errno,
    /// `rte_strerror` text, or the safe layer's own explanation.
    pub text: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.text)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `rte_strerror` for an errno (positive or negative).
pub fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a static or per-lcore
    // NUL-terminated buffer that stays valid until the next call on this thread; we copy it at once.
    let p = unsafe { sys::rte_strerror(code.abs()) };
    if p.is_null() {
        return format!("error {code}");
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Error {
    /// From a DPDK return value `-errno`.
    pub fn from_ret(op: &'static str, ret: i32) -> Error {
        Error { op, errno: Errno::from_raw(ret), text: strerror(ret) }
    }

    /// From the calling lcore's `rte_errno`, for calls that return NULL or -1.
    pub fn last(op: &'static str) -> Error {
        let code = rte_errno();
        Error { op, errno: Errno::from_raw(code), text: strerror(code) }
    }

    /// An error the safe layer detects itself.
    pub fn new(op: &'static str, errno: Errno, text: impl Into<String>) -> Error {
        Error { op, errno, text: text.into() }
    }
}

/// The calling thread's `rte_errno`.
pub fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local int; no preconditions.
    unsafe { sys::rvs_errno() }
}

/// Turns a DPDK `int` return (0 or positive = success, negative = -errno) into a Result.
pub(crate) fn check(op: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::from_ret(op, ret))
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_roundtrip() {
        for code in [1, 2, 5, 11, 12, 16, 17, 19, 22, 28, 38, 95, 114, 1001, 1002, 77] {
            assert_eq!(Errno::from_raw(code).raw(), code);
            assert_eq!(Errno::from_raw(-code).raw(), code);
        }
    }

    #[test]
    fn strerror_has_text() {
        assert!(strerror(-22).to_lowercase().contains("invalid"));
        let e = Error::from_ret("rte_eth_dev_configure", -19);
        assert_eq!(e.errno, Errno::NoDevice);
        assert!(e.to_string().starts_with("rte_eth_dev_configure: "));
    }
}
