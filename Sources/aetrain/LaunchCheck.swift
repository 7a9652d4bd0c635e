import Foundation

/// Catches ranks started as unrelated singletons: a launcher that started P processes whose MPI
/// does not see each other (plain `srun`, or `srun --mpi=pmi2` with an MPI built without it,
/// or an `mpirun` of another MPI than the one aetrain links). Each would be a world of one
/// and train its own copy of the same run into the same directory.
///
/// What the launcher says is read from its environment, captured before MPI starts (MPI_Init
/// may add variables of its own):
/// - `OMPI_COMM_WORLD_SIZE`: Open MPI's mpirun sets it for every rank it starts.
/// - `SLURM_STEP_NUM_TASKS`: srun sets it for the tasks of a job step. Only inside a step
///   does a task count describe this launch: `SLURM_NTASKS` is also set in a batch script
///   and under `salloc`, where one `aetrain` started by hand is meant as one process.
///   Under mpirun the Slurm variables describe mpirun's daemons, so `OMPI_COMM_WORLD_SIZE`
///   wins when both are present.
struct LaunchCheck {
    let environment: [String: String]

    /// The launcher's variables, read now.
    static func current() -> LaunchCheck {
        let names = ["OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"]
        var found: [String: String] = [:]
        for name in names { if let value = getenv(name) { found[name] = String(cString: value) } }
        return LaunchCheck(environment: found)
    }

    /// The one-line problem with a launch whose MPI world has `worldSize` ranks, or nil.
    func problem(worldSize: Int) -> String? {
        if let text = environment["OMPI_COMM_WORLD_SIZE"], let started = Int(text) {
            guard started != worldSize else { return nil }
            return "mpirun started \(started) processes (OMPI_COMM_WORLD_SIZE) but this one's MPI world has \(worldSize): "
                + "aetrain links another MPI than this mpirun; launch it with the mpirun of the MPI it was built with"
        }
        if let text = environment["SLURM_STEP_NUM_TASKS"], let started = Int(text), started > 1, worldSize == 1 {
            return "srun started \(started) tasks (SLURM_STEP_NUM_TASKS) but each is an MPI world of 1, "
                + "which would train \(started) copies of the same run: launch with `srun --mpi=pmix` "
                + "or with mpirun inside the allocation"
        }
        return nil
    }

    /// Whether this process prints the error: the launcher's first task (every singleton is
    /// rank 0 of its own world, so the MPI rank cannot tell).
    var isFirstTask: Bool {
        let rank = environment["OMPI_COMM_WORLD_RANK"] ?? environment["SLURM_PROCID"]
        return (rank.flatMap { Int($0) } ?? 0) == 0
    }
}
