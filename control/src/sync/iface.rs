//! The IPv4 address of the kernel interface sync uses, read with iproute2 (`ip -j -4 addr show
//! dev IF`) as the other kernel-side helpers do. Control plane only, at daemon start.
use std::net::Ipv4Addr;
use std::process::Command;

/// The first IPv4 address on `ifname`; the error names the interface and the command.
pub fn ipv4_of(ifname: &str) -> Result<Ipv4Addr, String> {
    let cmd = format!("ip -j -4 addr show dev {ifname}");
    let out = Command::new("ip")
        .args(["-j", "-4", "addr", "show", "dev", ifname])
        .output()
        .map_err(|e| format!("sync interface {ifname}: `{cmd}` failed to run: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("sync interface {ifname}: `{cmd}` failed: {}", err.trim()));
    }
    first_ipv4(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| format!("sync interface {ifname} has no IPv4 address (`{cmd}`)"))
}

/// The first `addr_info[].local` of `ip -j -4 addr` output.
fn first_ipv4(json: &str) -> Option<Ipv4Addr> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.as_array()?
        .iter()
        .flat_map(|l| l.get("addr_info").and_then(|a| a.as_array()).into_iter().flatten())
        .find_map(|a| a.get("local")?.as_str()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_json() {
        let j = r#"[{"ifindex":5,"ifname":"s0","addr_info":[{"family":"inet","local":"198.18.5.1","prefixlen":24}]}]"#;
        assert_eq!(first_ipv4(j), Some(Ipv4Addr::new(198, 18, 5, 1)));
        assert_eq!(first_ipv4("[]"), None);
        assert_eq!(first_ipv4("not json"), None);
    }
}
