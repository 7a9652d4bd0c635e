import CProcessControl
import Foundation

/// The cores a rank may run on. Its CPU affinity already says what mpirun's binding, `taskset`,
/// Slurm's or a container's cpuset allow; a cgroup CPU quota (`cpu.max`, `docker --cpus`)
/// caps it further. Online cores where neither can be read.
public enum NodeCores {
    /// This process's usable cores, at least 1.
    public static func usable() -> Int {
        let online = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let affinity = Int(aet_affinity_cpu_count())
        var cores = affinity > 0 ? min(affinity, online) : online
        if let quota = quotaCores() { cores = min(cores, quota) }
        return max(1, cores)
    }

    /// The cgroup's CPU quota in whole cores (rounded up), nil when there is none.
    static func quotaCores() -> Int? {
        if let v2 = try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max", encoding: .utf8) {
            return quotaCores(cpuMax: v2)
        }
        guard let quota = try? String(contentsOfFile: "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", encoding: .utf8),
              let period = try? String(contentsOfFile: "/sys/fs/cgroup/cpu/cpu.cfs_period_us", encoding: .utf8)
        else { return nil }
        return quotaCores(cpuMax: "\(quota.trimmingCharacters(in: .whitespacesAndNewlines)) \(period.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// "QUOTA PERIOD" (cgroup v2's cpu.max; v1's quota −1 or v2's "max": no quota) → ⌈QUOTA/PERIOD⌉.
    public static func quotaCores(cpuMax: String) -> Int? {
        let fields = cpuMax.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), quota > 0, period > 0 else { return nil }
        return max(1, Int((quota / period).rounded(.up)))
    }
}
