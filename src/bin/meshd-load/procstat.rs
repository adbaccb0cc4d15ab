//! The server's resident memory and CPU time, read from /proc/<pid> (Linux).

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProcSample {
    pub rss_kib: u64,
    /// User plus system CPU time, in seconds.
    pub cpu_s: f64,
}

/// Clock ticks per second of /proc/<pid>/stat's times: 100 on every Linux this runs on
/// (USER_HZ is fixed by the kernel ABI).
const TICKS_PER_SECOND: f64 = 100.0;

pub fn sample(pid: u32) -> Result<ProcSample, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS line"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    Ok(ProcSample {
        rss_kib,
        cpu_s: cpu_ticks(&stat)? as f64 / TICKS_PER_SECOND,
    })
}

/// utime + stime from a /proc/<pid>/stat line; fields are counted after the `(comm)`,
/// which may itself contain spaces.
fn cpu_ticks(stat: &str) -> Result<u64, String> {
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc stat line")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After the comm: state is field 3, utime field 14, stime field 15.
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc stat line has no field {n}"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_kib > 0);
    }

    #[test]
    fn cpu_ticks_skips_a_comm_with_spaces() {
        let line = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(cpu_ticks(line).unwrap(), 300);
    }
}
